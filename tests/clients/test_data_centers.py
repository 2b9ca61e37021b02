"""The hand-written data-center table and the spec's server list name the same endpoints."""

from __future__ import annotations

from pathlib import Path

import yaml
from zuora_reporting_client import DATA_CENTERS, DEFAULT_DATA_CENTER, Client
from zuora_reporting_client._generated.client import DEFAULT_BASE_URL

SPEC = Path(__file__).resolve().parents[2] / "specs" / "zuora-reporting.yaml"


def test_data_centers_match_the_spec_servers() -> None:
    servers = yaml.safe_load(SPEC.read_text(encoding="utf-8"))["servers"]
    assert dict(DATA_CENTERS) == {s["x-server-name"]: s["url"] for s in servers}


def test_default_data_center_is_the_client_default() -> None:
    assert DATA_CENTERS[DEFAULT_DATA_CENTER] == DEFAULT_BASE_URL
    assert all(url.startswith("https://") for url in DATA_CENTERS.values())
    assert Client.__init__.__defaults__ == (DEFAULT_BASE_URL,)
