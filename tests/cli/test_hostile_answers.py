"""The CLI against a raw-socket server that echoes the credential (issue 10, class 8): the
secret comes from a config file, so neither the environment nor ``--set`` names it, and only
the exact secrets the Gateway holds can hide it in the error line, the JSON error, the
--debug traceback and the --debug logs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_gateway.cli import main

from tests.cli.conftest import needs_zuora
from tests.runtime.rawserver import RawServer, head

SECRET = "Cli-s3cret/Value+0123"
KEY_ID = "cli-key-id-98765"


@pytest.fixture
def echoing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    body = json.dumps(
        {"message": f"apiSecretAccessKey {SECRET} is wrong for {KEY_ID}", "errorCode": "X"}
    ).encode()

    def answer(_: bytes) -> Iterator[bytes]:
        yield head(
            "401 Unauthorized",
            {
                "Content-Type": "application/json",
                "Content-Length": str(len(body)),
                "Zuora-Request-Id": SECRET,
            },
        )
        yield body

    server = RawServer(answer)
    config = tmp_path / "config.toml"
    config.write_text(
        "[profiles.default.zuora]\n"
        f'base_url = "{server.url}/api/rest/v1"\n'
        f'api_access_key_id = "{KEY_ID}"\n'
        f'api_secret_access_key = "{SECRET}"\n'
    )
    monkeypatch.setenv("REPORT_GATEWAY_LOAD_PLUGINS", "zuora")
    yield config
    server.close()


@needs_zuora
@pytest.mark.parametrize("flags", [(), ("--json",), ("--debug",), ("--debug", "--json")])
def test_an_echoed_secret_never_reaches_the_terminal(
    echoing: Path, capsys: pytest.CaptureFixture[str], flags: tuple[str, ...]
) -> None:
    code = main([*flags, "--config", str(echoing), "status", "zuora", "run1"])
    out, err = capsys.readouterr()
    assert code != 0
    assert code != 1  # a documented exit code, not "unexpected"
    assert "error:" in err
    for text in (out, err):
        assert SECRET not in text
        assert KEY_ID not in text
    if "--debug" in flags:
        assert "Traceback" in err  # the traceback is shown, scrubbed
    if "--json" in flags:
        error = json.loads(out)["error"]
        assert error["type"] == "ProviderError"
        assert "REDACTED" in error["message"] or "<redacted>" in error["message"]
