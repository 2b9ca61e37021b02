"""Parquet and JSON lines: atomic like ``download``, written batch by batch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from report_gateway import Gateway, ReportRun, tabular
from report_gateway.errors import DownloadError, IntegrityError, MissingExtraError
from report_gateway_sandbox import FaultRule, Sandbox

from .conftest import RESULT_PATH
from .test_arrow import RUN, FakeGateway, as_gateway


def test_parquet_round_trip_typed(
    gateway: Gateway, finished: Callable[[str], ReportRun], tmp_path: Path
) -> None:
    run = finished("stripe-v2")
    path = gateway.to_parquet(run, tmp_path / "out.parquet")
    assert path == tmp_path / "out.parquet"
    table = pq.read_table(path)
    assert table.equals(gateway.to_arrow(run))
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]  # no temporary left


def test_parquet_into_a_folder_takes_the_results_name(
    gateway: Gateway, finished: Callable[[str], ReportRun], tmp_path: Path
) -> None:
    run = finished("stripe")
    path = gateway.to_parquet(run, tmp_path)
    assert path.parent == tmp_path
    assert path.suffix == ".parquet"
    assert pq.read_metadata(path).num_rows == 300


def test_parquet_row_groups_are_the_batches(tmp_path: Path) -> None:
    rows = [{"i": str(i)} for i in range(1000)]
    path = tabular.to_parquet(as_gateway(FakeGateway(rows)), RUN, tmp_path / "x.parquet",
                              batch_rows=256)  # fmt: skip
    meta = pq.read_metadata(path)
    assert meta.num_rows == 1000
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [256] * 3 + [232]


def test_failure_mid_stream_leaves_no_file_and_the_old_one_untouched(tmp_path: Path) -> None:
    rows = [{"i": str(i)} for i in range(1000)]
    target = tmp_path / "x.parquet"
    target.write_bytes(b"yesterday")
    fake = FakeGateway(rows, fail_after=600)
    with pytest.raises(IntegrityError, match="cut"):
        tabular.to_parquet(as_gateway(fake), RUN, target, batch_rows=256)
    assert fake.pulled == 600  # two batches were written before the cut
    assert target.read_bytes() == b"yesterday"
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]
    with pytest.raises(IntegrityError):
        tabular.write_jsonl(as_gateway(FakeGateway(rows, fail_after=10)), RUN, tmp_path / "y")
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
def test_truncated_body_from_the_sandbox_leaves_no_parquet(
    provider: str,
    sandbox: Sandbox,
    gateway: Gateway,
    finished: Callable[[str], ReportRun],
    tmp_path: Path,
) -> None:
    run = finished(provider)
    sandbox.add_fault(FaultRule(kind="truncate_body", path=RESULT_PATH[provider], after_bytes=2000))
    with pytest.raises(DownloadError):
        gateway.to_parquet(run, tmp_path / "out.parquet", batch_rows=10)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_refuses_before_reading(tmp_path: Path) -> None:
    target = tmp_path / "x.parquet"
    target.write_bytes(b"keep")
    fake = FakeGateway([{"i": "1"}])
    with pytest.raises(DownloadError, match="exists"):
        tabular.to_parquet(as_gateway(fake), RUN, target, overwrite=False)
    assert target.read_bytes() == b"keep"


def test_jsonl_rows_as_objects(
    gateway: Gateway, finished: Callable[[str], ReportRun], tmp_path: Path
) -> None:
    run = finished("zuora")
    path = tabular.write_jsonl(gateway, run, tmp_path / "out.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(gateway.rows(run))


def test_a_missing_extra_names_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("pyarrow", "pyarrow.parquet", "pandas", "polars"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r'pip install "report-gateway\[arrow\]"'):
        tabular.to_arrow(as_gateway(FakeGateway([])), RUN)
    with pytest.raises(MissingExtraError, match=r'pip install "report-gateway\[pandas\]"'):
        tabular.to_pandas(as_gateway(FakeGateway([])), RUN)
    with pytest.raises(MissingExtraError, match=r'pip install "report-gateway\[polars\]"'):
        tabular.to_polars(as_gateway(FakeGateway([])), RUN)


def test_no_extra_is_imported_unless_used() -> None:
    code = (
        "import sys, report_gateway, report_gateway.tabular, report_gateway.cli.commands\n"
        "from report_gateway import Gateway\n"
        "print(sorted(m for m in ('pyarrow', 'pandas', 'polars') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
