"""The one cattrs converter for every generated model, configured for the providers' quirks.

Models follow the codegen convention: attrs frozen kw_only classes, `metadata={"json":
<wire name>}` on renamed fields, and a last field `raw_payload` (metadata {"raw": True})
that receives the original dict, so fields a spec does not know yet are never lost.
Hooks are made per class by factories, never written per model.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, overload

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

from reporting_runtime.errors import ResponseFormatError
from reporting_runtime.types import (
    FlexibleTime,
    Int64String,
    OpenEnum,
    UnixTime,
    format_rfc3339,
    parse_flexible_time,
    parse_int64,
    parse_rfc3339,
    parse_unix_time,
)

__all__ = ["converter", "make_converter", "structure", "unstructure"]

T = TypeVar("T")

_PRIMITIVES = (str, int, float, bool)


def _structure_datetime(value: Any, _: type) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected an RFC 3339 string, got {type(value).__name__}")
    return parse_rfc3339(value)


def _structure_unix_time(value: Any, _: type) -> datetime:
    if type(value) is int:  # the wire's form, in the hook itself: every run has several
        return datetime.fromtimestamp(value, UTC)
    return parse_unix_time(value)


def _structure_str(value: Any, _: type) -> str:
    # cattrs' default is str(value): an id sent as null, an object or a number would become
    # "None", "{}" or "42" and be used as if the server had said so. A spec string is a
    # JSON string; anything else is the server's mistake, reported with the field's name.
    if not isinstance(value, str):
        raise _WrongJsonType(f"expected a string, got {_json_type(value)}")
    return value


def _structure_int(value: Any, _: type) -> int:
    # cattrs' default is int(value): a size sent as true becomes 1, 12.7 becomes 12 and
    # "12" becomes 12, each used as if the server had said so. A spec integer is a JSON
    # number without a fraction (12.0 is the same number); anything else is refused.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _WrongJsonType(f"expected an integer, got {_json_type(value)}")


def _structure_bool(value: Any, _: type) -> bool:
    # Registered beside int (bool is an int subclass, so int's hook would claim it);
    # cattrs' default bool(value) would make "false" true.
    if isinstance(value, bool):
        return value
    raise _WrongJsonType(f"expected a boolean, got {_json_type(value)}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value!r})" if len(repr(value)) <= 20 else "a number"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _enum_value(value: enum.Enum) -> Any:
    return value.value


def _unix_seconds(value: datetime) -> int:
    return int(value.timestamp())


def _is_union(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    return origin is typing.Union or origin is types.UnionType


def _raw_field(cls: type) -> str | None:
    for field in attrs.fields(cls):
        if field.metadata.get("raw"):
            return str(field.name)
    return None


def _wire_overrides(cls: type, raw_name: str | None) -> dict[str, Any]:
    """The same per-field overrides both ways: wire names renamed, the raw field never on
    the wire (structuring fills it from the whole dict instead)."""
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cls):
        if field.name == raw_name:
            overrides[field.name] = override(omit=True)
        elif "json" in field.metadata:
            overrides[field.name] = override(rename=field.metadata["json"])
    return overrides


def _absent_unless_object(cls: type) -> frozenset[str]:
    """Wire names of the fields a spec marks `x-absent-unless-object`."""
    return frozenset(
        str(field.metadata.get("json", field.name))
        for field in attrs.fields(cls)
        if field.metadata.get("absent_unless_object")
    )


def _dropping_non_objects(
    structure_fn: Callable[[Any, Any], Any], wire_names: frozenset[str]
) -> Callable[[Any, Any], Any]:
    """Structure as if members whose value is not an object were absent (a spec marks them
    `x-absent-unless-object` where a provider's own example sends `false` for an object);
    `raw_payload` still gets the dict as sent."""

    def structure(data: Any, tp: Any) -> Any:
        if isinstance(data, Mapping) and any(
            name in data and not isinstance(data[name], Mapping) for name in wire_names
        ):
            data = {
                key: value
                for key, value in data.items()
                if key not in wire_names or isinstance(value, Mapping)
            }
        return structure_fn(data, tp)

    return structure


def make_converter(*, detailed_validation: bool = True) -> cattrs.Converter:
    """A converter with every quirk registered (a fresh one, for tests or a variant)."""
    conv = cattrs.Converter(detailed_validation=detailed_validation)

    # By class: OpenEnum (a str subclass) registers its own below, the more specific one.
    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, format_rfc3339)
    conv.register_structure_hook(UnixTime, _structure_unix_time)
    conv.register_unstructure_hook(UnixTime, _unix_seconds)
    conv.register_structure_hook(FlexibleTime, lambda v, _: parse_flexible_time(v))
    conv.register_unstructure_hook(FlexibleTime, format_rfc3339)
    conv.register_structure_hook(Int64String, lambda v, _: parse_int64(v))
    conv.register_unstructure_hook(Int64String, str)

    conv.register_structure_hook(OpenEnum, lambda v, tp: tp(v))
    # By class (singledispatch): a `str` enum would otherwise hit cattrs' str identity hook.
    conv.register_unstructure_hook(OpenEnum, _enum_value)
    conv.register_unstructure_hook(enum.Enum, _enum_value)

    def structure_attrs(cls: type) -> Callable[[Any, Any], Any]:
        raw_name = _raw_field(cls)
        overrides = _wire_overrides(cls, raw_name)
        made: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, conv, **overrides)
        tolerant = _absent_unless_object(cls)
        base = made if not tolerant else _dropping_non_objects(made, tolerant)
        if raw_name is None:
            return base

        def structure_with_raw(data: Any, tp: Any) -> Any:
            obj = base(data, tp)
            # Frozen model: set the one field the generated __init__ was not given.
            object.__setattr__(obj, raw_name, data)
            return obj

        return structure_with_raw

    def unstructure_attrs(cls: type) -> Callable[[Any], Any]:
        overrides = _wire_overrides(cls, _raw_field(cls))
        base: Callable[[Any], dict[str, Any]] = make_dict_unstructure_fn(cls, conv, **overrides)

        def unstructure_without_none(obj: Any) -> dict[str, Any]:
            # Unset optional fields are simply absent on the wire.
            return {k: v for k, v in base(obj).items() if v is not None}

        return unstructure_without_none

    conv.register_structure_hook_factory(attrs.has, structure_attrs)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_attrs)

    def structure_union(tp: Any) -> Callable[[Any, Any], Any]:
        members = typing.get_args(tp)
        optional = type(None) in members
        if Any in members:
            return lambda v, _: v
        models = [m for m in members if isinstance(m, type) and attrs.has(m)]
        plain = [m for m in members if m in _PRIMITIVES]
        others = [m for m in members if m is not type(None) and m not in models and m not in plain]

        def structure(value: Any, _: Any) -> Any:
            if value is None and optional:
                return None
            if isinstance(value, bool):
                if bool in plain:
                    return value
            else:
                for member in plain:
                    if isinstance(value, member):
                        return value
            candidates = models if isinstance(value, Mapping) else []
            failures: list[Exception] = []
            for member in (*candidates, *others, *plain):
                try:
                    return conv.structure(value, member)
                except Exception as exc:
                    failures.append(exc)
            raise ValueError(
                f"{type(value).__name__} value fits none of {tp}"
                + (f": {failures[0]}" if failures else "")
            )

        return structure

    conv.register_structure_hook_factory(_is_union, structure_union)
    return conv


# Detailed validation names the failing field in errors, so the public converter keeps it
# on. ``structure`` first tries ``_fast`` (the same hooks, no per-field error bookkeeping:
# every answer of every call goes through it) and re-runs a failure through ``converter``
# to word the error, so a mismatch reads the same either way.
converter: cattrs.Converter = make_converter()
_fast: cattrs.Converter = make_converter(detailed_validation=False)


@overload
def structure(data: Any, cls: type[T]) -> T: ...
@overload
def structure(data: Any, cls: Any) -> Any: ...


def structure(data: Any, cls: Any) -> Any:
    """`data` (parsed JSON) as `cls`; a mismatch is a ResponseFormatError naming the field."""
    try:
        return _fast.structure(data, cls)
    except Exception:  # noqa: S110 - worded below by the detailed converter
        pass
    try:
        return converter.structure(data, cls)
    except Exception as exc:
        name = getattr(cls, "__name__", str(cls))
        raise ResponseFormatError(f"response does not match {name}: {_explain(exc)}") from None


def unstructure(obj: Any) -> Any:
    """`obj` as JSON-ready data with wire names; None fields dropped."""
    return converter.unstructure(obj)


class _WrongJsonType(TypeError):
    """A JSON value of the wrong type where the spec asks for a string, an integer or a
    boolean."""


def _describe_failure(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, _WrongJsonType):
        return str(exc)
    return format_exception(exc, type_)


def _explain(exc: Exception) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        messages = cattrs.transform_error(exc, format_exception=_describe_failure)
        if messages:
            return "; ".join(messages[:3])
    return f"{type(exc).__name__}: {str(exc)[:200]}"
