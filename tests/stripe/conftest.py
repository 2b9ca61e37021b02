"""Fixtures for the Stripe providers: isolated gateways, documented cassettes, the sandbox.

Gateways built here register the plugin module directly (no other entry points), read no
real environment or config file, and do not retry in the runtime unless a test asks: a
replayed interaction is then used exactly once, and a 429 reaches the driver's own wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import report_gateway_stripe.plugin as stripe_plugin
import vcr  # type: ignore[import-untyped]
import yaml
from report_gateway import Gateway
from reporting_runtime import Request, Response, RetryConfig, Transport

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
#: The placeholder key the documented cassettes were assembled with.
DOCS_KEY = "sk_test_REDACTED"

REPLAY = vcr.VCR(record_mode="none", match_on=["method", "scheme", "host", "port", "path", "query"])

NO_RETRY = RetryConfig(total=0, budget_seconds=0.0)

Cassette = Callable[..., AbstractContextManager[Any]]
MakeGateway = Callable[..., Gateway]


class RecordingTransport(Transport):
    """The runtime's transport, keeping every request as it leaves (auth included).

    vcrpy matches on the URL only, and the sandbox sees only what arrives: this is how a
    test checks the headers and body the plugin really sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[Request] = []

    def send(self, request: Request, *, stream: bool = False, retries: Any = None) -> Response:
        self.sent.append(request)
        return super().send(request, stream=stream, retries=retries)


@pytest.fixture
def transport() -> RecordingTransport:
    return RecordingTransport()


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    """No STRIPE_API_KEY, no config file: only what a test passes counts."""
    return {"XDG_CONFIG_HOME": str(tmp_path / "config-home")}


@pytest.fixture
def make_gateway(environ: dict[str, str], transport: RecordingTransport) -> Iterator[MakeGateway]:
    built: list[Gateway] = []

    def build(settings: Mapping[str, Mapping[str, Any]] | None = None, **kwargs: Any) -> Gateway:
        kwargs.setdefault("plugins", [stripe_plugin])
        kwargs.setdefault("load_entrypoints", False)
        kwargs.setdefault("environ", environ)
        kwargs.setdefault("retry", NO_RETRY)
        kwargs.setdefault("transport", transport)
        gateway = Gateway(settings, **kwargs)
        built.append(gateway)
        return gateway

    yield build
    for gateway in built:
        gateway.close()


@pytest.fixture
def docs_gateway(make_gateway: MakeGateway) -> Gateway:
    """Both providers at Stripe's real hosts with the cassettes' placeholder key."""
    return make_gateway(
        {
            "stripe": {"api_key": DOCS_KEY},
            "stripe-v2": {"api_key": DOCS_KEY, "stripe_version": "2025-07-03.private"},
        }
    )


@pytest.fixture
def docs_cassette(tmp_path: Path) -> Cassette:
    """``with docs_cassette("stripe", "a.yaml", "b.yaml") as played:`` replays the documented
    interactions of several files as one cassette (in file order), network blocked.

    ``pick`` chooses interactions by index (after merging) when a test needs a sequence the
    files do not hold in that order; ``repeats`` lets an interaction answer more than once;
    ``uris`` moves a picked interaction to another URL (same answer to another query).
    """

    def use(
        provider: str,
        *names: str,
        pick: list[int] | None = None,
        repeats: bool = False,
        uris: Mapping[int, str] | None = None,
    ) -> AbstractContextManager[Any]:
        interactions: list[Any] = []
        for name in names:
            path = CASSETTES / provider / "docs" / name
            assert path.is_file(), f"missing documented-example cassette {path}"
            interactions += yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
        if pick is not None:
            interactions = [interactions[i] for i in pick]
        for index, uri in (uris or {}).items():
            interactions[index] = {
                **interactions[index],
                "request": {**interactions[index]["request"], "uri": uri},
            }
        merged = tmp_path / f"{provider}-merged-{len(list(tmp_path.iterdir()))}.yaml"
        merged.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}))
        used: AbstractContextManager[Any] = REPLAY.use_cassette(
            str(merged), allow_playback_repeats=repeats
        )
        return used

    return use
