"""Classes 3 and 4: sizes are bounded while reading; a resume never splices two files.

Safe behaviour (3): a body longer than announced is an IntegrityError after at most the
announced number of bytes reached the consumer; no file and no `.part` stay behind.
Safe behaviour (4): a resumed download sends If-Range with the first answer's validator;
a whole body (200) or a changed validator restarts from zero; the file is one version.
"""

from __future__ import annotations

import gzip
import socket
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError, GatewayError, IntegrityError

ANNOUNCED = 100_000


def _download_bounded(kit: Any, provider: str, result: Any, workdir: Path, **kw: Any) -> None:
    seen: list[int] = []
    with kit.provider_server(provider, result, size=ANNOUNCED, **kw) as s:
        gw = kit.gateway_for(provider, s)
        run = gw.get(provider, kit.RUN_ID[provider])
        with pytest.raises(IntegrityError):
            gw.download(run, workdir / "out.csv", on_progress=lambda done, _t: seen.append(done))
    assert max(seen, default=0) <= ANNOUNCED
    assert kit.files_in(workdir) == []


SIZE_ATTACKS = {
    "endless-close-delimited-v1": ("stripe", lambda kit: kit.endless()),
    "endless-chunked-v1": ("stripe", lambda kit: kit.endless(chunked=True)),
    "endless-close-delimited-v2": ("stripe-v2", lambda kit: kit.endless()),
    "endless-chunked-v2": ("stripe-v2", lambda kit: kit.endless(chunked=True)),
    "content-length-beyond-announced-v1": (
        "stripe",
        lambda kit: kit.fixed(b"x" * (ANNOUNCED * 3)),
    ),
    "content-length-beyond-announced-v2": (
        "stripe-v2",
        lambda kit: kit.fixed(b"x" * (ANNOUNCED * 3)),
    ),
    "gzip-bomb-v1": (
        "stripe",
        lambda kit: kit.fixed(
            gzip.compress(b"0" * (20 << 20), 9), headers={"Content-Encoding": "gzip"}
        ),
    ),
    "gzip-bomb-v2": (
        "stripe-v2",
        lambda kit: kit.fixed(
            gzip.compress(b"0" * (20 << 20), 9), headers={"Content-Encoding": "gzip"}
        ),
    ),
}


@pytest.mark.parametrize(("provider", "make"), list(SIZE_ATTACKS.values()), ids=list(SIZE_ATTACKS))
def test_oversize_body_stops_at_the_announced_size(
    provider: str, make: Any, kit: Any, workdir: Path
) -> None:
    _download_bounded(kit, provider, make(kit), workdir)


def test_rows_stop_at_the_announced_size(kit: Any) -> None:
    """rows-endless: rows() of an endless CSV ends in an IntegrityError, bounded."""
    with kit.provider_server("stripe", kit.endless(b"a,b\n" * 16384), size=ANNOUNCED) as s:
        gw = kit.gateway_for("stripe", s)
        run = gw.get("stripe", kit.RUN_ID["stripe"])
        seen: list[dict[str, str]] = []
        with pytest.raises(IntegrityError):
            seen.extend(gw.rows(run))
        assert len(seen) * 4 <= ANNOUNCED


def test_short_body_is_an_error_without_a_file(kit: Any, workdir: Path) -> None:
    """short-body-announced-size: fewer bytes than announced, cleanly ended."""
    with kit.provider_server("stripe", kit.fixed(kit.CSV[:500]), size=len(kit.CSV)) as s:
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(IntegrityError):
            gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "out.csv")
    assert kit.files_in(workdir) == []


# -- resume --------------------------------------------------------------------------------

# More than one 1 MiB read, so the cut comes after bytes were delivered and a resume asks
# for a Range.
A = b"id,version\n" + b"".join(b"a_%06d,A\n" % i for i in range(150_000))
B = b"id,version\n" + b"".join(b"b_%06d,B\n" % i for i in range(150_000))
assert len(A) == len(B)
CUT = 1_200_000


def _cut_then(second: Any, *, first_headers: dict[str, str] | None = None) -> Any:
    """First answer: version A, cut after CUT bytes; later answers: ``second(request)``."""

    def send(request: Any, conn: socket.socket, server: Any) -> None:
        if server.state.setdefault("n", 0) == 0:
            server.state["n"] = 1
            headers = {"Accept-Ranges": "bytes", **(first_headers or {})}
            kit_respond = server.state["respond"]
            conn.sendall(b"")
            kit_respond(conn, 200, A[:CUT], headers, length=len(A))
            return
        server.state["n"] += 1
        second(request, conn, server)

    return send


def _ranged(body: bytes, headers: dict[str, str]) -> Any:
    def send(request: Any, conn: socket.socket, server: Any) -> None:
        rng = request.header("Range") or ""
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}", **headers}
        server.state["respond"](conn, 206, body[start:], extra)

    return send


def _whole(body: bytes, headers: dict[str, str]) -> Any:
    def send(request: Any, conn: socket.socket, server: Any) -> None:
        server.state["respond"](conn, 200, body, headers)

    return send


RESUMES = {
    "resume-200-new-version": (_whole(B, {}), {}, B),
    "resume-206-etag-changed": (_ranged(B, {"ETag": '"v2"'}), {"ETag": '"v1"'}, B),
    "resume-206-etag-dropped": (_ranged(B, {}), {"ETag": '"v1"'}, B),
    "resume-206-last-modified-changed": (
        _ranged(B, {"Last-Modified": "Thu, 02 Jan 2025 00:00:00 GMT"}),
        {"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"},
        B,
    ),
    "resume-206-same-etag": (_ranged(A, {"ETag": '"v1"'}), {"ETag": '"v1"'}, A),
    "resume-200-same-version": (_whole(A, {"ETag": '"v1"'}), {"ETag": '"v1"'}, A),
}


@pytest.mark.parametrize(
    ("second", "first_headers", "expected"), list(RESUMES.values()), ids=list(RESUMES)
)
@pytest.mark.parametrize("provider", ["stripe", "stripe-v2"])
def test_resume_never_splices(
    provider: str, second: Any, first_headers: Any, expected: bytes, kit: Any, workdir: Path
) -> None:
    with kit.provider_server(
        provider, _cut_then(second, first_headers=first_headers), size=len(A)
    ) as s:
        s.state["respond"] = kit.respond
        gw = kit.gateway_for(provider, s)
        run = gw.get(provider, kit.RUN_ID[provider])
        try:
            data = gw.download(run, workdir / "out.csv").read_bytes()
        except GatewayError:
            data = None
        resumed = [r for r in s.requests if r.header("Range")]
    assert data in (expected, None)
    assert data is not None or kit.files_in(workdir) == []
    assert resumed, "the attack needs a resumed request"
    if first_headers:
        validator = first_headers.get("ETag") or first_headers.get("Last-Modified")
        assert resumed[0].header("If-Range") == validator


def test_rows_resume_with_a_new_version_is_refused(kit: Any) -> None:
    """rows-resume-200-new-version: rows() cannot rewind; it refuses instead of splicing."""
    with kit.provider_server("stripe", _cut_then(_whole(B, {})), size=len(A)) as s:
        s.state["respond"] = kit.respond
        gw = kit.gateway_for("stripe", s)
        rows: list[dict[str, str]] = []
        with pytest.raises(IntegrityError):
            rows.extend(gw.rows(gw.get("stripe", kit.RUN_ID["stripe"])))
    assert {row["version"] for row in rows} <= {"A"}


RANGE_LIES = {
    "206-without-content-range": {"status": 206, "headers": {}},
    "206-starts-later": {"status": 206, "headers": {"Content-Range": "bytes 1400000-*/*"}},
}


@pytest.mark.parametrize("lie", list(RANGE_LIES.values()), ids=list(RANGE_LIES))
def test_bad_partial_answers_fail_cleanly(lie: Any, kit: Any, workdir: Path) -> None:
    def second(request: Any, conn: socket.socket, server: Any) -> None:
        kit.respond(conn, lie["status"], A[1_400_000:], lie["headers"])

    with kit.provider_server("stripe", _cut_then(second), size=len(A)) as s:
        s.state["respond"] = kit.respond
        gw = kit.gateway_for("stripe", s)
        with pytest.raises(DownloadError):
            gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "out.csv")
    assert kit.files_in(workdir) == []


def test_206_overlapping_start_is_deduplicated(kit: Any, workdir: Path) -> None:
    """206-starts-earlier: the server resends bytes already written; they are skipped."""

    def second(request: Any, conn: socket.socket, server: Any) -> None:
        rng = request.header("Range") or "bytes=0-"
        start = max(0, int(rng.split("=")[1].rstrip("-")) - 1000)
        headers = {"Content-Range": f"bytes {start}-{len(A) - 1}/{len(A)}"}
        kit.respond(conn, 206, A[start:], headers)

    with kit.provider_server("stripe", _cut_then(second), size=len(A)) as s:
        s.state["respond"] = kit.respond
        gw = kit.gateway_for("stripe", s)
        out = gw.download(gw.get("stripe", kit.RUN_ID["stripe"]), workdir / "out.csv")
    assert out.read_bytes() == A
