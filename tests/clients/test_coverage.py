"""Every operation of every generated client has a documented example that replays it.

The replay tests assert `all_played` on each cassette; this test closes the loop from the
other side: no operation is left without a cassette interaction that matches it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml
from reporting_runtime import Operation
from stripe_reporting_client import v1, v2
from zuora_reporting_client import DATA_CENTERS, base_url
from zuora_reporting_client import OPERATIONS as ZUORA_OPERATIONS

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"

CLIENTS = {
    "stripe": (
        v1.OPERATIONS,
        {"default": "https://api.stripe.com", "files": "https://files.stripe.com"},
    ),
    "stripe-v2": (v2.OPERATIONS, {"default": "https://api.stripe.com"}),
    # Either family may carry an operation's documented example.
    "zuora": (
        ZUORA_OPERATIONS,
        {
            "default": DATA_CENTERS["us-cloud-2-sandbox"],
            "rest": base_url("us-cloud-2-sandbox"),
            "oauth": "https://rest.apisandbox.zuora.com",
        },
    ),
}


def _requests(provider: str) -> list[tuple[str, str]]:
    found = []
    for path in sorted((CASSETTES / provider / "docs").glob("*.yaml")):
        for interaction in yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]:
            request = interaction["request"]
            url = urlsplit(request["uri"])
            found.append((request["method"], f"{url.scheme}://{url.netloc}{url.path}"))
    return found


def _pattern(op: Operation, servers: dict[str, str]) -> re.Pattern[str]:
    bases = [servers[op.server]] + ([servers["rest"]] if "rest" in servers else [])
    templates = "|".join(re.escape(base + op.path) for base in bases)
    return re.compile("(?:" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", templates) + ")$")


CASES = [
    pytest.param(provider, op, id=f"{provider}:{name}")
    for provider, (operations, _servers) in CLIENTS.items()
    for name, op in operations.items()
]


@pytest.mark.parametrize(("provider", "op"), CASES)
def test_operation_has_a_documented_example(provider: str, op: Operation) -> None:
    pattern = _pattern(op, CLIENTS[provider][1])
    requests = _requests(provider)
    assert any(method == op.method and pattern.match(url) for method, url in requests), (
        f"no cassette under tests/cassettes/{provider}/docs exercises {op.operation_id}"
    )
