"""Scenario 3: downloads. A dropped body resumes (Range) or restarts; an expired pre-signed
URL is refreshed; a body that never arrives whole fails loudly, leaving no file at the
target (an existing one untouched) and no temporary files behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError, Gateway, GatewayError
from report_gateway_sandbox import FaultRule, Sandbox

PROVIDERS = ["stripe", "stripe-v2", "zuora"]


def result_requests(sandbox: Sandbox, kit: Any, provider: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = kit.requests_to(sandbox, kit.RESULT_OPERATION[provider])
    return entries


def only_file(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def big_results(sandbox: Sandbox) -> None:
    """Results of several MiB: the gateway reads 1 MiB chunks, so a cut after 1.5 MB has
    delivered a whole chunk that a resume must not fetch again."""
    sandbox.configure(result_bytes=3_000_000, chunk_size=65536)


@pytest.mark.usefixtures("big_results")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_dropped_connection_resumes_with_range(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any, tmp_path: Path
) -> None:
    run = kit.finished_run(gateway, provider)
    clean = gateway.download(run, tmp_path / "clean.csv").read_bytes()
    sandbox.add_fault(
        FaultRule(
            kind="drop_connection", path=kit.RESULT_PATH[provider], after_bytes=1_500_000, count=1
        )
    )
    target = gateway.download(run, tmp_path / "resumed.csv")
    assert target.read_bytes() == clean
    fetches = result_requests(sandbox, kit, provider)[-2:]
    assert kit.header(fetches[0], "Range") is None
    resumed_from = kit.header(fetches[1], "Range")
    assert resumed_from is not None
    assert resumed_from.startswith("bytes=")
    assert int(resumed_from[len("bytes=") :].rstrip("-")) > 0
    assert fetches[1]["status"] == 206
    assert only_file(tmp_path) == ["clean.csv", "resumed.csv"]


@pytest.mark.usefixtures("big_results")
def test_dropped_connection_restarts_when_ranges_are_not_supported(
    sandbox: Sandbox, make_gateway: Any, kit: Any, tmp_path: Path
) -> None:
    with kit.RangelessProxy(sandbox.port) as proxy:
        base = f"http://127.0.0.1:{proxy.port}/api/rest/v1"
        gateway = make_gateway({"zuora": {"base_url": base}})
        run = kit.finished_run(gateway, "zuora")
        clean = gateway.download(run, tmp_path / "clean.csv").read_bytes()
        sandbox.add_fault(
            FaultRule(
                kind="drop_connection",
                path=kit.RESULT_PATH["zuora"],
                after_bytes=1_500_000,
                count=1,
            )
        )
        restarted = gateway.download(run, tmp_path / "restarted.csv").read_bytes()
    assert restarted == clean
    assert proxy.ranges_dropped == 1
    fetches = result_requests(sandbox, kit, "zuora")[-2:]
    assert [f["status"] for f in fetches] == [200, 200]
    assert only_file(tmp_path) == ["clean.csv", "restarted.csv"]


def test_expired_presigned_url_is_refreshed(
    sandbox: Sandbox, gateway: Gateway, kit: Any, tmp_path: Path
) -> None:
    run = kit.finished_run(gateway, "stripe-v2")
    sandbox.add_fault(FaultRule(kind="expired_url", path=kit.RESULT_PATH["stripe-v2"], count=1))
    polls_before = len(kit.requests_to(sandbox, "retrieve_report_run", "stripe-v2"))
    target = gateway.download(run, tmp_path / "report.csv")
    assert target.stat().st_size == run.result.size
    fetches = result_requests(sandbox, kit, "stripe-v2")
    assert [f["status"] for f in fetches] == [403, 200]
    # The fresh URL came from retrieving the run again.
    assert len(kit.requests_to(sandbox, "retrieve_report_run", "stripe-v2")) > polls_before
    assert fetches[0]["query"] != fetches[1]["query"] or fetches[0]["path"] == fetches[1]["path"]


def test_url_that_stays_expired_fails_with_a_clear_error(
    sandbox: Sandbox, gateway: Gateway, kit: Any, tmp_path: Path
) -> None:
    run = kit.finished_run(gateway, "stripe-v2")
    sandbox.add_fault(FaultRule(kind="expired_url", path=kit.RESULT_PATH["stripe-v2"]))
    with pytest.raises(GatewayError) as caught:
        gateway.download(run, tmp_path / "report.csv")
    assert "expired" in str(caught.value).lower() or "403" in str(caught.value)
    assert only_file(tmp_path) == []
    assert len(result_requests(sandbox, kit, "stripe-v2")) <= 5


@pytest.mark.usefixtures("big_results")
@pytest.mark.parametrize("fault", ["truncate_body", "drop_connection"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_body_that_never_arrives_whole_leaves_no_file(
    provider: str, fault: str, sandbox: Sandbox, gateway: Gateway, kit: Any, tmp_path: Path
) -> None:
    run = kit.finished_run(gateway, provider)
    sandbox.add_fault(FaultRule(kind=fault, path=kit.RESULT_PATH[provider], after_bytes=1_500_000))  # type: ignore[arg-type]
    with pytest.raises(DownloadError) as caught:
        gateway.download(run, tmp_path / "report.csv")
    message = str(caught.value)
    assert run.id in message
    assert "bytes" in message or "connection" in message
    assert only_file(tmp_path) == []


@pytest.mark.usefixtures("big_results")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_failed_download_leaves_an_existing_target_untouched(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any, tmp_path: Path
) -> None:
    run = kit.finished_run(gateway, provider)
    target = tmp_path / "report.csv"
    target.write_bytes(b"yesterday's complete report\n")
    sandbox.add_fault(
        FaultRule(kind="truncate_body", path=kit.RESULT_PATH[provider], after_bytes=1_500_000)
    )
    with pytest.raises(DownloadError):
        gateway.download(run, target)
    assert target.read_bytes() == b"yesterday's complete report\n"
    assert only_file(tmp_path) == ["report.csv"]


@pytest.mark.usefixtures("big_results")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_rows_of_a_truncated_body_end_in_an_error_not_silently(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    run = kit.finished_run(gateway, provider)
    sandbox.add_fault(
        FaultRule(kind="truncate_body", path=kit.RESULT_PATH[provider], after_bytes=1_500_000)
    )
    with pytest.raises(DownloadError):
        list(gateway.rows(run))


@pytest.mark.usefixtures("big_results")
@pytest.mark.parametrize("provider", PROVIDERS)
def test_rows_survive_a_dropped_connection_without_duplicates(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    run = kit.finished_run(gateway, provider)
    clean = list(gateway.rows(run))
    sandbox.add_fault(
        FaultRule(
            kind="drop_connection", path=kit.RESULT_PATH[provider], after_bytes=1_500_000, count=1
        )
    )
    assert list(gateway.rows(run)) == clean
    assert len(clean) > 1000
