"""A fan-out killed at each step, then ``report-gateway resume``: one run per scope, every
file verified.

The sandbox lives in this process, so its counters survive the child. The child kills
itself with SIGKILL at the step ``$REPORT_GATEWAY_CRASH_AT`` names (the journal's test
hook): after journaling a start (nothing sent), after the create answered (its run id not
written down), in the middle of a wait, in the middle of a download. Its settings and
journal come from a profile file both processes read.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from report_gateway import Gateway, Scope
from report_gateway.journal import CRASH_ENV
from report_gateway_sandbox import (
    STRIPE_TEST_KEY,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_ENTITIES,
    ZUORA_SECRET_ACCESS_KEY,
    Sandbox,
)

STEPS = ["after-journal", "after-create", "mid-wait", "mid-download"]
JOBS = {
    "stripe-v2": (
        "report_balance_summary",
        {"interval_start": "2025-01-01", "interval_end": "2025-02-01"},
        [{"context": f"ctx_{i}"} for i in range(4)],
    ),
    "stripe": (
        "balance.summary.1",
        {"interval_start": "2025-01-01", "interval_end": "2025-02-01"},
        [{"account": f"acct_{i}"} for i in range(4)],
    ),
    "zuora": (
        "ff8080816293d35b0162bcb3e7780a75",
        {"viewType": "Summary"},
        [{"entity_id": eid} for eid in ZUORA_ENTITIES],
    ),
}
#: Cases: a provider, with Zuora under each of its two authentications.
CASES = {"stripe-v2": "stripe-v2", "stripe": "stripe", "zuora": "zuora", "zuora-oauth": "zuora"}

CHILD = """
import json, sys
from report_gateway import Gateway, Scope
job = json.loads(sys.argv[1])
with Gateway() as gw:
    gw.run_many(job["provider"], job["report"], job["parameters"],
                scopes=[Scope(**s) for s in job["scopes"]], max_concurrency=job["workers"],
                output_dir=job["out"], poll_interval=0.05, max_interval=0.1)
print("finished without crashing")
"""


def _profile(sb: Sandbox, tmp_path: Path, *, zuora_oauth: bool = False) -> Path:
    config = tmp_path / "config.toml"
    zuora = (
        f'client_id = "{ZUORA_CLIENT_ID}"\nclient_secret = "{ZUORA_CLIENT_SECRET}"\n'
        f'base_url = "{sb.url}"'
        if zuora_oauth
        else f'api_access_key_id = "{ZUORA_ACCESS_KEY_ID}"\n'
        f'api_secret_access_key = "{ZUORA_SECRET_ACCESS_KEY}"\n'
        f'base_url = "{sb.zuora_base_url}"'
    )
    config.write_text(
        f"""
[profiles.default.gateway]
journal = "{tmp_path / "journal.sqlite3"}"

[profiles.default.stripe]
api_key = "{STRIPE_TEST_KEY}"
base_url = "{sb.stripe_base_url}"

[profiles.default.stripe-v2]
api_key = "{STRIPE_TEST_KEY}"
base_url = "{sb.stripe_base_url}"

[profiles.default.zuora]
{zuora}
""",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("step", STEPS)
def test_killed_at_each_step_then_resumed(
    case: str, step: str, make_sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Big enough results that a download reports progress before it ends.
    sb = make_sandbox(run_seconds=0.6, result_bytes=300_000, chunk_size=16_384)
    provider = CASES[case]
    report, parameters, scopes = JOBS[provider]
    config = _profile(sb, tmp_path, zuora_oauth=case == "zuora-oauth")
    out = tmp_path / "out"
    job = {"provider": provider, "report": report, "parameters": parameters}
    # Zuora with password auth has no idempotency key: a create another worker was sending
    # when the process died may or may not have left, and the journal rightly refuses to
    # guess (the entry ends "lost"). One worker keeps the kill on the step under test. Under
    # OAuth the key is sent, so two workers are as safe as with Stripe.
    job |= {"scopes": scopes, "out": str(out), "workers": 1 if case == "zuora" else 2}
    env = {**os.environ, "REPORT_GATEWAY_CONFIG": str(config), CRASH_ENV: step}
    env.pop("REPORT_GATEWAY_JOURNAL", None)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(job)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr

    monkeypatch.setenv("REPORT_GATEWAY_CONFIG", str(config))
    monkeypatch.delenv(CRASH_ENV, raising=False)
    monkeypatch.delenv("REPORT_GATEWAY_JOURNAL", raising=False)
    with Gateway(load_entrypoints=True) as gw:
        journal = gw.journal
        assert journal is not None
        left = journal.entries(unfinished=True)
        assert left, "the crash left work in the journal"

    from report_gateway.cli import main

    assert main(["resume"]) == 0

    with Gateway() as gw:
        assert gw.journal is not None
        assert gw.journal.entries(unfinished=True) == []
        for entry in left:
            done = gw.journal.get(entry.id)
            assert done is not None
            assert done.verified, done
        # The scopes the child never reached: the same fan-out makes them, skips the rest.
        result = gw.run_many(
            provider,
            report,
            parameters,
            scopes=[Scope(**s) for s in scopes],
            output_dir=out,
            poll_interval=0.05,
            max_interval=0.1,
        )
    assert result.ok, result.failed
    assert {o.path.name for o in result.outcomes if o.path} == {  # type: ignore[union-attr]
        p.name for p in out.iterdir() if not p.name.startswith(".")
    }
    assert sb.stats()["runs_created"][provider] == len(scopes)
    assert len(result.skipped) >= len({e.scope for e in left})
    if case == "zuora-oauth":
        keys = _run_report_keys(sb)
        assert len(keys) >= len(scopes)
        assert all(keys), "every Run a report under OAuth carries an Idempotency-Key"
        if step == "after-create":
            # The run made before the kill was recovered by sending its create again with
            # the journaled key: the sandbox answered with the same run.
            assert len(set(keys)) == len(scopes) < len(keys)


def _run_report_keys(sb: Sandbox) -> list[str | None]:
    """The Idempotency-Key of every Run a report the sandbox received, in order."""
    keys: list[str | None] = []
    for entry in sb.stats()["request_log"]:
        if entry["method"] == "POST" and entry["path"].endswith("/reportrun"):
            headers = {k.lower(): v for k, v in entry["headers"].items()}
            keys.append(headers.get("idempotency-key"))
    return keys
