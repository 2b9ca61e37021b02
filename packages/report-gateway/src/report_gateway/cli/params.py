"""``-p NAME=VALUE`` report parameters and ``--set KEY=VALUE`` settings from the command line.

Values stay strings: the provider plugin knows each parameter's type and parses dates,
numbers and booleans itself (so ``-p interval_start=2025-01-01`` is passed as written).
Only list structure is decided here, because a shell has no other way to say it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .exits import UsageError

__all__ = ["PARAMETERS_HELP", "parse_parameters", "parse_settings"]

PARAMETERS_HELP = """\
report parameters (-p):
  -p NAME=VALUE        a string, passed as written; dates and times in ISO form
                       (2025-01-01, 2025-01-01T00:00:00Z) or unix seconds: the provider
                       plugin parses them
  -p NAME=A,B          a comma makes a list: ["A", "B"]
  -p NAME=A -p NAME=B  repeating a name also makes a list: ["A", "B"]
  -p NAME:=JSON        a JSON value, for a one-item list (columns:='["net"]'), a string
                       holding a comma (note:='"a, b"') or structured values such as
                       Zuora filters (filters:='[{"logicalOperator": "AND", ...}]')"""


def _value(item: str, option: str) -> tuple[str, Any]:
    name, sep, text = item.partition("=")
    as_json = name.endswith(":")
    if as_json:
        name = name[:-1]
    name = name.strip()
    if not sep or not name:
        raise UsageError(f"{option} {item!r}: expected NAME=VALUE")
    if as_json:
        try:
            return name, json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{option} {name}: invalid JSON value ({exc.msg})") from None
    if "," in text:
        return name, [part.strip() for part in text.split(",") if part.strip()]
    return name, text


def parse_parameters(items: Sequence[str] | None) -> dict[str, Any]:
    """Turn repeated ``-p`` options into the parameters mapping (see ``PARAMETERS_HELP``)."""
    parameters: dict[str, Any] = {}
    for item in items or ():
        name, value = _value(item, "-p")
        if name not in parameters:
            parameters[name] = value
            continue
        merged = parameters[name] if isinstance(parameters[name], list) else [parameters[name]]
        merged = [*merged, *(value if isinstance(value, list) else [value])]
        parameters[name] = merged
    return parameters


def parse_settings(items: Sequence[str] | None) -> dict[str, str]:
    """Turn ``--set KEY=VALUE`` options into provider settings (values kept as written)."""
    settings: dict[str, str] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        settings[key.strip()] = value
    return settings
