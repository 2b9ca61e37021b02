"""No cassette under tests/cassettes holds a credential; the detector itself is tested too.

A cassette may hold placeholders (`sk_test_REDACTED`, `Bearer REDACTED`), never a value that
looks like a real key, in headers, URLs or bodies alike.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

CASSETTE_SUFFIXES = {".yaml", ".yml", ".json"}

# Underscores count: real keys and the sandbox's own (sk_test_sandbox_...) contain them.
STRIPE_KEY = re.compile(r"\b(?:sk|rk)_(?:live|test)_(?!REDACTED\b)[A-Za-z0-9_]{16,}")
ZUORA_SECRET_TEXT = re.compile(
    r"""apiSecretAccessKey["']?\s*[:=]\s*(?:[\[-]\s*)?["']?([^"'\s,}\]&]*)""", re.IGNORECASE
)
SECRET_HEADERS = {"authorization", "apisecretaccesskey", "proxy-authorization"}


def is_placeholder(value: str) -> bool:
    text = value.strip()
    return not text or "redacted" in text.lower() or set(text) <= {"*", "x", "X", "."}


def _authorization_is_real(value: str) -> bool:
    scheme, _, credential = value.strip().partition(" ")
    if not credential:
        scheme, credential = "", scheme
    if is_placeholder(credential):
        return False
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return True
        user, _, password = decoded.partition(":")
        return not (is_placeholder(user) and (is_placeholder(password) or not password))
    return True


def _header_values(headers: Any) -> Iterator[tuple[str, str]]:
    if not isinstance(headers, dict):
        return
    for name, values in headers.items():
        for value in values if isinstance(values, list) else [values]:
            yield str(name), str(value)


def find_credentials(path: Path) -> list[str]:
    """Descriptions (never the values) of the credentials found in one cassette."""
    text = path.read_text(encoding="utf-8", errors="replace")
    found = [
        f"Stripe key pattern {m.group(0)[:8]}... in the text" for m in STRIPE_KEY.finditer(text)
    ]
    found += [
        "apiSecretAccessKey value in the text"
        for m in ZUORA_SECRET_TEXT.finditer(text)
        if not is_placeholder(m.group(1))
    ]
    document = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else None
    interactions = document.get("interactions", []) if isinstance(document, dict) else []
    for index, interaction in enumerate(interactions):
        for side in ("request", "response"):
            part = interaction.get(side) or {}
            for name, value in _header_values(part.get("headers")):
                lowered = name.lower()
                if lowered == "authorization" and _authorization_is_real(value):
                    found.append(f"interaction {index} {side}: real-looking {name} header")
                elif lowered in SECRET_HEADERS - {"authorization"} and not is_placeholder(value):
                    found.append(f"interaction {index} {side}: {name} header with a value")
    return found


def cassette_files(root: Path) -> list[Path]:
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in CASSETTE_SUFFIXES)


CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
FILES = cassette_files(CASSETTES)


@pytest.mark.parametrize("cassette", FILES, ids=[str(p.relative_to(CASSETTES)) for p in FILES])
def test_cassette_holds_no_credential(cassette: Path) -> None:
    assert find_credentials(cassette) == []


# Planted values are assembled at run time so this file is no secret scanner's false alarm.
LIVE_KEY = "sk_" + "live_" + "51H" + "a1B2c3D4e5F6g7H8i9J0kLmNoP"
RESTRICTED_KEY = "rk_" + "test_" + "Q" * 24


def _cassette(tmp_path: Path, request_headers: str, body: str = "ok") -> Path:
    path = tmp_path / "planted.yaml"
    path.write_text(
        "interactions:\n"
        "- request:\n"
        "    body: null\n"
        f"    headers:\n{request_headers}"
        "    method: GET\n"
        "    uri: https://api.stripe.com/v1/reporting/report_types\n"
        "  response:\n"
        "    body:\n"
        f"      string: '{body}'\n"
        "    headers: {}\n"
        "    status: {code: 200, message: OK}\n"
        "version: 1\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (f"      Authorization:\n      - Bearer {LIVE_KEY}\n", "ok"),
        ("      Authorization:\n      - Bearer some-opaque-oauth-token-value\n", "ok"),
        (
            "      Authorization:\n      - Basic "
            + base64.b64encode(f"{RESTRICTED_KEY}:".encode()).decode()
            + "\n",
            "ok",
        ),
        ("      apiSecretAccessKey:\n      - hunter2-but-longer\n", "ok"),
        ("      Accept:\n      - application/json\n", '{"key": "' + RESTRICTED_KEY + '"}'),
        ("      Accept:\n      - application/json\n", '{"apiSecretAccessKey": "p4ssw0rd"}'),
        ("      Accept:\n      - text/plain\n", "echo sk_" + "test_sandbox_" + "4eC39HqLyjWDarjt"),
    ],
    ids=[
        "bearer-live-key",
        "bearer-opaque",
        "basic-restricted",
        "zuora-header",
        "body-key",
        "body-zuora",
        "body-key-with-underscores",
    ],
)
def test_detector_finds_planted_credentials(tmp_path: Path, headers: str, body: str) -> None:
    found = find_credentials(_cassette(tmp_path, headers, body))
    assert found
    assert all(LIVE_KEY not in f and RESTRICTED_KEY not in f for f in found)  # never echoes


@pytest.mark.parametrize(
    "headers",
    [
        "      Authorization:\n      - Bearer sk_test_REDACTED\n",
        "      Authorization:\n      - Basic " + base64.b64encode(b"REDACTED:").decode() + "\n",
        "      apiAccessKeyId:\n      - REDACTED\n      apiSecretAccessKey:\n      - REDACTED\n",
    ],
    ids=["bearer-placeholder", "basic-placeholder", "zuora-placeholders"],
)
def test_detector_accepts_placeholders(tmp_path: Path, headers: str) -> None:
    assert find_credentials(_cassette(tmp_path, headers)) == []
