"""Python types for the wire quirks of the providers, named so codegen can map spec formats.

They are plain stdlib types (`NewType` over `datetime` / `int`, an `enum.Enum` base) so a
generated model module imports nothing heavy; the converter gives them their meaning.
"""

from __future__ import annotations

import enum
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, NewType

__all__ = [
    "EpochMillisOrRfc3339",
    "FlexibleTime",
    "Int64String",
    "OpenEnum",
    "UnixTime",
    "format_rfc3339",
    "parse_epoch_millis",
    "parse_flexible_time",
    "parse_int64",
    "parse_rfc3339",
    "parse_unix_time",
]

UnixTime = NewType("UnixTime", datetime)
"""Spec `format: unix-time`: integer seconds on the wire, an aware UTC datetime in Python."""

FlexibleTime = NewType("FlexibleTime", datetime)
"""Spec `format: epoch-millis-or-rfc3339`: some APIs print epoch milliseconds on some pages
and "2018-04-13T02:11:38.464+0000" on others; both (and RFC 3339) must read."""

EpochMillisOrRfc3339 = FlexibleTime

Int64String = NewType("Int64String", int)
"""Spec int64 sent as a string ("209"); some pages print the integer, so accept both."""


class OpenEnum(str, enum.Enum):
    """Enum base whose unknown values become cached pseudo-members instead of a ValueError.

    Providers add statuses and codes without notice; a client that crashes on a new value
    is worse than one that carries it. `.value` is the raw string either way, and an unknown
    member is never listed when iterating the enum.
    """

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if not isinstance(value, str):
            return None
        member = str.__new__(cls, value)
        member._name_ = value
        member._value_ = value
        # setdefault: two threads meeting the same new value end with one shared member.
        return cls._value2member_map_.setdefault(value, member)

    @property
    def is_known(self) -> bool:
        """False for a value the enum's author did not list (a pseudo-member)."""
        return self._name_ in type(self).__members__

    def __str__(self) -> str:
        return str(self.value)


_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,9}))?\s*"
    r"(?:([Zz])|([+-])(\d\d):?(\d\d))?"
)


def parse_rfc3339(text: str) -> datetime:
    """RFC 3339 with up to 9 fractional digits (truncated to microseconds), `Z`, `+00:00`
    or a colon-less `+0000`; a missing offset is read as UTC. Always returns an aware datetime."""
    match = _RFC3339.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second, frac, _z, sign, off_h, off_m = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    tz = UTC
    if sign is not None:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        if offset:
            tz = timezone(-offset if sign == "-" else offset)
    return datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
    )


def format_rfc3339(value: datetime) -> str:
    """RFC 3339 text with `Z` for UTC; naive datetimes are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _integer(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{what}: expected an integer, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value.strip())
    raise ValueError(f"{what}: expected an integer, got {type(value).__name__}")


def parse_unix_time(value: object) -> datetime:
    """Unix seconds (int, or digits in a string) -> aware UTC datetime."""
    if type(value) is int:  # the wire's form: no _integer round
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromtimestamp(_integer(value, "unix time"), UTC)


def parse_epoch_millis(value: object) -> datetime:
    millis = _integer(value, "epoch milliseconds")
    seconds, rest = divmod(millis, 1000)
    return datetime.fromtimestamp(seconds, UTC).replace(microsecond=rest * 1000)


def parse_flexible_time(value: object) -> datetime:
    """Epoch milliseconds (int or digit string) or a timestamp string (RFC 3339 / +0000)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and not value.strip().lstrip("+-").isdigit():
        return parse_rfc3339(value)
    return parse_epoch_millis(value)


def parse_int64(value: object) -> int:
    """ "209" or 209 -> 209; anything else is a format error rather than a silent guess."""
    return _integer(value, "int64")
