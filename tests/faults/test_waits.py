"""Scenario 4: waits. A wait interrupted (timeout, crash, Ctrl-C) resumes from the run id,
in a new process or with the command line, without creating another run; a deadline fires
within one poll interval (checked on an injected clock: polls are counted, nothing waits).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, RunStatus
from report_gateway.cli import main
from report_gateway.errors import WaitTimeoutError
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
)

PROVIDERS = ["stripe", "stripe-v2", "zuora"]


class FakeTime:
    """A monotonic clock that only moves when the wait sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def polls(sandbox: Sandbox, kit: Any, provider: str) -> int:
    operation = "get_report_run" if provider == "zuora" else "retrieve_report_run"
    return len(kit.requests_to(sandbox, operation, provider))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_wait_resumes_from_the_run_id_in_a_new_gateway(
    provider: str, sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    sandbox.configure(run_seconds=0.5)
    report_id, params = kit.REPORTS[provider]
    run_id = make_gateway().start(provider, report_id, params).id
    # The first process is gone; a second one knows only the provider and the run id.
    later = make_gateway()
    done = later.wait(later.get(provider, run_id), timeout=60, poll_interval=0.05)
    assert done.id == run_id
    assert done.status is RunStatus.SUCCEEDED
    assert sandbox.stats()["runs_created"][provider] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_deadline_fires_within_one_poll_interval(
    provider: str, sandbox: Sandbox, gateway: Gateway, kit: Any
) -> None:
    sandbox.configure(run_seconds=600)
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    fake = FakeTime()
    before = polls(sandbox, kit, provider)
    with pytest.raises(WaitTimeoutError) as caught:
        gateway.wait(
            run,
            timeout=120,
            poll_interval=2,
            max_interval=10,
            clock=fake.clock,
            sleep=fake.sleep,
        )
    # No sleep runs past the deadline, and the timeout is raised as soon as it is reached.
    assert fake.now == pytest.approx(120)
    assert max(fake.sleeps) <= 10
    assert polls(sandbox, kit, provider) - before == len(fake.sleeps)
    error = caught.value
    assert error.run_id == run.id
    assert f"report-gateway wait {provider} {run.id}" in str(error)
    assert sandbox.stats()["runs_created"][provider] == 1


def test_timed_out_wait_then_resume_creates_no_second_run(
    sandbox: Sandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    sandbox.configure(run_seconds=0.5)
    gateway = make_gateway()
    report_id, params = kit.REPORTS["zuora"]
    run = gateway.start("zuora", report_id, params)
    fake = FakeTime()
    with pytest.raises(WaitTimeoutError) as caught:
        gateway.wait(run, timeout=3, poll_interval=1, clock=fake.clock, sleep=fake.sleep)
    resumed = make_gateway().wait(caught.value.run or run, timeout=60, poll_interval=0.05)
    assert resumed.status is RunStatus.SUCCEEDED
    assert sandbox.stats()["runs_created"]["zuora"] == 1


def cli_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("REPORT_GATEWAY_CONFIG", "REPORT_GATEWAY_PROFILE", "REPORT_GATEWAY_LOAD_PLUGINS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("STRIPE_API_KEY", STRIPE_TEST_KEY)
    monkeypatch.setenv("ZUORA_API_ACCESS_KEY_ID", ZUORA_ACCESS_KEY_ID)
    monkeypatch.setenv("ZUORA_API_SECRET_ACCESS_KEY", ZUORA_SECRET_ACCESS_KEY)


def base_url(sandbox: Sandbox, provider: str) -> str:
    return sandbox.zuora_base_url if provider == "zuora" else sandbox.stripe_base_url


@pytest.mark.parametrize("provider", ["stripe", "zuora"])
def test_cli_wait_resumes_a_run_by_id(
    provider: str,
    sandbox: Sandbox,
    gateway: Gateway,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_environment(monkeypatch, tmp_path)
    report_id, params = kit.REPORTS[provider]
    run = gateway.start(provider, report_id, params)
    code = main(["wait", provider, run.id, "--base-url", base_url(sandbox, provider), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    shown = json.loads(out)
    assert shown["id"] == run.id
    assert shown["status"] == "succeeded"
    assert sandbox.stats()["runs_created"][provider] == 1


def test_cli_wait_timeout_exits_5_and_says_how_to_resume(
    sandbox: Sandbox,
    gateway: Gateway,
    kit: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cli_environment(monkeypatch, tmp_path)
    sandbox.configure(run_seconds=600)
    report_id, params = kit.REPORTS["zuora"]
    run = gateway.start("zuora", report_id, params)
    code = main(["wait", "zuora", run.id, "--base-url", sandbox.zuora_base_url, "--timeout", "0.2"])
    captured = capsys.readouterr()
    assert code == 5
    assert f"report-gateway wait zuora {run.id}" in captured.err + captured.out
    assert "Traceback" not in captured.err
    assert sandbox.stats()["runs_created"]["zuora"] == 1
