"""Baseline: the impersonating servers tell the truth here, and each provider downloads.

If these fail, every attack below proves nothing.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest

PROVIDERS = ["stripe", "stripe-v2", "zuora"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_honest_server_downloads(provider: str, kit: Any, workdir: Path) -> None:
    body = kit.CSV
    if provider == "zuora":
        body = codecs.BOM_UTF16_LE + kit.CSV.decode().replace(",", "\t").encode("utf-16-le")
    with kit.provider_server(provider, kit.fixed(body), size=len(body)) as server:
        gw = kit.gateway_for(provider, server)
        run = gw.get(provider, kit.RUN_ID[provider])
        path = gw.download(run, workdir / "out.csv")
        assert path.read_bytes() == kit.CSV
        assert len(list(gw.rows(run))) == 200
