"""URL, query and body encodings the providers expect.

Some APIs read nested parameters in the "deep object" form (`parameters[columns][]=a`,
`created[gte]=1`) in both query strings and form bodies; everything else uses plain
`name=value` pairs with repeated names for lists.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

__all__ = ["QueryStyle", "encode_form", "encode_query", "expand_path", "flatten_deep"]

QueryStyle = Literal["form", "deep", "deep-indexed"]
"""`deep-indexed` is `deep` with scalar array members numbered (`include[0]=...`), as
some providers' published descriptions and SDKs encode a deepObject array."""

#: Types ``flatten_deep`` writes as one value without asking whether they are containers.
_SCALARS = frozenset({str, int, float, bool})

_PATH_PARAM = re.compile(r"\{([^{}]+)\}")


def scalar(value: Any) -> str:
    """One value as the providers spell it: booleans lower-case, datetimes as unix seconds."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return scalar(value.value)
    if isinstance(value, datetime):
        return str(int(value.timestamp()))
    return str(value)


def flatten_deep(
    value: Any, prefix: str = "", *, indexed: bool = False
) -> Iterator[tuple[str, str]]:
    """Deep-object pairs: dicts as `a[b]`, scalar lists as `a[]` (`a[0]` when `indexed`),
    lists of objects as `a[0][b]`. None is left out (such APIs read an empty string as
    "unset").

    The pairs are made into a list first (one recursive call per container, not a chain of
    generators each pair is passed up through): every create body is flattened."""
    pairs: list[tuple[str, str]] = []
    _flatten_into(pairs, value, prefix, indexed)
    return iter(pairs)


def _flatten_into(out: list[tuple[str, str]], value: Any, prefix: str, indexed: bool) -> None:
    if value is None:
        return
    if type(value) is dict or isinstance(value, Mapping):  # a dict first: an ABC check is slow
        for key, item in value.items():
            name = f"{prefix}[{key}]" if prefix else str(key)
            kind = type(item)
            if kind is str:
                out.append((name, item))
            elif kind is int:
                out.append((name, str(item)))
            else:
                _flatten_into(out, item, name, indexed)
    elif type(value) in _SCALARS:
        out.append((prefix, scalar(value)))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if isinstance(item, Mapping | list | tuple):
                _flatten_into(out, item, f"{prefix}[{index}]", indexed)
            elif item is not None:
                out.append((f"{prefix}[{index if indexed else ''}]", scalar(item)))
    else:
        out.append((prefix, scalar(value)))


def _form_pairs(query: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for key, value in query.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            for item in value:
                if item is not None:
                    yield key, scalar(item)
        elif isinstance(value, Mapping):
            # OpenAPI form+explode of an object: its members become top-level names.
            yield from _form_pairs(value)
        else:
            yield key, scalar(value)


#: Texts ``quote`` returns unchanged (its always-safe characters; brackets for names):
#: most names and values are, and the check is one C call where ``quote`` is several.
_UNQUOTED_NAME = re.compile(r"[A-Za-z0-9_.\-~\[\]]*")
_UNQUOTED_VALUE = re.compile(r"[A-Za-z0-9_.\-~]*")


def _join(pairs: Iterator[tuple[str, str]]) -> str:
    # Brackets stay literal (readable in logs and cassettes; deep-object APIs accept both forms).
    plain_name, plain_value = _UNQUOTED_NAME.fullmatch, _UNQUOTED_VALUE.fullmatch
    return "&".join(
        (k if plain_name(k) else quote(k, safe="[]"))
        + "="
        + (v if plain_value(v) else quote(v, safe=""))
        for k, v in pairs
    )


def encode_query(query: Mapping[str, Any], style: QueryStyle = "form") -> str:
    """The query string (without "?"); None values are left out."""
    if style in ("deep", "deep-indexed"):
        present = {k: v for k, v in query.items() if v is not None}
        return _join(flatten_deep(present, indexed=style == "deep-indexed"))
    return _join(_form_pairs(query))


def encode_form(data: Mapping[str, Any]) -> bytes:
    """An application/x-www-form-urlencoded body in the deep-object form."""
    return _join(flatten_deep(data)).encode("ascii")


def expand_path(template: str, params: Mapping[str, Any]) -> str:
    """`/reports/{id}` with each parameter percent-encoded, "/" included, so an id can
    never reach another path."""
    if "{" not in template:  # nothing to fill in (a list or create operation)
        return template

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params or params[name] is None:
            raise ValueError(f"missing path parameter {name!r}")
        value = scalar(params[name])
        if value == "":
            raise ValueError(f"empty path parameter {name!r}")
        return value if _UNQUOTED_VALUE.fullmatch(value) else quote(value, safe="")

    return _PATH_PARAM.sub(substitute, template)
