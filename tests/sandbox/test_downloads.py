"""Result downloads: byte ranges for resume, and large files streamed in bounded memory."""

from __future__ import annotations

import http.client
import time
import tracemalloc
from urllib.parse import urlsplit

from report_gateway_sandbox import Sandbox

from .conftest import (
    STRIPE_AUTH,
    ZUORA,
    ZUORA_AUTH,
    Http,
    create_v1,
    create_v2,
    finished_v1,
    finished_v2,
    finished_zuora,
    run_zuora,
)


def _ranges_match(client: Http, url: str, headers: dict[str, str]) -> None:
    full = client.get(url, headers=headers)
    assert full.status == 200
    assert full.header("Accept-Ranges") == "bytes"
    size = len(full.body)
    part = client.get(url, headers={**headers, "Range": "bytes=5-99"})
    assert part.status == 206
    assert part.header("Content-Range") == f"bytes 5-99/{size}"
    assert part.body == full.body[5:100]
    tail = client.get(url, headers={**headers, "Range": f"bytes={size - 10}-"})
    assert tail.body == full.body[-10:]
    suffix = client.get(url, headers={**headers, "Range": "bytes=-7"})
    assert suffix.body == full.body[-7:]
    beyond = client.get(url, headers={**headers, "Range": f"bytes={size}-"})
    assert beyond.status == 416
    assert beyond.header("Content-Range") == f"bytes */{size}"


def test_ranges_on_every_provider(client: Http) -> None:
    v1 = finished_v1(client, create_v1(client).json()["id"])
    _ranges_match(client, v1["result"]["url"], STRIPE_AUTH)
    v2 = finished_v2(client, create_v2(client).json()["id"])
    _ranges_match(client, v2["result"]["file"]["download_url"]["url"], {})
    zipped = create_v2(
        client,
        {
            "report": "report_balance_summary",
            "report_parameters": {
                "interval_start": "2025-01-01T00:00:00Z",
                "interval_end": "2025-01-02T00:00:00Z",
            },
            "result_options": {"compress_file": True},
        },
    )
    v2z = finished_v2(client, zipped.json()["id"])
    _ranges_match(client, v2z["result"]["file"]["download_url"]["url"], {})
    run_id = run_zuora(client)
    finished_zuora(client, run_id)
    _ranges_match(client, f"{ZUORA}/reportruns/export/{run_id}", ZUORA_AUTH)


def test_result_bytes_sets_the_file_size(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(result_bytes=1_000_000)
    v1 = finished_v1(
        client, create_v1(client, "balance_change_from_activity.itemized.3").json()["id"]
    )
    assert 1_000_000 <= v1["result"]["size"] < 1_000_300
    body = client.get(v1["result"]["url"], headers=STRIPE_AUTH).body
    assert len(body) == v1["result"]["size"]
    assert body.endswith(b"\n")


def test_200_mb_stream_in_bounded_memory(client: Http, sandbox: Sandbox) -> None:
    sandbox.configure(result_bytes=200_000_000)
    done = finished_v1(
        client, create_v1(client, "balance_change_from_activity.itemized.3").json()["id"]
    )
    size = done["result"]["size"]
    assert size >= 200_000_000
    parts = urlsplit(done["result"]["url"])
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        conn.request("GET", parts.path, headers=STRIPE_AUTH)
        resp = conn.getresponse()
        assert int(resp.headers["Content-Length"]) == size
        received = 0
        while chunk := resp.read(1 << 20):
            received += len(chunk)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        conn.close()
    assert received == size
    # Client and server share this process: the peak covers both sides of the stream.
    assert peak < 32 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"
    print(f"streamed {size / 1e6:.0f} MB in {elapsed:.2f} s: {size / elapsed / 1e6:.0f} MB/s")
