"""Scenario 5, property tests: the converter, the status mapping and parameter validation
take anything a provider or a user can throw at them and answer with a value or one of our
errors, never another exception.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from report_gateway import Gateway, ParameterError, RunStatus
from report_gateway.config import Credentials, ProviderSettings
from report_gateway.provider import ProviderContext, UnknownStatusWarning
from report_gateway_sandbox import Sandbox
from reporting_runtime import (
    FlexibleTime,
    Int64String,
    OpenEnum,
    ReportingError,
    UnixTime,
    structure,
    unstructure,
)

INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Unix seconds a provider can print: 1970 .. 9999.
UNIX = st.integers(min_value=0, max_value=253_402_300_799)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


class Colour(OpenEnum):
    RED = "red"
    GREEN = "green"


@attrs.frozen(kw_only=True)
class Sample:
    when: UnixTime
    size: Int64String
    colour: Colour
    created: datetime
    updated: FlexibleTime
    raw_payload: Mapping[str, Any] | None = attrs.field(
        default=None, repr=False, eq=False, metadata={"raw": True}
    )


def refusal(action: Callable[[], Any], allowed: type[Exception]) -> Exception | None:
    """The ``allowed`` error ``action`` raised, or None; any other exception propagates."""
    try:
        action()
    except allowed as exc:
        return exc
    return None


def sample(**changes: Any) -> dict[str, Any]:
    return {
        "when": 1_700_000_000,
        "size": "209",
        "colour": "red",
        "created": "2024-01-01T00:00:00Z",
        "updated": 1_700_000_000_000,
        **changes,
    }


# -- converter -----------------------------------------------------------------------------


@given(seconds=UNIX)
def test_unix_time_round_trips(seconds: int) -> None:
    value = structure(sample(when=seconds), Sample)
    assert value.when == datetime.fromtimestamp(seconds, UTC)
    assert value.when.tzinfo is not None
    assert unstructure(value)["when"] == seconds


@given(number=INT64, as_text=st.booleans())
def test_int64_accepts_strings_and_ints_without_loss(number: int, as_text: bool) -> None:
    value = structure(sample(size=str(number) if as_text else number), Sample)
    assert value.size == number
    assert unstructure(value)["size"] == str(number)


@given(word=st.text(min_size=1, max_size=40))
def test_open_enum_keeps_any_value(word: str) -> None:
    value = structure(sample(colour=word), Sample)
    assert value.colour.value == word
    assert unstructure(value)["colour"] == word
    assert value.colour.is_known == (word in ("red", "green"))


@given(
    moment=st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
    ),
    digits=st.integers(min_value=0, max_value=9),
    suffix=st.sampled_from(["Z", "+00:00", "+0000", "-05:30", "+0100"]),
)
def test_rfc3339_with_up_to_nine_fraction_digits(
    moment: datetime, digits: int, suffix: str
) -> None:
    nanos = f"{moment.microsecond:06d}999"[:digits]
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{nanos}" if digits else "") + suffix
    offset = timedelta(0)
    if suffix not in ("Z", "+00:00", "+0000"):
        sign = -1 if suffix[0] == "-" else 1
        hours, minutes = int(suffix[1:3]), int(suffix[-2:])
        offset = sign * timedelta(hours=hours, minutes=minutes)
    expected = moment.replace(
        microsecond=int(nanos[:6].ljust(6, "0")) if digits else 0,
        tzinfo=timezone(offset),
    )
    for field in ("created", "updated"):
        assert getattr(structure(sample(**{field: text}), Sample), field) == expected


@given(millis=st.integers(min_value=0, max_value=253_402_300_799_000))
def test_zuora_time_reads_epoch_millis(millis: int) -> None:
    value = structure(sample(updated=millis), Sample)
    assert value.updated == datetime.fromtimestamp(millis / 1000, UTC).replace(
        microsecond=(millis % 1000) * 1000
    )


@given(field=st.sampled_from(["when", "size", "colour", "created", "updated"]), junk=JSON)
def test_any_json_value_structures_or_raises_our_error(field: str, junk: Any) -> None:
    error = refusal(lambda: structure(sample(**{field: junk}), Sample), ReportingError)
    assert error is None or str(error)


@given(junk=JSON)
def test_any_json_document_structures_or_raises_our_error(junk: Any) -> None:
    error = refusal(lambda: structure(junk, Sample), ReportingError)
    assert error is None or str(error)


@given(extra=st.dictionaries(st.text(), JSON, max_size=4))
def test_unknown_fields_are_ignored_but_kept(extra: dict[str, Any]) -> None:
    data = {**extra, **sample()}
    value = structure(data, Sample)
    assert value.raw_payload == data


# -- status mapping ---------------------------------------------------------------------------

KNOWN = {
    "stripe": {
        "pending": RunStatus.PENDING,
        "succeeded": RunStatus.SUCCEEDED,
        "failed": RunStatus.FAILED,
    },
    "stripe-v2": {
        "running": RunStatus.RUNNING,
        "succeeded": RunStatus.SUCCEEDED,
        "failed": RunStatus.FAILED,
    },
    "zuora": {
        "STARTED": RunStatus.RUNNING,
        "QUERYDATA": RunStatus.RUNNING,
        "PROCESSINGDATA": RunStatus.RUNNING,
        "COMPLETED": RunStatus.SUCCEEDED,
        "CANCELLED": RunStatus.CANCELED,
        "INVALID": RunStatus.FAILED,
        "ERROR": RunStatus.FAILED,
    },
}


@pytest.fixture(scope="module")
def plugins_gateway() -> Gateway:
    return Gateway(environ={})


def context_for(gateway: Gateway, provider: str) -> ProviderContext:
    """The context a driver gets, with the status mapping wired to the installed hooks."""

    def hook(raw: str) -> RunStatus | None:
        answer: RunStatus | None = gateway.pm.hook.report_gateway_map_status(
            provider=provider, raw_status=raw
        )
        return answer

    return ProviderContext(
        spec=gateway.spec(provider),
        settings=ProviderSettings(provider),
        credentials=Credentials({}, source="test"),
        auth=None,
        scope_headers=lambda scope: {},
        map_status=hook,
        transport_factory=gateway.transport,
    )


@pytest.mark.parametrize("provider", sorted(KNOWN))
def test_documented_statuses_map_as_documented(plugins_gateway: Gateway, provider: str) -> None:
    context = context_for(plugins_gateway, provider)
    for raw, status in KNOWN[provider].items():
        assert context.map_status(raw) is status


@pytest.mark.parametrize("provider", sorted(KNOWN))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.text(max_size=30))
def test_every_status_word_maps_to_a_run_status(
    plugins_gateway: Gateway, provider: str, raw: str
) -> None:
    context = context_for(plugins_gateway, provider)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnknownStatusWarning)
        status = context.map_status(raw)
    assert isinstance(status, RunStatus)
    if raw not in KNOWN[provider] and raw.strip().upper() not in {
        k.upper() for k in KNOWN[provider]
    }:
        # A word nobody documented never ends a wait by accident.
        assume(raw.strip().lower() not in {s.value for s in RunStatus} | {"cancelled"})
        assert status is RunStatus.RUNNING


# -- parameter validation ---------------------------------------------------------------------

KNOWN_NAMES = frozenset(
    {
        "interval_start",
        "interval_end",
        "columns",
        "currency",
        "timezone",
        "payout",
        "reporting_category",
        "connected_account",
        "organization_report_granularity",
        "result_options",
        "viewType",
        "filters",
        "parameters",
    }
)
NAMES = st.sampled_from(sorted(KNOWN_NAMES)) | st.text(max_size=12)
VALUES = (
    JSON
    | st.datetimes(timezones=st.just(UTC))
    | st.dates()
    | st.sampled_from(["Summary", "Detail", "2024-01-01", "2024-01-01T00:00:00Z", "usd"])
    | UNIX
)
PARAMETERS = st.dictionaries(NAMES, VALUES, max_size=5)


@pytest.fixture(scope="module")
def validating_gateway(sandbox_server: Sandbox, kit: Any) -> Any:
    gateway = Gateway(kit.provider_settings(sandbox_server), environ={}, retry=kit.FAST_RETRY)
    yield gateway
    gateway.close()


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parameters=PARAMETERS)
def test_parameters_are_accepted_or_refused_by_name(
    validating_gateway: Gateway, kit: Any, provider: str, parameters: dict[str, Any]
) -> None:
    report_id = kit.REPORTS[provider][0]
    error = refusal(
        lambda: validating_gateway.validate(provider, report_id, parameters), ParameterError
    )
    if error is not None:
        assert isinstance(error, ParameterError)
        # Named as given (a user's key), or a documented one that is missing or wrong.
        assert repr(error.parameter) in str(error)
        names = {*parameters, *KNOWN_NAMES}
        assert error.parameter in names or any(error.parameter.startswith(n) for n in names if n)
