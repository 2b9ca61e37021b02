"""Scenario 6: keys and passwords never appear in logs (any level, urllib3's included), in
reprs, in exception messages or in command output, through whole flows with retries,
resumed downloads and authentication failures.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, GatewayError
from report_gateway.cli import main
from report_gateway_sandbox import ZUORA_ACCESS_KEY_ID, FaultRule, Sandbox
from reporting_runtime import BasicAuth, BearerAuth, HeaderPairAuth

PROVIDERS = ["stripe", "stripe-v2", "zuora"]
GET_RUN = {
    "stripe": "/v1/reporting/report_runs/*",
    "stripe-v2": "/v2/reporting/report_runs/*",
    "zuora": "/api/rest/v1/reportruns/*",
}
RESULT = {
    "stripe": "/v1/files/*/contents",
    "stripe-v2": "/_files/v2/*",
    "zuora": "/api/rest/v1/reportruns/export/*",
}


def everything_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Each record as a handler would format it, with arguments and any traceback."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = [caplog.text]
    for record in caplog.records:
        texts.append(formatter.format(record))
        texts.append(repr(record.args))
    return texts


def error_texts(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    cause = getattr(error, "cause", None)
    if cause is not None:
        texts += [str(cause), repr(cause), repr(vars(cause))]
    texts.append(repr(vars(error)))
    return texts


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in ("urllib3", "reporting_runtime", "report_gateway", "report_gateway_stripe"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.mark.parametrize("provider", PROVIDERS)
def test_flow_with_faults_logs_no_secret_at_debug(
    provider: str,
    sandbox: Sandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    debug_logs: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    sandbox.configure(result_rows=3000, chunk_size=8192)
    sandbox.add_fault(FaultRule(kind="server_error", path=GET_RUN[provider], count=1))
    sandbox.add_fault(
        FaultRule(kind="rate_limit", path=GET_RUN[provider], retry_after=0.01, count=1)
    )
    sandbox.add_fault(
        FaultRule(kind="drop_connection", path=RESULT[provider], after_bytes=70_000, count=1)
    )
    gateway = make_gateway()
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    run = gateway.wait(run, timeout=60, poll_interval=0.05)
    gateway.download(run, tmp_path / "report.csv")
    assert list(gateway.rows(run))
    assert sandbox.stats()["faults_injected"]
    logged = everything_logged(debug_logs)
    assert any("urllib3" in record.name for record in debug_logs.records)
    assert any(record.name.startswith("reporting_runtime") for record in debug_logs.records)
    kit.assert_no_secret(logged, "DEBUG logs")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_authentication_failure_names_no_secret(
    provider: str,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    gateway = make_gateway(wrong=True)
    report_id, params = kit.REPORTS[provider]
    with pytest.raises(GatewayError) as caught:
        gateway.start(provider, report_id, params)
    assert getattr(caught.value, "status", None) == 401
    kit.assert_no_secret(error_texts(caught.value), "the 401 error")
    kit.assert_no_secret(everything_logged(debug_logs), "DEBUG logs of a 401")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_reprs_hold_no_secret(
    provider: str, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    gateway = make_gateway()
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    driver = gateway.driver(provider)
    settings = gateway.settings(provider)
    objects: list[Any] = [gateway, settings, driver, run, gateway.spec(provider)]
    objects += [vars(driver).get(name) for name in ("client", "context", "v1", "files")]
    context = getattr(driver, "context", None)
    if context is not None:
        objects += [context, context.credentials, context.auth, context.settings]
    client = getattr(driver, "client", None)
    if client is not None:
        objects += [client.pipeline, client.auth, *client.pipeline.policies]
    objects += [
        BearerAuth(kit.STRIPE_SECRET),
        BasicAuth(kit.STRIPE_SECRET),
        HeaderPairAuth(
            {"apiAccessKeyId": ZUORA_ACCESS_KEY_ID, "apiSecretAccessKey": kit.ZUORA_SECRET}
        ),
    ]
    texts = [repr(o) for o in objects if o is not None] + [str(o) for o in objects if o is not None]
    kit.assert_no_secret(texts, "a repr")


def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kit: Any, *, wrong: bool) -> None:
    for name in ("REPORT_GATEWAY_CONFIG", "REPORT_GATEWAY_PROFILE", "REPORT_GATEWAY_LOAD_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("STRIPE_API_KEY", kit.STRIPE_WRONG if wrong else kit.STRIPE_SECRET)
    monkeypatch.setenv("ZUORA_API_ACCESS_KEY_ID", ZUORA_ACCESS_KEY_ID)
    monkeypatch.setenv(
        "ZUORA_API_SECRET_ACCESS_KEY", kit.ZUORA_WRONG if wrong else kit.ZUORA_SECRET
    )


def cli_run(provider: str, sandbox: Sandbox, kit: Any, output: Path, *extra: str) -> list[str]:
    report_id, params = kit.REPORTS[provider]
    base = sandbox.zuora_base_url if provider == "zuora" else sandbox.stripe_base_url
    argv = ["run", provider, report_id, "--base-url", base, "-o", str(output), *extra]
    for name, value in params.items():
        argv += ["-p", f"{name}={value}"]
    if provider == "stripe":
        argv += ["--set", f"files_base_url={sandbox.files_base_url}"]
    return argv


@pytest.mark.parametrize("wrong", [False, True], ids=["ok", "401"])
@pytest.mark.parametrize("extra", [["--json"], ["--debug"]], ids=["json", "debug"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_command_line_output_holds_no_secret(
    provider: str,
    extra: list[str],
    wrong: bool,
    sandbox: Sandbox,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cli_env(monkeypatch, tmp_path, kit, wrong=wrong)
    sandbox.add_fault(FaultRule(kind="server_error", path=GET_RUN[provider], count=1))
    code = main(cli_run(provider, sandbox, kit, tmp_path / "out.csv", *extra))
    captured = capsys.readouterr()
    assert code == (3 if wrong else 0), captured.err
    kit.assert_no_secret([captured.out, captured.err, caplog.text], "command output")
