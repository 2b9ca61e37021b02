"""Options declared once, as data: key, environment variable, default, converter, secrecy.

Every setting the gateway reads (its own ``ca_bundle``, ``max_active_runs``...) and every
provider setting (``api_key``, ``rate_limit_wait``...) is an ``Option``; one resolver
(``report_gateway.config.resolve_options``) layers them explicit > profile file >
environment, converts each value with what the option declares and names the option and
the layer when a value is wrong. That is botocore's config provider
(``botocore/configprovider.py``: a table of name -> config key, env var, default,
conversion, and a chain resolver) with the layers this project has.

A plugin declares its options in either of two spellings, which give the same table:

- ``ProviderSpec(options=[Option("api_key", env="X_API_KEY", credential=True), ...])``;
- an attrs class whose fields are ``option(...)``: ``ProviderSpec(settings_type=Cls)``.
  The driver then reads ``context.settings_as(Cls).rate_limit_wait``, typed and converted:
  an option without ``convert`` is structured from its field's type by the converter here
  (reporting_runtime's cattrs converter, plus hooks for values written as text in the
  environment: ``"true"``, ``"a,b"``; an ``int`` field takes only whole numbers, ``integer``).

Converters raise ``ValueError``/``TypeError`` with what was expected ("must be a number of
seconds"); the resolver adds the owner, option, layer and (unless secret) the value.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

if TYPE_CHECKING:
    import cattrs

__all__ = [
    "OPTION",
    "Option",
    "boolean",
    "integer",
    "name_list",
    "option",
    "options_of",
    "seconds",
    "settings_converter",
    "text",
]

T = TypeVar("T")

#: The attrs field metadata key holding a field's ``Option``.
OPTION = "report_gateway.option"

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


@attrs.frozen
class Option:
    """One setting, declared once.

    - ``key``: its name in ``settings=``, ``--set`` and the TOML profile.
    - ``env``: the environment variable that may supply it (None: none does). An empty
      variable counts as unset unless ``empty_env`` (an empty allow-list means "none").
    - ``default``: the value typed settings get when no layer sets it.
    - ``convert``: turns a value as written (TOML value, env text, Python object) into the
      typed one; raises ValueError/TypeError saying what was expected. None: the field's
      type through the converter (typed settings), else the value as given.
    - ``secret``: never shown (reprs, error messages, CLI output); ``credential`` implies
      it and makes the option one the default credentials lookup requires.
    - ``doc``: one line for listings.
    """

    key: str
    env: str | None = None
    default: Any = None
    convert: Callable[[Any], Any] | None = attrs.field(default=None, repr=False)
    secret: bool = False
    credential: bool = False
    doc: str = ""
    empty_env: bool = False

    @property
    def hidden(self) -> bool:
        """Whether the value must never be shown."""
        return self.secret or self.credential


def option(
    *,
    env: str | None = None,
    default: Any = None,
    convert: Callable[[Any], Any] | None = None,
    secret: bool = False,
    credential: bool = False,
    doc: str = "",
    empty_env: bool = False,
) -> Any:
    """An attrs field declaring an ``Option`` named after the field (typed settings).

    The field's default is the option's; a secret field stays out of the class's repr.
    """
    declared = Option(
        "",
        env=env,
        default=default,
        convert=convert,
        secret=secret,
        credential=credential,
        doc=doc,
        empty_env=empty_env,
    )
    return attrs.field(default=default, repr=not declared.hidden, metadata={OPTION: declared})


def options_of(cls: type) -> tuple[Option, ...]:
    """The option table an attrs settings class declares (a field without ``option()``
    becomes a plain option with the field's default)."""
    table: list[Option] = []
    for field in attrs.fields(cls):
        declared = field.metadata.get(OPTION)
        default: Any = field.default
        if default is attrs.NOTHING:
            default = None
        elif hasattr(default, "factory") and hasattr(default, "takes_self"):  # attrs.Factory
            default = None if default.takes_self else default.factory()
        if declared is None:
            table.append(Option(field.name, default=default))
        else:
            table.append(attrs.evolve(declared, key=field.name, default=default))
    return tuple(table)


# -- converters ---------------------------------------------------------------------------


def text(value: Any) -> str:
    """A string; numbers from TOML are accepted as written."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"must be a string, not {type(value).__name__}")


def boolean(value: Any) -> bool:
    """A boolean from TOML (``true``) or the environment (``"true"``, ``"1"``, ``"no"``...)."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("must be true or false")


def integer(value: Any) -> int:
    """A whole number from TOML (``5``) or the environment (``"5"``); ``5.7``, ``"many"`` and
    ``true`` are refused rather than truncated or counted as 1."""
    if isinstance(value, bool):
        raise TypeError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError("must be an integer")


def seconds(value: Any) -> float:
    """A duration in seconds (negative counts as 0)."""
    if isinstance(value, bool):
        raise TypeError("must be a number of seconds")
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        raise ValueError("must be a number of seconds") from None


def name_list(value: Any) -> tuple[str, ...]:
    """Names from a TOML list or one comma-separated string (blanks dropped)."""
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        raise TypeError("must be a list of names or one comma-separated string")
    return tuple(str(item).strip() for item in items if str(item).strip())


def _is_str_sequence(tp: Any) -> bool:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is tuple:
        return args in ((str, ...),)
    return origin in (list, frozenset, set) and args == (str,)


@functools.cache
def settings_converter() -> cattrs.Converter:
    """The converter typed settings are structured with: the runtime's, plus text forms.

    The environment only holds text: ``"false"`` must be False (``bool("false")`` is True)
    and ``"a,b"`` two names (not four characters). Built on first use: cattrs and the
    runtime load only when a provider with typed settings is used.
    """
    from reporting_runtime.converter import make_converter

    conv = make_converter()
    conv.register_structure_hook(bool, lambda value, _: boolean(value))
    conv.register_structure_hook(int, lambda value, _: integer(value))
    conv.register_structure_hook(str, lambda value, _: text(value))

    def structure_names(tp: Any) -> Callable[[Any, Any], Any]:
        origin = typing.get_origin(tp)

        def structure(value: Any, _: Any) -> Any:
            names = name_list(value)
            return names if origin is tuple else origin(names)

        return structure

    conv.register_structure_hook_factory(_is_str_sequence, structure_names)
    return conv


def structure_value(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` through ``settings_converter``."""
    return settings_converter().structure(value, tp)


def field_types(cls: type) -> Mapping[str, Any]:
    """Field name -> resolved type of an attrs settings class (string annotations too)."""
    attrs.resolve_types(cls)
    return {field.name: field.type for field in attrs.fields(cls)}
