"""Run every flow once under a recording cassette: from the sandbox, or from the live services.

Sandbox recordings keep results small (a handful of rows) and runs short, and point each
gateway at the sandbox with its test credentials; nothing from the user's environment or
config file is read. Live recordings take credentials from the environment only, and a
provider whose credentials are absent is skipped and named.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from report_gateway import Gateway

from .cassettes import cassette_path, recording_vcr
from .flows import FLOWS, ZUORA_QUERY, Flow, FlowContext, FlowResult
from .scrubbing import Scrubber

__all__ = [
    "LIVE_ENV",
    "RECORD_ROWS",
    "Recording",
    "live_settings",
    "missing_live_credentials",
    "record",
    "sandbox_settings",
]

#: Rows per result file in sandbox recordings: enough to see a table, small enough to read.
RECORD_ROWS = 5
#: Seconds a sandbox run takes, so the recorded waits show a pending status then success.
RUN_SECONDS = 0.6
POLL_SECONDS = 0.25

#: Environment variables each provider needs for a live recording or live test.
LIVE_ENV: Mapping[str, tuple[str, ...]] = {
    "stripe": ("STRIPE_API_KEY",),
    "stripe-v2": ("STRIPE_API_KEY",),
    "zuora": ("ZUORA_API_ACCESS_KEY_ID", "ZUORA_API_SECRET_ACCESS_KEY"),
}
#: Optional live settings: the Zuora data center and the report name to search for.
ZUORA_DATA_CENTER_ENV = "ZUORA_DATA_CENTER"
ZUORA_QUERY_ENV = "ZUORA_REPORT_QUERY"

GatewayFactory = Callable[[], Gateway]


@dataclass
class Recording:
    flow: Flow
    path: Path
    result: FlowResult | None = None
    skipped: str | None = None

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


def sandbox_settings(stripe_url: str, zuora_url: str) -> dict[str, dict[str, Any]]:
    from report_gateway_sandbox import STRIPE_TEST_KEY, ZUORA_ACCESS_KEY_ID, ZUORA_SECRET_ACCESS_KEY

    return {
        "stripe": {
            "api_key": STRIPE_TEST_KEY,
            "base_url": stripe_url,
            "files_base_url": stripe_url,
        },
        "stripe-v2": {"api_key": STRIPE_TEST_KEY, "base_url": stripe_url},
        "zuora": {
            "api_access_key_id": ZUORA_ACCESS_KEY_ID,
            "api_secret_access_key": ZUORA_SECRET_ACCESS_KEY,
            "base_url": zuora_url,
        },
    }


def private_environ(config_home: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """No provider variables and an empty config home: recordings depend on nothing local."""
    return {"XDG_CONFIG_HOME": config_home, **(extra or {})}


def missing_live_credentials(provider: str, environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    return [name for name in LIVE_ENV[provider] if not env.get(name)]


def live_settings(environ: Mapping[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """Settings for the real services, from the environment only."""
    env = os.environ if environ is None else environ
    settings: dict[str, dict[str, Any]] = {
        "stripe": {"api_key": env.get("STRIPE_API_KEY", "")},
        "stripe-v2": {"api_key": env.get("STRIPE_API_KEY", "")},
        "zuora": {
            "api_access_key_id": env.get("ZUORA_API_ACCESS_KEY_ID", ""),
            "api_secret_access_key": env.get("ZUORA_API_SECRET_ACCESS_KEY", ""),
        },
    }
    if env.get(ZUORA_DATA_CENTER_ENV):
        settings["zuora"]["data_center"] = env[ZUORA_DATA_CENTER_ENV]
    return settings


def live_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    names = {name for names in LIVE_ENV.values() for name in names}
    return [env[name] for name in sorted(names) if env.get(name)]


@contextmanager
def _gateways(settings: Mapping[str, Mapping[str, Any]]) -> Iterator[GatewayFactory]:
    with tempfile.TemporaryDirectory(prefix="record-config-") as home:
        built: list[Gateway] = []

        def make() -> Gateway:
            gateway = Gateway(settings, environ=private_environ(home))
            built.append(gateway)
            return gateway

        try:
            yield make
        finally:
            for gateway in built:
                gateway.close()


def _record_flows(
    flows: Sequence[Flow],
    make_gateway: GatewayFactory,
    scrubber: Scrubber,
    *,
    source: str,
    out_dir: Path,
    zuora_query: str,
) -> list[Recording]:
    recorder = recording_vcr(scrubber, source=source)
    context = FlowContext(
        out_dir=out_dir, sleep=time.sleep, poll_interval=POLL_SECONDS, zuora_query=zuora_query
    )
    recordings = []
    for flow in flows:
        path = cassette_path(flow.provider, flow.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written to a scratch file first: a failed flow leaves the committed cassette alone.
        scratch = path.with_suffix(".recording.yaml")
        scratch.unlink(missing_ok=True)
        try:
            with make_gateway() as gw, recorder.use_cassette(str(scratch)):
                result = flow.run(gw, context)
        except BaseException:
            scratch.unlink(missing_ok=True)
            raise
        shutil.move(scratch, path)
        recordings.append(Recording(flow, path, result))
    return recordings


def record(
    *, live: bool = False, providers: Sequence[str] | None = None, out_dir: Path | None = None
) -> list[Recording]:
    """Record the selected flows (all by default); return what was written or skipped."""
    flows = [f for f in FLOWS if providers is None or f.provider in providers]
    with tempfile.TemporaryDirectory(prefix="record-results-") as scratch_dir:
        results = out_dir or Path(scratch_dir)
        if live:
            return _record_live(flows, results)
        return _record_sandbox(flows, results)


def _record_sandbox(flows: Sequence[Flow], out_dir: Path) -> list[Recording]:
    from report_gateway_sandbox import (
        STRIPE_TEST_KEY,
        ZUORA_ACCESS_KEY_ID,
        ZUORA_SECRET_ACCESS_KEY,
        Sandbox,
        SandboxConfig,
    )

    config = SandboxConfig(run_seconds=RUN_SECONDS, result_rows=RECORD_ROWS)
    scrubber = Scrubber(
        [STRIPE_TEST_KEY, ZUORA_ACCESS_KEY_ID, ZUORA_SECRET_ACCESS_KEY], normalise_loopback=True
    )
    with Sandbox(config) as sandbox:
        settings = sandbox_settings(sandbox.stripe_base_url, sandbox.zuora_base_url)
        with _gateways(settings) as make:
            return _record_flows(
                flows,
                make,
                scrubber,
                source="the sandbox",
                out_dir=out_dir,
                zuora_query=os.environ.get(ZUORA_QUERY_ENV) or ZUORA_QUERY,
            )


def _record_live(flows: Sequence[Flow], out_dir: Path) -> list[Recording]:
    runnable: list[Flow] = []
    skipped: list[Recording] = []
    for flow in flows:
        missing = missing_live_credentials(flow.provider)
        if missing:
            reason = f"no credentials ({', '.join(missing)} unset)"
            skipped.append(Recording(flow, cassette_path(flow.provider, flow.name), None, reason))
        else:
            runnable.append(flow)
    scrubber = Scrubber(live_secrets(), normalise_loopback=False)
    with _gateways(live_settings()) as make:
        done = _record_flows(
            runnable,
            make,
            scrubber,
            source="the live services",
            out_dir=out_dir,
            zuora_query=os.environ.get(ZUORA_QUERY_ENV) or ZUORA_QUERY,
        )
    return done + skipped
