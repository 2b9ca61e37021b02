"""Classes 5, 6 and 7: exports, ZIPs and file-system failures.

Safe behaviour: a UTF-16 export decodes strictly and ends on a line boundary, else an
IntegrityError and no file; a ZIP with several CSVs, an encrypted member, a bad CRC,
corrupt deflate data or a bomb is an IntegrityError, and rows() yields no row of it; a
file-system failure is a DownloadError naming the target; no `.part` outlives the next
download into the same folder.
"""

from __future__ import annotations

import codecs
import io
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from report_gateway import DownloadError, GatewayError, IntegrityError, ZipLimits

TSV = "id\tname\n" + "".join(f"z_{i}\tcustomer {i}\n" for i in range(300))
GOOD = codecs.BOM_UTF16_LE + TSV.encode("utf-16-le")

EXPORTS = {
    "utf16-cut-mid-row": GOOD[:-21] + b"",  # ends inside the last row, even byte count
    "utf16-odd-byte-count": GOOD + b"\x41",
    "utf16-lone-surrogate": GOOD
    + "x\t".encode("utf-16-le")
    + b"\x00\xd8"
    + "y\n".encode("utf-16-le"),
    "utf16-really-utf8": TSV.encode("utf-8"),
    "utf16-utf8-bom": codecs.BOM_UTF8 + TSV.encode("utf-8"),
    "utf16-unclosed-quote": GOOD + '"z_x\topen\nmore\tstuff\n'.encode("utf-16-le"),
}


def _zuora(kit: Any, body: bytes) -> Any:
    return kit.provider_server("zuora", kit.fixed(body, length=None))


@pytest.mark.parametrize("body", list(EXPORTS.values()), ids=list(EXPORTS))
def test_bad_export_download_is_an_integrity_error(body: bytes, kit: Any, workdir: Path) -> None:
    with _zuora(kit, body) as s:
        gw = kit.gateway_for("zuora", s)
        with pytest.raises(IntegrityError):
            gw.download(gw.get("zuora", kit.RUN_ID["zuora"]), workdir / "out.csv")
    assert kit.files_in(workdir) == []


@pytest.mark.parametrize("body", list(EXPORTS.values()), ids=[f"rows-{k}" for k in EXPORTS])
def test_bad_export_rows_never_yield_an_unvouched_row(body: bytes, kit: Any) -> None:
    rows: list[dict[str, str]] = []
    with _zuora(kit, body) as s:
        gw = kit.gateway_for("zuora", s)
        with pytest.raises(IntegrityError):
            rows.extend(gw.rows(gw.get("zuora", kit.RUN_ID["zuora"])))
    good = {f"z_{i}" for i in range(300)}
    assert all(r["id"] in good and r["name"].startswith("customer ") for r in rows)
    assert all("\ufffd" not in v for r in rows for v in r.values())


def test_unclosed_quote_near_the_end_of_a_csv(kit: Any) -> None:
    """csv-unclosed-quote: the rest of the file is not swallowed into one cell."""
    body = kit.CSV + b'row_x,"12\nrow_y,13\nrow_z,14\n'
    with kit.provider_server("stripe", kit.fixed(body), size=len(body)) as s:
        gw = kit.gateway_for("stripe", s)
        rows: list[dict[str, str]] = []
        with pytest.raises(IntegrityError, match="quoted cell"):
            rows.extend(gw.rows(gw.get("stripe", kit.RUN_ID["stripe"])))
    assert all("\n" not in r["amount"] for r in rows)


# -- ZIPs (Stripe v2 compress_file) -------------------------------------------------------


def _zip(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def _patched(data: bytes, find: bytes, replace: bytes) -> bytes:
    assert find in data
    return data.replace(find, replace, 1)


VARIED = b"id,amount\n" + b"".join(b"r%d,%d\n" % (i, i * 7919 % 10007) for i in range(5000))


def _bad_crc() -> bytes:
    data = bytearray(_zip({"report.csv": VARIED}))
    size = zipfile.ZipFile(io.BytesIO(bytes(data))).infolist()[0].compress_size
    # Flip the last byte of the compressed data (after the 30-byte local header + name):
    # deflate may still decode, the CRC cannot match.
    data[30 + len("report.csv") + size - 3] ^= 0x01
    return bytes(data)


def _corrupt_deflate() -> bytes:
    data = bytearray(_zip({"report.csv": VARIED}))
    start = 30 + len("report.csv")
    data[start + 10 : start + 60] = b"\xff" * 50
    return bytes(data)


def _stored_bad_crc() -> bytes:
    data = bytearray(_zip({"report.csv": b"id,amount\n" + b"r,1\n" * 5000}, zipfile.ZIP_STORED))
    data[30 + len("report.csv") + 5000] ^= 0x01  # a digit changes: '1' -> '0'
    return bytes(data)


def _encrypted() -> bytes:
    data = _zip({"report.csv": b"id,amount\nr,1\n"}, zipfile.ZIP_STORED)
    # Set the "encrypted" flag bit in the local and central headers.
    data = _patched(data, b"PK\x03\x04\x14\x00\x00\x00", b"PK\x03\x04\x14\x00\x01\x00")
    return _patched(
        data, b"PK\x01\x02\x14\x03\x14\x00\x00\x00", b"PK\x01\x02\x14\x03\x14\x00\x01\x00"
    )


def _unknown_method() -> bytes:
    data = _zip({"report.csv": b"id,amount\nr,1\n"}, zipfile.ZIP_STORED)
    local = data.index(b"PK\x03\x04") + 8
    central = data.index(b"PK\x01\x02") + 10
    out = bytearray(data)
    out[local : local + 2] = struct.pack("<H", 99)
    out[central : central + 2] = struct.pack("<H", 99)
    return bytes(out)


ZIPS = {
    "zip-two-csvs": _zip({"a.csv": b"id\n1\n", "b.csv": b"id\n2\n"}),
    "zip-encrypted-member": _encrypted(),
    "zip-bad-crc-deflate": _bad_crc(),
    "zip-bad-crc-stored": _stored_bad_crc(),
    "zip-corrupt-deflate": _corrupt_deflate(),
    "zip-bomb-ratio": _zip({"report.csv": b"0" * (30 << 20)}),
    "zip-not-a-zip": b"this is not a zip file at all\n" * 10,
    "zip-unknown-method": _unknown_method(),
    "zip-truncated": _zip({"report.csv": b"id,amount\n" + b"r,1\n" * 1000})[:-30],
}


def _v2_zip(kit: Any, body: bytes) -> Any:
    return kit.provider_server("stripe-v2", kit.fixed(body), size=len(body), zipped=True)


@pytest.mark.parametrize("body", list(ZIPS.values()), ids=list(ZIPS))
def test_bad_zip_download_is_an_integrity_error(body: bytes, kit: Any, workdir: Path) -> None:
    with _v2_zip(kit, body) as s:
        gw = kit.gateway_for("stripe-v2", s)
        with pytest.raises(IntegrityError):
            gw.download(gw.get("stripe-v2", kit.RUN_ID["stripe-v2"]), workdir, unzip=True)
    assert kit.files_in(workdir) == []


@pytest.mark.parametrize("body", list(ZIPS.values()), ids=[f"rows-{k}" for k in ZIPS])
def test_bad_zip_rows_yield_nothing(body: bytes, kit: Any) -> None:
    rows: list[dict[str, str]] = []
    with _v2_zip(kit, body) as s:
        gw = kit.gateway_for("stripe-v2", s)
        with pytest.raises(IntegrityError):
            rows.extend(gw.rows(gw.get("stripe-v2", kit.RUN_ID["stripe-v2"])))
    assert rows == []


def test_two_csv_members_are_named(kit: Any, workdir: Path) -> None:
    with _v2_zip(kit, ZIPS["zip-two-csvs"]) as s:
        gw = kit.gateway_for("stripe-v2", s)
        with pytest.raises(IntegrityError, match=r"'a\.csv', 'b\.csv'"):
            gw.download(gw.get("stripe-v2", kit.RUN_ID["stripe-v2"]), workdir, unzip=True)


def test_zip_limit_is_configurable(kit: Any, workdir: Path) -> None:
    """zip-size-limit: a member beyond a caller's ZipLimits(max_size) is refused."""
    body = _zip({"report.csv": kit.CSV})
    with _v2_zip(kit, body) as s:
        gw = kit.gateway_for("stripe-v2", s)
        run = gw.get("stripe-v2", kit.RUN_ID["stripe-v2"])
        with pytest.raises(IntegrityError, match="max_size"):
            gw.download(run, workdir, unzip=True, zip_limits=ZipLimits(max_size=100))
        assert kit.files_in(workdir) == []
        path = gw.download(run, workdir, unzip=True)
    assert path.name == f"{kit.RUN_ID['stripe-v2']}.csv"  # zip-unzip-names-csv
    assert path.read_bytes() == kit.CSV


def test_member_name_cannot_escape(kit: Any, workdir: Path) -> None:
    """zip-member-traversal: a member called ../../evil.csv still lands as the target."""
    body = _zip({"../../evil.csv": kit.CSV})
    before = kit.everything_under(workdir.parent)
    with _v2_zip(kit, body) as s:
        gw = kit.gateway_for("stripe-v2", s)
        path = gw.download(gw.get("stripe-v2", kit.RUN_ID["stripe-v2"]), workdir, unzip=True)
    assert kit.everything_under(workdir.parent) - before == {path}
    assert path.parent == workdir


# -- file-system failures and leftovers ----------------------------------------------------


def _run(kit: Any, s: Any) -> Any:
    gw = kit.gateway_for("stripe", s)
    return gw, gw.get("stripe", kit.RUN_ID["stripe"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders")
def test_read_only_folder(kit: Any, workdir: Path) -> None:
    workdir.chmod(0o500)
    try:
        with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
            gw, run = _run(kit, s)
            with pytest.raises(DownloadError, match=r"out\.csv"):
                gw.download(run, workdir / "out.csv")
    finally:
        workdir.chmod(0o700)


def test_read_only_target_path_component(kit: Any, workdir: Path) -> None:
    """target-under-a-file: a folder that is really a file (works as root too)."""
    (workdir / "plain").write_text("x")
    with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
        gw, run = _run(kit, s)
        with pytest.raises(DownloadError):
            gw.download(run, workdir / "plain" / "out.csv")


@pytest.mark.parametrize(
    ("name", "ok"),
    [("n" * 249, True), ("n" * 300, False)],
    ids=["target-name-249", "target-name-300"],
)
def test_long_target_names(name: str, ok: bool, kit: Any, workdir: Path) -> None:
    with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
        gw, run = _run(kit, s)
        if ok:
            assert gw.download(run, workdir / name).read_bytes() == kit.CSV
        else:
            with pytest.raises(DownloadError, match="n" * 20):
                gw.download(run, workdir / name)
    assert not [n for n in kit.files_in(workdir) if n.endswith(".part")]


def test_nul_in_target(kit: Any, workdir: Path) -> None:
    """target-nul: a NUL in the caller's path is a DownloadError, not a ValueError."""
    with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
        gw, run = _run(kit, s)
        with pytest.raises(DownloadError):
            gw.download(run, str(workdir / "a\x00b.csv"))
    assert kit.files_in(workdir) == []


def test_abandoned_part_is_cleaned_but_a_live_one_is_not(kit: Any, workdir: Path) -> None:
    """leftover-part: a killed download's temporary goes at the next download; a live
    download's temporary (it holds its lock) and a stranger's file stay."""
    import fcntl

    dead = workdir / ".out.csv.0123abcd.part"
    dead.write_bytes(b"half a file")
    live = workdir / ".other.csv.89abcdef.part"
    live.write_bytes(b"downloading")
    stranger = workdir / "notes.part"
    stranger.write_bytes(b"mine")
    with live.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
            gw, run = _run(kit, s)
            gw.download(run, workdir / "out.csv")
        assert kit.files_in(workdir) == sorted([live.name, "notes.part", "out.csv"])


def test_killed_download_leaves_nothing_after_the_next(kit: Any, workdir: Path) -> None:
    """kill-9-mid-download: a child process killed mid-transfer; the next download cleans."""
    script = (
        "import sys, os, signal\n"
        "from report_gateway import Gateway\n"
        f"gw = Gateway(settings={kit.settings_for('stripe', '%s')!r}, environ={{}})\n"
        f"run = gw.get('stripe', {kit.RUN_ID['stripe']!r})\n"
        "def progress(done, total):\n"
        "    if done > 0: os.kill(os.getpid(), signal.SIGKILL)\n"
        f"gw.download(run, {str(workdir / 'out.csv')!r}, on_progress=progress)\n"
    )
    with kit.provider_server("stripe", kit.endless(b"a,b\n" * 100_000), size=10 << 20) as s:
        code = subprocess.run(
            [sys.executable, "-c", script.replace("%s", s.base)], timeout=30, check=False
        ).returncode
    assert code == -9
    assert any(n.endswith(".part") for n in kit.files_in(workdir))
    with kit.provider_server("stripe", kit.fixed(kit.CSV), size=len(kit.CSV)) as s:
        gw, run = _run(kit, s)
        gw.download(run, workdir / "out.csv")
    assert kit.files_in(workdir) == ["out.csv"]


def test_full_disk_is_exit_7(kit: Any, workdir: Path) -> None:
    """disk-full: a write refused by the file system (RLIMIT_FSIZE) is exit 7, one line."""
    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
        "from report_gateway.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    body = kit.CSV * 100
    with kit.provider_server("stripe", kit.fixed(body), size=len(body)) as s:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                "--set",
                f"api_key={kit.STRIPE_KEY}",
                "--base-url",
                s.base,
                "download",
                "stripe",
                kit.RUN_ID["stripe"],
                "-o",
                str(workdir / "o.csv"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert done.returncode == 7, done.stderr
    assert "o.csv" in done.stderr
    assert "Traceback" not in done.stderr
    assert kit.files_in(workdir) == []


def test_every_failure_is_a_gateway_error(kit: Any, workdir: Path) -> None:
    """garbage-not-http: the files host answers with bytes that are not HTTP."""

    def garbage(request: Any, conn: Any, server: Any) -> None:
        conn.sendall(b"\x00\xffSSH-2.0-OpenSSH\r\n\r\n")

    with kit.provider_server("stripe", garbage, size=100) as s:
        gw, run = _run(kit, s)
        with pytest.raises(GatewayError):
            gw.download(run, workdir / "out.csv")
    assert kit.files_in(workdir) == []
