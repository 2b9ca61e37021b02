"""Each recorded flow, replayed through the real Gateway and plugins; live with ``--live``.

A replay has no server and no network: vcrpy answers every request from the cassette,
matched on method, path, query and body, each recorded answer used once. So the replayed
``wait`` polls exactly as often as the recording did, and a request the flow sends that the
recording did not (or one it no longer sends) fails the test.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from report_gateway import Gateway, RunStatus

from tests.recording.cassettes import cassette_path, replay_vcr
from tests.recording.flows import EXPECTED_STATUS, FLOWS, Flow, FlowContext, FlowResult
from tests.recording.recorder import (
    RECORD_ROWS,
    live_settings,
    missing_live_credentials,
    private_environ,
)
from tests.recording.scrubbing import REPLAY_ORIGIN

FLOW_IDS = [flow.id for flow in FLOWS]

#: Credentials for replays: sent nowhere (headers are not matched), only needed to build
#: the drivers.
REPLAY_SETTINGS: dict[str, dict[str, Any]] = {
    "stripe": {
        "api_key": "sk_test_replay",
        "base_url": REPLAY_ORIGIN,
        "files_base_url": REPLAY_ORIGIN,
    },
    "stripe-v2": {"api_key": "sk_test_replay", "base_url": REPLAY_ORIGIN},
    "zuora": {
        "api_access_key_id": "replay",
        "api_secret_access_key": "replay",
        "base_url": REPLAY_ORIGIN + "/api/rest/v1",
    },
}


class Sleeps:
    """The gateway's sleep, replaced: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _cassette(flow: Flow) -> tuple[Path, str, list[dict[str, Any]]]:
    path = cassette_path(flow.provider, flow.name)
    text = path.read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    return path, text.splitlines()[0], document["interactions"]


def _result_table(interactions: list[dict[str, Any]]) -> tuple[bytes, list[list[str]], str] | None:
    """The last result file in the recording, parsed here without any gateway code."""
    for interaction in reversed(interactions):
        response = interaction["response"]
        headers = {k.lower(): v[0] for k, v in response["headers"].items()}
        content_type = headers.get("content-type", "")
        if response["status"]["code"] != 200 or "csv" not in content_type:
            continue
        body = response["body"]["string"]
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        if "utf-16" in content_type.lower():
            rows = list(csv.reader(io.StringIO(raw.decode("utf-16"), newline=""), delimiter="\t"))
        else:
            rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
        return raw, rows, content_type
    return None


def _file_table(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.reader(fh))


def _polls(interactions: list[dict[str, Any]], run_id: str) -> int:
    """How many times the recording read the run after creating it (what `wait` polled)."""
    run_path = re.compile(r"/(?:report_runs|reportruns)/" + re.escape(run_id) + r"$")
    return sum(
        1
        for i in interactions
        if i["request"]["method"] == "GET" and run_path.search(i["request"]["uri"].split("?")[0])
    )


def _recorded_at(interactions: list[dict[str, Any]]) -> datetime:
    """When the recording was made: the first response's Date header."""
    for interaction in interactions:
        for name, values in interaction["response"]["headers"].items():
            if name.lower() == "date":
                return parsedate_to_datetime(values[0])
    raise AssertionError("no response in the recording has a Date header")


def _freeze_expiry_clock(gateway: Gateway, provider: str, moment: datetime) -> None:
    """Replay at the time of recording: a pre-signed URL that was fresh then is fresh now.

    Otherwise a driver that refreshes expired URLs (Stripe v2, after 5 minutes) would ask
    for the run again, a request the recording never made. Drivers expose the clock they
    check expiry with as ``now`` ("replaceable in tests"); one without it needs nothing.
    """
    driver = gateway.driver(provider)
    if callable(getattr(driver, "now", None)):
        driver.now = lambda: moment  # type: ignore[attr-defined]


@pytest.fixture
def replay_gateway(tmp_path: Path) -> Iterator[Gateway]:
    home = tmp_path / "config-home"
    home.mkdir()
    with Gateway(REPLAY_SETTINGS, environ=private_environ(str(home))) as gateway:
        yield gateway


def _assert_user_visible(flow: Flow, result: FlowResult) -> None:
    assert result.run.status is EXPECTED_STATUS[flow.id]
    if result.run.status is not RunStatus.SUCCEEDED:
        return
    assert result.file is not None
    assert result.file.stat().st_size == result.bytes > 0
    assert result.header, "the result has a header row"
    assert all(name.strip() for name in result.header)
    assert result.rows > 0
    if flow.id == "stripe/balance-summary":
        assert result.notes["listed"], "the run is in the list of recent runs"
        assert result.notes["streamed_rows"] == result.rows
        assert result.notes["streamed_header"] == result.header
    if flow.id == "zuora/export":
        assert result.notes["last_completed"] == result.run.id
    announced = result.notes.get("announced_size")
    if announced is not None:
        assert announced == result.bytes


@pytest.mark.parametrize("flow", FLOWS, ids=FLOW_IDS)
def test_flow_replays(flow: Flow, replay_gateway: Gateway, tmp_path: Path) -> None:
    path, first_line, interactions = _cassette(flow)
    sleeps = Sleeps()
    context = FlowContext(out_dir=tmp_path / "out", sleep=sleeps)
    _freeze_expiry_clock(replay_gateway, flow.provider, _recorded_at(interactions))
    with replay_vcr().use_cassette(str(path), allow_playback_repeats=False) as cassette:
        result = flow.run(replay_gateway, context)
        assert cassette.all_played, "every recorded request was sent again"
        assert cassette.play_count == len(interactions)

    _assert_user_visible(flow, result)
    if result.run.status is RunStatus.SUCCEEDED:
        # One sleep per poll: the recorded statuses, not the clock, ended the wait.
        assert len(sleeps.calls) == _polls(interactions, result.run.id)
        recorded = _result_table(interactions)
        assert recorded is not None, "the recording holds the result file"
        raw, table, content_type = recorded
        assert result.file is not None
        # The file the user gets holds exactly the rows the service sent.
        assert _file_table(result.file) == table
        assert result.header == table[0]
        assert result.rows == len(table) - 1
        if "utf-16" not in content_type.lower():
            assert result.file.read_bytes() == raw  # CSV results are saved byte for byte
        if "from the sandbox" in first_line:
            assert result.rows == RECORD_ROWS


def test_every_flow_has_a_cassette() -> None:
    missing = [f.id for f in FLOWS if not cassette_path(f.provider, f.name).is_file()]
    assert missing == [], "record them with `nox -s record`"


def test_flow_cassettes_say_where_they_came_from() -> None:
    for flow in FLOWS:
        _, first_line, _ = _cassette(flow)
        assert first_line.startswith("# recorded from "), flow.id
        assert "nox -s record" in first_line


@pytest.mark.live
@pytest.mark.parametrize("flow", FLOWS, ids=FLOW_IDS)
def test_flow_live(flow: Flow, tmp_path: Path) -> None:
    """The same flow against the real service (``pytest --live``, credentials in the env)."""
    missing = missing_live_credentials(flow.provider)
    if missing:
        pytest.skip(f"{flow.provider}: set {', '.join(missing)} to run live")
    import os
    import time

    from tests.recording.recorder import ZUORA_QUERY_ENV

    home = tmp_path / "config-home"
    home.mkdir()
    query = os.environ.get(ZUORA_QUERY_ENV)
    context = FlowContext(
        out_dir=tmp_path / "out",
        sleep=time.sleep,
        poll_interval=2.0,
        timeout=900.0,
        **({"zuora_query": query} if query else {}),
    )
    with Gateway(live_settings(), environ=private_environ(str(home))) as gateway:
        result = flow.run(gateway, context)
    _assert_user_visible(flow, result)
