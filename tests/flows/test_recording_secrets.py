"""Secrets are scrubbed when a flow is recorded, not afterwards.

tests/clients/test_cassette_secrets.py already scans every cassette under tests/cassettes
(docs and flows) for real-looking keys. Two things it cannot know are checked here: that the
exact credentials a recording used (the sandbox's test key, which its key pattern does not
match, and the Zuora pair) appear nowhere in a flow cassette, and that the record hooks
scrub what they must, by planting secrets in a recording made on the spot.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import urllib3
import yaml
from report_gateway_sandbox import STRIPE_TEST_KEY, ZUORA_ACCESS_KEY_ID, ZUORA_SECRET_ACCESS_KEY

from tests.recording.cassettes import CASSETTES, recording_vcr
from tests.recording.scrubbing import PLACEHOLDER, REPLAY_ORIGIN, Scrubber

FLOW_CASSETTES = sorted(CASSETTES.glob("*/flows/*.yaml"))
SANDBOX_CREDENTIALS = {
    "the sandbox's Stripe test key": STRIPE_TEST_KEY,
    "the sandbox's Zuora access key id": ZUORA_ACCESS_KEY_ID,
    "the sandbox's Zuora secret": ZUORA_SECRET_ACCESS_KEY,
}
# Assembled at run time so this file trips no secret scanner.
PLANTED_KEY = "sk_" + "live_" + "51Hq" + "Z" * 30
PLANTED_SECRET = "zuora-" + "s3cr3t-" + "x" * 12


@pytest.mark.parametrize(
    "cassette", FLOW_CASSETTES, ids=[str(p.relative_to(CASSETTES)) for p in FLOW_CASSETTES]
)
def test_flow_cassette_holds_no_credential_it_was_recorded_with(cassette: Path) -> None:
    text = cassette.read_text(encoding="utf-8")
    leaked = [name for name, value in SANDBOX_CREDENTIALS.items() if value in text]
    assert leaked == []
    for interaction in yaml.safe_load(text)["interactions"]:
        headers = {k.lower(): v for k, v in interaction["request"]["headers"].items()}
        for name in ("authorization", "apiaccesskeyid", "apisecretaccesskey"):
            assert headers.get(name, [PLACEHOLDER]) == [PLACEHOLDER], name
        assert "cookie" not in headers


def test_flow_cassettes_exist_for_every_provider() -> None:
    assert {p.parent.parent.name for p in FLOW_CASSETTES} == {"stripe", "stripe-v2", "zuora"}


def test_scrubber_rewrites_keys_signatures_and_the_loopback_port() -> None:
    scrubber = Scrubber([PLANTED_SECRET], normalise_loopback=True)
    text = (
        f'{{"echo": "{PLANTED_KEY}", "password": "{PLANTED_SECRET}", '
        '"url": "http://127.0.0.1:40123/_files/v2/r/r.csv?expires=17&signature=abcdef0123"}'
    )
    scrubbed = scrubber.text(text)
    assert PLANTED_KEY not in scrubbed
    assert PLANTED_SECRET not in scrubbed
    assert "sk_live_REDACTED" in scrubbed
    assert f"{REPLAY_ORIGIN}/_files/v2/r/r.csv?expires=17&signature={PLACEHOLDER}" in scrubbed
    s3 = "https://x.s3.amazonaws.com/f.csv?X-Amz-Credential=AKIA1&X-Amz-Signature=ff00&a=1"
    assert scrubber.text(s3) == (
        f"https://x.s3.amazonaws.com/f.csv?X-Amz-Credential={PLACEHOLDER}"
        f"&X-Amz-Signature={PLACEHOLDER}&a=1"
    )


@pytest.mark.block_network(allowed_hosts=["127.0.0.1"])
def test_recording_scrubs_headers_and_bodies_before_writing(tmp_path: Path) -> None:
    """A real recording against a tiny loopback server that echoes the secrets back."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            port = self.server.server_address[1]
            body = (
                f'{{"key": "{self.headers["Authorization"][7:]}", '
                f'"secret": "{self.headers["apiSecretAccessKey"]}", '
                f'"next": "http://127.0.0.1:{port}/file?signature=deadbeef"}}'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Set-Cookie", "session=abc")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        cassette = tmp_path / "planted.yaml"
        recorder = recording_vcr(Scrubber([PLANTED_SECRET], normalise_loopback=True), source="x")
        with recorder.use_cassette(str(cassette)):
            http = urllib3.PoolManager()
            answer = http.request(
                "GET",
                f"http://127.0.0.1:{server.server_address[1]}/echo",
                headers={
                    "Authorization": f"Bearer {PLANTED_KEY}",
                    "apiAccessKeyId": "someone@example.com",
                    "apiSecretAccessKey": PLANTED_SECRET,
                    "Cookie": "session=abc",
                },
            )
            assert PLANTED_KEY.encode() in answer.data  # the live answer is untouched
    finally:
        server.shutdown()
        server.server_close()
    text = cassette.read_text(encoding="utf-8")
    assert text.startswith("# recorded from x by `nox -s record` on ")
    for value in (PLANTED_KEY, PLANTED_SECRET, "someone@example.com", "deadbeef", "session=abc"):
        assert value not in text
    (interaction,) = yaml.safe_load(text)["interactions"]
    assert interaction["request"]["uri"] == f"{REPLAY_ORIGIN}/echo"
    body = interaction["response"]["body"]["string"]
    assert f"{REPLAY_ORIGIN}/file?signature={PLACEHOLDER}" in body
    assert interaction["response"]["headers"]["Content-Length"] == [str(len(body.encode()))]
