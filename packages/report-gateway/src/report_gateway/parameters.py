"""Checking run parameters against a report's schema before a run is created.

A provider refuses a bad run late (a 400 after the request, for some after a rate-limit slot
was asked for); these checks refuse it early, naming the parameter and what it accepts.
Everything here works on the neutral ``ReportTemplate``/``ParameterSpec`` so it needs no
client and no network, and every driver shares the rules: required, type, allowed values,
timestamp bounds, defaults, one parameter after another (``ParameterSpec.after``).
Timestamps come in as unix seconds, ISO dates or ISO datetimes (naive means UTC) and leave
as the API wants them (``format_unix``, ``format_rfc3339``, or any ``TimestampFormat``).
Plugins import these from ``report_gateway.provider``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time
from typing import Any

from .errors import ParameterError
from .models import ParameterSpec, ReportTemplate

__all__ = [
    "TIMESTAMP_FORMS",
    "TimestampFormat",
    "format_rfc3339",
    "format_unix",
    "iso",
    "parse_timestamp",
    "validate_parameters",
]

#: What an error says a timestamp may look like.
TIMESTAMP_FORMS = "unix seconds (int or numeric string), ISO date or ISO datetime (naive = UTC)"

TimestampFormat = Callable[[datetime], Any]

_UNIX = re.compile(r"[+-]?\d+")
_FRACTION = re.compile(r"\.(\d+)")


def parse_timestamp(value: Any) -> datetime:
    """An aware UTC datetime from any accepted timestamp form; ValueError otherwise.

    Accepted: unix seconds as int (not bool) or integral float or numeric string; a
    ``date``/``datetime``; ``"2025-01-01"``; ``"2025-01-01T10:00:00"`` (UTC);
    RFC 3339 with ``Z`` or an offset and up to nine fractional digits (truncated to
    microseconds); Stripe v2's wrapped ``{"timestamp_value": ...}``.
    """
    if type(value) is int:  # the common form, before the Mapping check (an ABC's, slow)
        return _from_unix(value)
    if isinstance(value, Mapping) and len(value) == 1 and "timestamp_value" in value:
        value = value["timestamp_value"]
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int):
        return _from_unix(value)
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise ValueError("unix seconds must be a whole number")
        return _from_unix(int(value))
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time(), tzinfo=UTC)
    if not isinstance(value, str):
        raise ValueError(f"{type(value).__name__} is not a timestamp")
    text = value.strip()
    if _UNIX.fullmatch(text):
        return _from_unix(int(text))
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat reads at most six fractional digits; Stripe prints nine.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _from_unix(seconds: int) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{seconds} is out of range for unix seconds") from None


def iso(moment: datetime) -> str:
    """How errors show a moment: ISO 8601 in UTC with a Z, seconds precision."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_unix(moment: datetime) -> int:
    """Whole unix seconds (Stripe v1's wire form)."""
    return math.floor(moment.timestamp())


def format_rfc3339(moment: datetime) -> str:
    """RFC 3339 with milliseconds and ``Z`` (Stripe v2's form): ``2025-06-25T00:00:00.000Z``."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{moment.microsecond // 1000:03d}Z"


def _bounds(spec: ParameterSpec) -> tuple[datetime | None, datetime | None]:
    """The (earliest, latest) pair whatever order the provider printed them in.

    Stripe's v2 guide shows a report whose ``max`` is earlier than its ``min``.
    """
    low, high = spec.minimum, spec.maximum
    if isinstance(low, datetime) and isinstance(high, datetime) and high < low:
        return high, low
    return low, high


def _range_text(low: datetime | None, high: datetime | None) -> str:
    if low is not None and high is not None:
        return f"{iso(low)} .. {iso(high)}"
    if low is not None:
        return f"from {iso(low)}"
    if high is not None:
        return f"until {iso(high)}"
    return TIMESTAMP_FORMS


class _Checker:
    """One validation pass: the template, the error context, and the timestamp format."""

    def __init__(self, template: ReportTemplate, timestamp_format: TimestampFormat) -> None:
        self.template = template
        self.timestamp_format = timestamp_format

    def error(
        self, name: str, message: str, allowed: Sequence[Any] | str | None = None
    ) -> ParameterError:
        return ParameterError(
            name,
            message,
            allowed=allowed,
            provider=self.template.provider,
            report_id=self.template.id,
        )

    def check(self, spec: ParameterSpec, value: Any) -> Any:
        """The value in wire form, or a ParameterError naming the parameter."""
        kind = spec.type
        if kind == "timestamp":
            return self.timestamp(spec, value)
        if kind == "array":
            return self.array(spec, value)
        if kind == "string":
            return self.string(spec, value)
        if kind == "date":
            return self.date(spec, value)
        # A kind a provider adds later: pass it through untouched rather than refuse it.
        return value

    def timestamp(self, spec: ParameterSpec, value: Any) -> Any:
        low, high = _bounds(spec)
        try:
            moment = parse_timestamp(value)
        except (ValueError, TypeError, OverflowError):
            raise self.error(
                spec.name,
                f"{value!r} is not a timestamp; use {TIMESTAMP_FORMS}",
                _range_text(low, high),
            ) from None
        if (low is not None and moment < low) or (high is not None and moment > high):
            raise self.error(
                spec.name,
                f"{iso(moment)} is outside the data available for this report",
                _range_text(low, high),
            )
        return self.timestamp_format(moment)

    def date(self, spec: ParameterSpec, value: Any) -> str:
        """An ISO date (``2025-01-31``), sent as such."""
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise self.error(spec.name, f"{value!r} is not a date", "YYYY-MM-DD") from None

    def string(self, spec: ParameterSpec, value: Any) -> str:
        allowed = spec.allowed_values
        if not isinstance(value, str) or not value.strip():
            raise self.error(
                spec.name,
                f"expected a non-empty string, got {type(value).__name__} {value!r}",
                allowed,
            )
        if allowed is not None and value not in allowed:
            raise self.error(spec.name, f"{value!r} is not allowed", allowed)
        return value

    def array(self, spec: ParameterSpec, value: Any) -> list[str]:
        """A list of strings; one string is a list of one (``-p columns=net`` on the CLI)."""
        allowed = spec.allowed_values
        if isinstance(value, str):
            value = [value]
        if isinstance(value, bytes) or not isinstance(value, Sequence):
            raise self.error(
                spec.name,
                f"expected a list of strings, got {type(value).__name__} {value!r}",
                allowed,
            )
        items = list(value)
        wrong = [item for item in items if not isinstance(item, str) or not item]
        if wrong:
            raise self.error(
                spec.name, f"every element must be a non-empty string, got {wrong!r}", allowed
            )
        if allowed is not None:
            unknown = [item for item in items if item not in allowed]
            if unknown:
                raise self.error(spec.name, f"value(s) {unknown} not allowed", allowed)
        return items


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (list, tuple)) and not value)


def validate_parameters(
    template: ReportTemplate,
    parameters: Mapping[str, Any],
    *,
    timestamp_format: TimestampFormat,
    optional_when: Mapping[str, str] | None = None,
    defaults: bool = False,
) -> dict[str, Any]:
    """Check ``parameters`` against ``template.parameters``; return them in wire form.

    Unknown names are refused (listing the known ones); None and empty lists count as not
    given; a required parameter must be present unless the parameter named for it in
    ``optional_when`` is given (Stripe v1 runs for one ``payout`` need no interval). With
    ``defaults`` every optional parameter left out that declares a ``default`` is added
    (checked like a given one): for an API that applies none itself; an API with its own
    defaults (Stripe's) is better left to apply them. A parameter declaring ``after`` must
    be later than the one it names when both are given.
    """
    specs = template.parameters
    checker = _Checker(template, timestamp_format)
    known = sorted(specs)
    for name in parameters:
        if name not in specs:
            raise checker.error(name, "unknown parameter", known or "none")
    given = {name: value for name, value in parameters.items() if not _is_empty(value)}
    if defaults:
        for name, spec in specs.items():
            if name not in given and not spec.required and not _is_empty(spec.default):
                given[name] = spec.default
    exempt = optional_when or {}
    for name, spec in specs.items():
        if spec.required and name not in given and exempt.get(name) not in given:
            hint = _range_text(*_bounds(spec)) if spec.type == "timestamp" else spec.allowed_values
            raise checker.error(name, "is required", hint)
    clean = {name: checker.check(specs[name], value) for name, value in given.items()}
    for name, spec in specs.items():
        if spec.after is not None and name in given and spec.after in given:
            _check_order(checker, spec.after, given[spec.after], name, given[name])
    return clean


def _check_order(checker: _Checker, first: str, early: Any, second: str, late: Any) -> None:
    """``second`` must be later than ``first`` (both already checked as timestamps/dates)."""
    start, end = parse_timestamp(early), parse_timestamp(late)
    if end <= start:
        raise checker.error(
            second, f"{iso(end)} must be after {first} {iso(start)}", f"after {iso(start)}"
        )
