"""Error texts in the words of the command line, not of the Python API.

The library's messages name what a Python caller types (``Scope(account=...)``,
``settings={...}``, ``search("zuora", ...)``); on the command line the same advice is an
option or a command. Each rule rewrites one such phrase; a message without one is unchanged.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

__all__ = ["speak_cli"]

_PROG = "report-gateway"


def _flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def _setting(match: re.Match[str]) -> str:
    value = re.sub(r"[\[\]'\"]", "", match["value"]).replace(", ", ",")
    return f"--set {match['key']}={value.replace('report_...', 'report_a,report_b')}"


#: A scope field -> the fan-out option that reads a file of them.
_FAN_OUT = {"account": "accounts", "context": "contexts", "entity_id": "entities"}


def _without(field: str, args: argparse.Namespace) -> str:
    """A fan-out's advice names its file option (``--contexts``), not one scope's."""
    many = _FAN_OUT.get(field)
    if many is not None and getattr(args, many, None):
        return f"run it once without --{many} (one run, no fan-out)"
    return f"run without {_flag(field)}"


_Rule = tuple[re.Pattern[str], Callable[[re.Match[str], argparse.Namespace], str]]

_RULES: list[_Rule] = [
    # scope field(s) ['context'] not supported -> --context is not supported
    (
        re.compile(r"scope field\(s\) \[([^\]]*)\] not supported"),
        lambda m, a: " ".join(_flag(f.strip(" '\"")) for f in m[1].split(","))
        + " is not supported",
    ),
    # run without Scope(context=...) in a fan-out -> run it once without --contexts
    (
        re.compile(r"run without Scope\((\w+)=\.\.\.\)"),
        lambda m, a: _without(m[1], a),
    ),
    # Scope(account=...) -> --account
    (re.compile(r"Scope\((\w+)=\.\.\.\)"), lambda m, a: _flag(m[1])),
    # settings={'stripe-v2': {'reports': ['report_...']}} -> --set reports=...
    (
        re.compile(r"settings=\{'[\w-]+': \{'(?P<key>\w+)': (?P<value>[^{}]*)\}\}"),
        lambda m, a: _setting(m),
    ),
    # search("zuora", "part of the report name") -> report-gateway search zuora "NAME"
    (
        re.compile(r'search\("([\w-]+)", "([^"]*)"\)'),
        lambda m, a: f'`{_PROG} search {m[1]} "{m[2]}"`',
    ),
    # last_completed("zuora", report_id) -> report-gateway last zuora REPORT
    (
        re.compile(r'last_completed\("([\w-]+)", report_id\)'),
        lambda m, a: f"`{_PROG} last {m[1]} REPORT`",
    ),
    # template(report_id) -> report-gateway template PROVIDER REPORT
    (
        re.compile(r"\btemplate\(report_id\)"),
        lambda m, a: f"`{_PROG} template {getattr(a, 'provider', None) or 'PROVIDER'} REPORT`",
    ),
    # gw.wait(gw.get('p', 'id')) or `report-gateway wait p id` -> the command alone
    (re.compile(r"gw\.wait\(gw\.get\([^)]*\)\) or "), lambda m, a: ""),
    # looked in client_id: settings['zuora']['client_id'], ... -> --set client_id=..., ...
    (
        re.compile(r"settings\['[\w-]+'\]\['(\w+)'\]"),
        lambda m, a: f"--set {m[1]}=...",
    ),
    # entity_name cannot be used with OAuth ...; use entity_id instead -> the options
    (
        re.compile(r"\bentity_name cannot be used\b"),
        lambda m, a: "--entity-name cannot be used",
    ),
    (re.compile(r"\buse entity_id instead\b"), lambda m, a: "use --entity-id instead"),
    # (settings from the Gateway's keyword are, on the command line, --set's)
    (
        re.compile(r"(?<=from )settings(?=[,;)])|(?<=\(in )settings(?=\))"),
        lambda m, a: "--set",
    ),
    # typed=False reads every column as text -> --untyped does
    (re.compile(r"\btyped=False reads\b"), lambda m, a: "--untyped reads"),
    # the setting 'x' -> the setting 'x' (--set x=...)
    (
        re.compile(r"(?<=the setting )'(\w+)'(?! \(--set)"),
        lambda m, a: f"'{m[1]}' (--set {m[1]}=...)",
    ),
]


def speak_cli(text: str, args: argparse.Namespace) -> str:
    """``text`` with each Python-API phrase replaced by the option or command that does it."""
    for pattern, replace in _RULES:
        text = pattern.sub(lambda m, r=replace: r(m, args), text)  # type: ignore[misc]
    return text
