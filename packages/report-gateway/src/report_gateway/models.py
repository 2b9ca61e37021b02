"""Provider-neutral models: what a user and a plugin exchange, whatever the provider.

Every model is a frozen attrs class so a run or a template can be shared across threads and
kept as a snapshot: a new state of a run is a new object (the gateway compares two snapshots
to fire ``report_gateway_run_changed``). The provider's own payload stays in ``raw`` (kept out
of ``repr`` and equality: it is large and belongs to the provider's vocabulary).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

__all__ = [
    "CONTENT_CSV",
    "CONTENT_TSV_UTF16",
    "CONTENT_TYPES",
    "CONTENT_ZIP",
    "ParameterSpec",
    "ReportRun",
    "ReportTemplate",
    "ResultFile",
    "RunStatus",
    "Scope",
    "StartProgress",
]

#: UTF-8 (BOM tolerated) comma-separated text with a header row: Stripe v1 and v2 files.
CONTENT_CSV = "csv"
#: A ZIP archive holding one CSV file: Stripe v2 with ``compress_file``.
CONTENT_ZIP = "zip"
#: UTF-16 (little-endian unless a BOM says otherwise) tab-separated text: Zuora exports.
CONTENT_TSV_UTF16 = "tsv-utf16"


class RunStatus(enum.Enum):
    """Where a run is in its life, in one vocabulary for every provider.

    The provider's own word stays in ``ReportRun.raw_status``; plugins map it here through the
    ``report_gateway_map_status`` hook.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True once the run can no longer change, so waiting for it must stop."""
        return self in _TERMINAL


_TERMINAL = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELED})


@attrs.frozen(kw_only=True)
class Scope:
    """Whose data a request is about: one field per provider mechanism.

    ``account`` is Stripe v1's connected account (``Stripe-Account``), ``context`` Stripe v2's
    ``Stripe-Context``, ``entity_id``/``entity_name`` Zuora's multi-entity headers. A provider
    rejects fields it does not understand (``ScopeError``) rather than silently ignoring them,
    because a report about the wrong account is worse than no report.
    """

    account: str | None = None
    context: str | None = None
    entity_id: str | None = None
    entity_name: str | None = None

    @property
    def is_empty(self) -> bool:
        """True when the request goes to the credentials' own account (the common case)."""
        return not (self.account or self.context or self.entity_id or self.entity_name)

    def fields(self) -> dict[str, str]:
        """The fields that are set, by name: what an error message or a log should show."""
        # Read by name (no attrs.asdict): every scoped call asks, most with an empty scope.
        return {k: v for k in _SCOPE_FIELDS if (v := getattr(self, k))}


_SCOPE_FIELDS: tuple[str, ...] = tuple(field.name for field in attrs.fields(Scope))


@attrs.frozen(kw_only=True)
class ParameterSpec:
    """One parameter a report accepts, described well enough to validate and to prompt for.

    ``type`` is one of ``string``, ``integer``, ``number``, ``boolean``, ``timestamp`` (unix
    seconds or an ISO date/datetime), ``date``, ``array`` (items of ``element_type``),
    ``object``; ``minimum``/``maximum`` bound numbers and timestamps (a timestamp bound is an
    aware ``datetime``). ``default`` is what the report uses when the parameter is left out
    (``validate_parameters(defaults=True)`` sends it). ``after`` names another timestamp or
    date parameter this one must be later than, when both are given (``interval_end`` after
    ``interval_start``).
    """

    name: str
    type: str = "string"
    required: bool = False
    description: str | None = None
    allowed_values: tuple[str, ...] | None = None
    minimum: Any = None
    maximum: Any = None
    element_type: str | None = None
    default: Any = None
    after: str | None = None
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class ReportTemplate:
    """A report a provider can run (Stripe report type, Stripe v2 report, Zuora report).

    ``available_from``/``available_until`` carry the data window when the provider announces
    one (Stripe v1 ``data_available_start``/``data_available_end``), so callers can choose an
    interval that will validate.
    """

    provider: str
    id: str
    name: str
    description: str | None = None
    parameters: Mapping[str, ParameterSpec] = attrs.field(factory=dict)
    available_from: datetime | None = None
    available_until: datetime | None = None
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)


#: Every ``ResultFile.content_type`` the gateway can save and read.
CONTENT_TYPES = (CONTENT_CSV, CONTENT_ZIP, CONTENT_TSV_UTF16)


def _known_content_type(instance: Any, attribute: Any, value: str) -> None:
    if value not in CONTENT_TYPES:
        allowed = ", ".join(repr(v) for v in CONTENT_TYPES)
        raise ValueError(f"ResultFile.content_type {value!r} is not one of {allowed}")


@attrs.frozen(kw_only=True)
class ResultFile:
    """Where a finished run's bytes live and how to read them.

    ``content_type`` is one of ``CONTENT_CSV``, ``CONTENT_ZIP``, ``CONTENT_TSV_UTF16``
    (anything else is a ValueError here: downloads and rows decode by it, and would read an
    unknown format as CSV). ``size`` is the byte count the provider announced, checked after
    download; ``checksum`` is ``"<hashlib name>:<hex>"`` when the provider gives one. ``url``
    may be empty when the driver fetches the bytes through an API operation instead.
    ``needs_auth`` is informational, for the driver's own ``open_result`` and for callers
    inspecting a run: whether the API key goes with the request (never for a pre-signed
    URL); the gateway itself never reads it, since the driver opens the bytes.
    """

    url: str = attrs.field(default="", repr=False)
    size: int | None = None
    content_type: str = attrs.field(default=CONTENT_CSV, validator=_known_content_type)
    filename: str | None = None
    expires_at: datetime | None = None
    needs_auth: bool = False
    checksum: str | None = None
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class ReportRun:
    """A snapshot of one run: compare two snapshots to see what changed.

    ``error`` is the provider's reason for a failure (Stripe v1 ``error``, v2
    ``status_details``, Zuora INVALID/ERROR), kept verbatim because support asks for it.
    ``scope`` is the scope the run was created in: polling and downloading reuse it.
    """

    provider: str
    id: str
    report_id: str
    status: RunStatus
    raw_status: str
    created_at: datetime | None = None
    finished_at: datetime | None = None
    parameters: Mapping[str, Any] = attrs.field(factory=dict)
    scope: Scope = attrs.field(factory=Scope)
    result: ResultFile | None = None
    error: str | None = None
    raw: Mapping[str, Any] | None = attrs.field(default=None, repr=False, eq=False)


#: ``StartProgress.state`` while a start waits for the provider to have room for one more run.
WAITING_FOR_SLOT = "waiting_for_slot"


@attrs.frozen(kw_only=True)
class StartProgress:
    """What a start that has not created its run yet is waiting for (``Gateway.start``).

    Some providers refuse a run over a concurrency limit; a start that waits for room rather
    than failing can take minutes, and a user watching it deserves to know why.
    ``waited_seconds`` counts from when the start began waiting. ``position`` is the start's
    place in line (1: next to go) when the waiting side knows it, else None. ``reason`` is a
    short human phrase, not for parsing.
    """

    provider: str
    report_id: str
    state: str = WAITING_FOR_SLOT
    waited_seconds: float = 0.0
    position: int | None = None
    reason: str = ""
