"""The progress line: drawn in place on a terminal, silent otherwise."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from report_gateway.cli.progress import Progress
from report_gateway.models import ReportRun, RunStatus, StartProgress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _run(status: RunStatus, raw: str) -> ReportRun:
    return ReportRun(
        provider="stripe",
        id="frr_1",
        report_id="balance.summary.1",
        status=status,
        raw_status=raw,
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
    )


def test_waiting_rewrites_one_line_on_a_terminal() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress.waiting(_run(RunStatus.RUNNING, "QUERYDATA"), 0.0)
    progress.waiting(_run(RunStatus.SUCCEEDED, "succeeded"), 75.0)
    progress.finish()
    text = stream.getvalue()
    assert text.count("\n") == 1
    assert text.startswith("\rstripe run frr_1: running (QUERYDATA), 0.0s")
    # The shorter line is padded so no tail of the longer one stays on screen.
    assert text.endswith("\rstripe run frr_1: succeeded, 1m15s         \n")


def test_download_shows_bytes_percentage_rate_and_eta() -> None:
    now = [100.0]
    stream = Terminal()
    progress = Progress(stream, clock=lambda: now[0])
    progress.start_download()
    now[0] = 102.0
    progress.downloading(2_000_000, 10_000_000)
    line = stream.getvalue().rsplit("\r", 1)[-1]
    assert line == "downloading 2.0 MB / 10.0 MB (20%), 1.0 MB/s, ETA 8.0s"
    now[0] = 110.0
    progress.downloading(10_000_000, 10_000_000)
    progress.downloaded(9_000_000, "out.csv")
    final = stream.getvalue().rsplit("\r", 1)[-1]
    assert final.startswith("downloaded 10.0 MB in 10.0s (1.0 MB/s); wrote out.csv (9.0 MB)")


def test_silent_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(stream)
    progress.note("started")
    progress.waiting(_run(RunStatus.RUNNING, "running"), 1.0)
    progress.start_download()
    progress.downloading(10, 100)
    progress.downloaded(10, "x")
    assert stream.getvalue() == ""


def test_a_start_waiting_for_a_slot_shows_its_place_and_time() -> None:
    stream = Terminal()
    progress = Progress(stream)
    progress.starting(
        StartProgress(provider="stripe-v2", report_id="r", waited_seconds=3.0, position=2)
    )
    progress.starting(StartProgress(provider="stripe-v2", report_id="r", waited_seconds=4.0))
    progress.note("started stripe-v2 run rr_1 (r)")
    lines = stream.getvalue().split("\n")
    assert lines[0].split("\r")[1] == "waiting for a free run slot (position 2, 3.0s)"
    assert lines[0].split("\r")[2].rstrip() == "waiting for a free run slot (4.0s)"
    assert lines[1] == "started stripe-v2 run rr_1 (r)"


def test_a_waiting_start_is_quiet_when_not_a_terminal() -> None:
    stream = io.StringIO()
    Progress(stream).starting(StartProgress(provider="p", report_id="r", position=1))
    assert stream.getvalue() == ""


def test_elapsed_time_ticks_between_polls() -> None:
    now = [100.0]
    stream = Terminal()
    progress = Progress(stream, clock=lambda: now[0])
    progress.waiting(_run(RunStatus.RUNNING, "QUERYDATA"), 4.0)
    now[0] = 107.0  # no poll answered for 7 seconds: the line still moves
    progress.tick()
    progress.finish()
    assert "running (QUERYDATA), 11.0s" in stream.getvalue().rsplit("\r", 1)[-1]


def test_a_conversion_step_shows_its_own_state() -> None:
    from report_gateway.models import CONTENT_TSV_UTF16, ResultFile

    run = ReportRun(
        provider="zuora",
        id="r1",
        report_id="rep",
        status=RunStatus.SUCCEEDED,
        raw_status="COMPLETED",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        result=ResultFile(url="https://example.invalid/r1", content_type=CONTENT_TSV_UTF16),
    )
    stream = Terminal()
    progress = Progress(stream)
    progress.start_download(run)
    progress.downloading(5_000, 5_000)
    assert (
        stream.getvalue()
        .rsplit("\r", 1)[-1]
        .startswith("downloaded 5.0 kB; converting UTF-16 TSV to UTF-8 CSV...")
    )
    raw = Terminal()
    quiet = Progress(raw)
    quiet.start_download(run, raw=True)  # --raw: nothing to convert
    quiet.downloading(5_000, 5_000)
    assert "converting" not in raw.getvalue()


def test_unpacking_a_zip_shows_its_own_state_only_with_unzip() -> None:
    from report_gateway.models import CONTENT_ZIP, ResultFile

    run = ReportRun(
        provider="stripe",
        id="frr_1",
        report_id="rep",
        status=RunStatus.SUCCEEDED,
        raw_status="succeeded",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        result=ResultFile(url="https://example.invalid/f", content_type=CONTENT_ZIP),
    )
    stream = Terminal()
    progress = Progress(stream)
    progress.start_download(run, unzip=True)
    progress.downloading(5_000, 5_000)
    assert "unpacking the ZIP to its CSV..." in stream.getvalue().rsplit("\r", 1)[-1]
    kept = Terminal()
    as_zip = Progress(kept)
    as_zip.start_download(run)  # saved as the .zip: nothing to unpack
    as_zip.downloading(5_000, 5_000)
    assert "unpacking" not in kept.getvalue()
