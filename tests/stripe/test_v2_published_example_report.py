"""Stripe v2's published Retrieve a Report example (``"enum_details": false``) through the
plugin, end to end against the sandbox: template, validate, start, wait, download; then the
plugin's own client asks for the run's file schema, which must leave as Stripe's deepObject
``include[0]=`` (the plugin's flow itself sends no ``include``)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote

import report_gateway_stripe.plugin as stripe_plugin
from report_gateway import Gateway, RunStatus
from report_gateway_sandbox import STRIPE_TEST_KEY, Sandbox, SandboxConfig

REPORT = "report_payouts_reconciliation"
WINDOW = {"interval_start": "2025-01-01T00:00:00Z", "interval_end": "2025-02-01T00:00:00Z"}


def test_report_with_enum_details_false_runs_end_to_end(tmp_path: Path) -> None:
    with (
        Sandbox(SandboxConfig(run_seconds=0.3, result_rows=5)) as sandbox,
        Gateway(
            {"stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": sandbox.url}},
            plugins=[stripe_plugin],
            load_entrypoints=False,
            environ={"XDG_CONFIG_HOME": str(tmp_path / "cfg")},
        ) as gw,
    ):
        template = gw.template("stripe-v2", REPORT)
        assert template.parameters["columns"].required is False
        assert gw.validate("stripe-v2", REPORT, WINDOW) == {
            "interval_start": "2025-01-01T00:00:00.000Z",
            "interval_end": "2025-02-01T00:00:00.000Z",
        }
        run = gw.wait(gw.start("stripe-v2", REPORT, WINDOW), timeout=20, poll_interval=0.05)
        assert run.status is RunStatus.SUCCEEDED
        assert gw.download(run, tmp_path / "payouts.csv").stat().st_size > 0
        before = len(sandbox.stats()["request_log"])
        client = gw.driver("stripe-v2").client  # type: ignore[attr-defined]
        with_schema = client.retrieve_report_run(run.id, include=["result.file.schema"])
        (logged,) = sandbox.stats()["request_log"][before:]
    assert unquote(logged["query"]) == "include[0]=result.file.schema"
    assert with_schema.result is not None
    assert with_schema.result.file is not None
    assert with_schema.result.file.schema
