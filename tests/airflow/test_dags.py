"""`airflow dags test` of the example DAG and of the faults DAG, against the sandbox."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from report_gateway_sandbox import STRIPE_TEST_KEY, FaultRule, Sandbox

from .conftest import LOGICAL_DATE, ROWS

ACCOUNTS = ["acct_1Example000001", "acct_1Example000002", "acct_1Example000003"]


def test_the_example_dag_defers_each_mapped_task_and_leaves_verified_files(
    dags_test: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    run = dags_test("example_report_gateway")
    assert run.returncode == 0, run.output[-3000:]
    states = run.states()
    assert states == {("balance_report", i): ("success", 1) for i in range(3)}
    # Every mapped task released its slot while its run was working.
    assert run.output.count("Pausing task as DEFERRED") == 3
    stats = sandbox.stats()
    assert stats["runs_created"]["stripe"] == 3
    created = [e for e in stats["request_log"] if e["method"] == "POST"]
    assert sorted(e["headers"].get("Stripe-Account") for e in created) == ACCOUNTS
    xcoms = run.xcoms("balance_report")
    assert sorted(xcoms) == [0, 1, 2]
    for index, value in xcoms.items():
        path = Path(value["path"])
        assert path == tmp_path / "out" / LOGICAL_DATE / f"{index}.csv"
        assert value["size"] == path.stat().st_size
        assert value["rows"] == ROWS
        with path.open(newline="") as f:
            assert sum(1 for _ in csv.DictReader(f)) == ROWS
        assert value["run_id"].startswith("frr_")
    assert len({v["run_id"] for v in xcoms.values()}) == 3
    assert STRIPE_TEST_KEY not in run.output


def test_a_connection_stored_in_the_database_reaches_the_trigger(
    dags_test: Any, sandbox: Sandbox, tmp_path: Path
) -> None:
    """The README's path: `airflow connections add`, no AIRFLOW_CONN_* variable. The
    deferred tasks' trigger finds the connection too, so every run is waited on and saved."""
    run = dags_test("example_report_gateway", stored_connection=True)
    assert run.returncode == 0, run.output[-3000:]
    assert "isn't defined" not in run.output
    assert run.states() == {("balance_report", i): ("success", 1) for i in range(3)}
    assert run.output.count("Pausing task as DEFERRED") == 3
    assert sandbox.stats()["runs_created"]["stripe"] == 3
    xcoms = run.xcoms("balance_report")
    assert sorted(xcoms) == [0, 1, 2]
    assert all(value["rows"] == ROWS for value in xcoms.values())
    assert STRIPE_TEST_KEY not in run.output


def test_a_retried_task_reuses_its_run_and_a_failed_run_fails_with_its_reason(
    dags_test: Any, sandbox: Sandbox
) -> None:
    # The retried task's first poll: a 500 the runtime may not retry, after the create.
    sandbox.add_fault(
        FaultRule(
            kind="server_error",
            method="GET",
            path="/v2/reporting/report_runs/*",
            count=1,
            should_retry=False,
        )
    )
    sandbox.add_fault(
        FaultRule(kind="fail_run", method="POST", path="/v1/reporting/report_runs", count=1)
    )
    run = dags_test("report_gateway_faults")
    states = run.states()
    output = run.output

    assert states[("retried", -1)] == ("success", 2), output[-3000:]
    stats = sandbox.stats()
    assert stats["runs_created"]["stripe-v2"] == 1
    keys = [
        e["headers"].get("Idempotency-Key")
        for e in stats["request_log"]
        if e["method"] == "POST" and e["path"].startswith("/v2/")
    ]
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert run.xcoms("retried")[-1]["rows"] == ROWS

    assert states[("provider_fails", -1)] == ("failed", 1)
    assert "An internal error occurred while generating the report" in output
    assert "stripe run frr_" in output
    # Nothing the operator, trigger or gateway logged carries the key (`dags test` prints
    # task logs unmasked, so this holds because nothing logs it, not because of ***).
    assert STRIPE_TEST_KEY not in output
