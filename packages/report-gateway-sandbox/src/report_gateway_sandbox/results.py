"""Deterministic result files of any size, produced on the fly in constant memory.

A file is a header line followed by rows built from a block of K row templates: each
template's values are drawn once from an RNG seeded by the run (report, parameters, account
or entity), and only a fixed-width row number changes from block to block. Every row
therefore has a known length, so the total size is known before the first byte is sent and
any byte range can be produced without generating what comes before it (HTTP Range). A
block is produced by one `%` formatting call, which is what makes hundreds of MB/s possible.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import random
import struct
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

BLOCK_ROWS = 1024
INDEX_WIDTH = 12
_INDEX_FMT = "%0" + str(INDEX_WIDTH) + "d"


@dataclass(frozen=True)
class Column:
    """One output column: its header name and the kind of values it holds."""

    name: str
    kind: str
    prefix: str = ""


def run_seed(*parts: Any) -> int:
    """A stable 64-bit seed from anything JSON-serialisable (order of dict keys ignored)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


@dataclass(frozen=True)
class ValueContext:
    """What value generators may look at: the run's interval and currency, display style."""

    interval_start: int
    interval_end: int
    currency: str | None
    display: bool  # Zuora style: "1,729.76" amounts, "2025-01-02" dates


_CATEGORIES = (
    "charge",
    "refund",
    "fee",
    "payout",
    "transfer",
    "dispute",
    "adjustment",
    "network_cost",
)
_CURRENCIES = ("usd", "eur", "gbp", "cad", "jpy", "aud")
_WORDS = (
    "Invoice",
    "Order",
    "Subscription",
    "Renewal",
    "Upgrade",
    "Credit",
    "Service",
    "Plan",
    "Annual",
    "Monthly",
)
_NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell")
_STATUSES = ("paid", "in_transit", "pending", "failed")


def _amount(rng: random.Random, ctx: ValueContext) -> str:
    cents = rng.randint(-50_000, 500_000)
    if ctx.display:
        return f"{cents / 100:,.2f}"
    return f"{cents / 100:.2f}"


def _utc(rng: random.Random, ctx: ValueContext) -> str:
    ts = rng.randint(ctx.interval_start, max(ctx.interval_start, ctx.interval_end - 1))
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _date(rng: random.Random, ctx: ValueContext) -> str:
    ts = rng.randint(ctx.interval_start, max(ctx.interval_start, ctx.interval_end - 1))
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")


def _currency(rng: random.Random, ctx: ValueContext) -> str:
    cur = ctx.currency or rng.choice(_CURRENCIES)
    return cur.upper() if ctx.display else cur


def _text(rng: random.Random, ctx: ValueContext) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(rng.randint(1, 3)))


def _random_id(prefix: str) -> Callable[[random.Random, ValueContext], str]:
    def make(rng: random.Random, ctx: ValueContext) -> str:
        return prefix + "".join(
            rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789")
            for _ in range(14)
        )

    return make


_GENERATORS: dict[str, Callable[[random.Random, ValueContext], str]] = {
    "amount": _amount,
    "utc": _utc,
    "date": _date,
    "currency": _currency,
    "category": lambda rng, ctx: rng.choice(_CATEGORIES),
    "text": _text,
    "name": lambda rng, ctx: f"{rng.choice(_NAMES)} {rng.choice(('Inc', 'Ltd', 'GmbH', 'LLC'))}",
    "count": lambda rng, ctx: str(rng.randint(1, 9999)),
    "status": lambda rng, ctx: rng.choice(_STATUSES),
    "unix": lambda rng, ctx: str(
        rng.randint(ctx.interval_start, max(ctx.interval_start, ctx.interval_end - 1))
    ),
}


class ResultBody(Protocol):
    """A file that can produce any byte range of itself."""

    size: int
    content_type: str
    filename: str

    def iter_range(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        """Bytes [start, end) in chunks of about chunk_size."""
        ...


class TableFile:
    """A CSV (Stripe) or UTF-16 TSV (Zuora export) file of deterministic rows."""

    def __init__(
        self,
        columns: Sequence[Column],
        *,
        seed: int,
        context: ValueContext,
        rows: int | None = None,
        target_bytes: int | None = None,
        delimiter: str = ",",
        utf16: bool = False,
        filename: str = "report.csv",
        content_type: str = "text/csv",
    ) -> None:
        if not columns:
            raise ValueError("a table needs columns")
        self.columns = tuple(columns)
        self.filename = filename
        self.content_type = content_type
        self._utf16 = utf16
        self._encoding = "utf-16-le" if utf16 else "ascii"
        self._unit = 2 if utf16 else 1
        self._bom = b"\xff\xfe" if utf16 else b""
        self.header = delimiter.join(c.name for c in self.columns) + "\n"
        rng = random.Random(seed)
        tag = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))
        columns_used = self.columns
        slot_values: list[list[str]] = []
        templates: list[str] = []
        # A file shorter than a block needs only its own rows' templates (the same ones, as
        # the RNG draws them in order): drawing all 1024 cost ~10 ms per run, which queued
        # every other request behind it when hundreds of small runs finished together.
        small = target_bytes is None and rows is not None and 0 < rows < BLOCK_ROWS
        self._block_rows = rows if small and rows is not None else BLOCK_ROWS
        for _ in range(self._block_rows):
            values = []
            for col in columns_used:
                if col.kind == "index":
                    values.append(col.prefix + tag + "\x00")
                else:
                    values.append(_GENERATORS.get(col.kind, _text)(rng, context))
            slot_values.append(values)
            line = delimiter.join(v.replace("%", "%%") for v in values) + "\n"
            templates.append(line.replace("\x00", _INDEX_FMT))
        self._index_per_row = sum(1 for c in self.columns if c.kind == "index")
        self._slot_values = slot_values
        self._constant_block: bytes | None = None
        self._block_fmt = "".join(templates)
        # ASCII files format straight into bytes: one copy fewer per block.
        self._block_fmt_bytes = None if utf16 else self._block_fmt.encode("ascii")
        lengths = [
            len(t) + self._index_per_row * (INDEX_WIDTH - len(_INDEX_FMT)) for t in templates
        ]
        lengths = [n - t.count("%%") for n, t in zip(lengths, templates)]
        self._offsets = [0]
        for n in lengths:
            self._offsets.append(self._offsets[-1] + n)
        self.block_chars = self._offsets[-1]
        header_chars = len(self.header)
        if target_bytes is not None:
            chars = max(
                0, (target_bytes - len(self._bom) + self._unit - 1) // self._unit - header_chars
            )
            full, rest = divmod(chars, self.block_chars)
            part = bisect.bisect_left(self._offsets, rest)
            rows = full * BLOCK_ROWS + part
        self.rows = int(rows if rows is not None else 0)
        full_blocks, rem = divmod(self.rows, BLOCK_ROWS)
        self._data_chars = full_blocks * self.block_chars + self._offsets[rem]
        self._header_bytes = self._bom + self.header.encode(self._encoding)
        self.size = len(self._header_bytes) + self._data_chars * self._unit

    # -- rows as values (Zuora report data) ------------------------------------------------
    def row_values(self, index: int) -> list[str]:
        """The values of data row `index` (0-based), as strings."""
        slot = self._slot_values[index % BLOCK_ROWS]
        number = _INDEX_FMT % index
        return [v.replace("\x00", number) for v in slot]

    # -- bytes -----------------------------------------------------------------------------
    def _block(self, block: int) -> bytes:
        first = block * BLOCK_ROWS
        if self._index_per_row == 0:
            if self._constant_block is None:
                self._constant_block = (self._block_fmt % ()).encode(self._encoding)
            return self._constant_block
        last = first + self._block_rows
        if self._index_per_row == 1:
            args: tuple[int, ...] = tuple(range(first, last))
        else:
            args = tuple(i for i in range(first, last) for _ in range(self._index_per_row))
        if self._block_fmt_bytes is not None:
            return self._block_fmt_bytes % args
        return (self._block_fmt % args).encode(self._encoding)

    def iter_range(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        end = min(end, self.size)
        if start >= end:
            return
        pending: list[bytes] = []
        pending_len = 0
        head = len(self._header_bytes)
        pos = start
        if pos < head:
            piece = self._header_bytes[pos : min(end, head)]
            pending.append(piece)
            pending_len += len(piece)
            pos += len(piece)
        block_bytes = self.block_chars * self._unit
        while pos < end:
            block, within = divmod(pos - head, block_bytes)
            data = self._block(block)
            stop = min(block_bytes, within + (end - pos))
            piece = data[within:stop] if (within or stop < block_bytes) else data
            pending.append(piece)
            pending_len += len(piece)
            pos += len(piece)
            if pending_len >= chunk_size:
                yield b"".join(pending)
                pending = []
                pending_len = 0
        if pending:
            yield b"".join(pending)


def _dos_time(when: dt.datetime) -> tuple[int, int]:
    dos_time = (when.hour << 11) | (when.minute << 5) | (when.second // 2)
    dos_date = ((max(when.year, 1980) - 1980) << 9) | (when.month << 5) | when.day
    return dos_time, dos_date


class ZipFile:
    """A one-member ZIP (stored, data descriptor, ZIP64 when large) around another file.

    Stored rather than deflated because a deflated size is unknowable before compressing,
    and the size must be announced up front. The CRC goes after the data (data descriptor
    and central directory), so it is computed while the data streams by; a request that
    starts past the data computes it once by generating the content, and it is cached.
    """

    content_type = "application/zip"

    def __init__(self, inner: ResultBody, *, filename: str, member: str, when: dt.datetime) -> None:
        self.inner = inner
        self.filename = filename
        self._name = member.encode()
        self._zip64 = inner.size >= 0xFFFFFFFF
        self._time, self._date = _dos_time(when)
        self._crc: int | None = None
        self._crc_lock = threading.Lock()
        self._local = self._local_header()
        self._data_start = len(self._local)
        self._data_end = self._data_start + inner.size
        self._trailer_len = len(self._trailer(0))
        self.size = self._data_end + self._trailer_len

    def _local_header(self) -> bytes:
        version = 45 if self._zip64 else 20
        if self._zip64:
            extra = struct.pack("<HHQQ", 0x0001, 16, 0, 0)
            sizes = (0xFFFFFFFF, 0xFFFFFFFF)
        else:
            extra = b""
            sizes = (0, 0)
        return (
            struct.pack(
                "<IHHHHHIIIHH",
                0x04034B50,
                version,
                0x0008,
                0,
                self._time,
                self._date,
                0,
                sizes[0],
                sizes[1],
                len(self._name),
                len(extra),
            )
            + self._name
            + extra
        )

    def _trailer(self, crc: int) -> bytes:
        size = self.inner.size
        version = 45 if self._zip64 else 20
        if self._zip64:
            descriptor = struct.pack("<IIQQ", 0x08074B50, crc, size, size)
            extra = struct.pack("<HHQQ", 0x0001, 16, size, size)
            small = 0xFFFFFFFF
        else:
            descriptor = struct.pack("<IIII", 0x08074B50, crc, size, size)
            extra = b""
            small = size
        central = (
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                version | (3 << 8),
                version,
                0x0008,
                0,
                self._time,
                self._date,
                crc,
                small,
                small,
                len(self._name),
                len(extra),
                0,
                0,
                0,
                0o100644 << 16,
                0,
            )
            + self._name
            + extra
        )
        cd_offset = self._data_end + len(descriptor)
        cd_size = len(central)
        tail = b""
        if self._zip64:
            eocd64_offset = cd_offset + cd_size
            tail += struct.pack(
                "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, cd_size, cd_offset
            )
            tail += struct.pack("<IIQI", 0x07064B50, 0, eocd64_offset, 1)
            tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, cd_size, 0xFFFFFFFF, 0)
        else:
            tail += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, cd_size, cd_offset, 0)
        return descriptor + central + tail

    def _full_crc(self, chunk_size: int) -> int:
        with self._crc_lock:
            if self._crc is None:
                crc = 0
                for chunk in self.inner.iter_range(0, self.inner.size, chunk_size):
                    crc = zlib.crc32(chunk, crc)
                self._crc = crc
            return self._crc

    def iter_range(self, start: int, end: int, chunk_size: int) -> Iterator[bytes]:
        end = min(end, self.size)
        if start >= end:
            return
        pos = start
        if pos < self._data_start:
            yield self._local[pos : min(end, self._data_start)]
            pos = min(end, self._data_start)
        if pos < end and pos < self._data_end:
            a = pos - self._data_start
            b = min(end, self._data_end) - self._data_start
            track = a == 0 and self._crc is None
            crc = 0
            for chunk in self.inner.iter_range(a, b, chunk_size):
                if track:
                    crc = zlib.crc32(chunk, crc)
                yield chunk
            if track and b == self.inner.size:
                self._crc = crc
            pos = b + self._data_start
        if pos < end:
            trailer = self._trailer(self._full_crc(chunk_size))
            yield trailer[pos - self._data_end : end - self._data_end]


def table_context(
    parameters: Mapping[str, Any], default_start: int, default_end: int
) -> ValueContext:
    """Pick the interval and currency out of a run's parameters (any provider's names)."""
    start = _as_int(parameters.get("interval_start"), default_start)
    end = _as_int(parameters.get("interval_end"), default_end)
    currency = parameters.get("currency")
    return ValueContext(
        interval_start=start,
        interval_end=max(end, start + 1),
        currency=currency if isinstance(currency, str) and currency else None,
        display=False,
    )


def _as_int(value: Any, default: int) -> int:
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
        except ValueError:
            return default
    return default
