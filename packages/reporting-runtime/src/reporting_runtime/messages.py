"""Request and Response: the two values every policy and the transport pass around."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

import attrs

from reporting_runtime.errors import (
    BodyTooLargeError,
    DeadlineExceededError,
    ReportingError,
    ResponseFormatError,
    TransportError,
)
from reporting_runtime.redaction import Scrubber, redact_url, scrub_text

if TYPE_CHECKING:
    from urllib3.util.retry import Retry

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_JSON_ITEMS",
    "Headers",
    "RawResponse",
    "Request",
    "Response",
    "body_excerpt",
    "parse_json",
]

#: The most bytes ``Response.read`` (and so ``json``) holds in memory: a JSON answer is
#: small, and a server sending gigabytes must not take the process down with it. Streamed
#: bodies (``iter_bytes``) are not held, so not capped here. ``Transport(max_body_bytes=)``
#: changes it.
DEFAULT_MAX_BODY_BYTES = 4 << 20

#: The most JSON values (counted as ``[``, ``{`` and ``,`` bytes, a cheap upper bound) a
#: body may hold before it is parsed: 4 MiB of ``[[],[],...]`` would otherwise become
#: hundreds of MiB of Python objects and take seconds to build. A reporting answer holds a
#: few thousand (a page of 100 runs); ``Transport(max_json_items=...)`` changes it.
DEFAULT_MAX_JSON_ITEMS = 200_000

_READ_CHUNK = 1 << 16

_T = TypeVar("_T")

#: A Content-Length value: ASCII digits, at most 18 (an exabyte; int() refuses 4300+).
_LENGTH = re.compile(r"[0-9]{1,18}")


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only view of response headers; repeated headers joined by ", "."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        merged: dict[str, tuple[str, str]] = {}
        for name, value in items:
            key = name.lower()
            if key in merged:
                merged[key] = (merged[key][0], f"{merged[key][1]}, {value}")
            else:
                merged[key] = (name, value)
        self._items = merged

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    @overload
    def get(self, name: str, /) -> str | None: ...
    @overload
    def get(self, name: str, /, default: str | _T) -> str | _T: ...

    def get(self, name: str, /, default: Any = None) -> Any:
        # Mapping.get goes through __getitem__ and a KeyError; every response is asked for
        # its Content-Length, Content-Type, Content-Encoding and request id this way.
        item = self._items.get(name.lower())
        return default if item is None else item[1]

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Names only: values may be credentials.
        return f"Headers({list(self)!r})"


def _headers_of(raw: Any) -> Headers:
    """``Headers`` of a raw response's headers. urllib3's ``HTTPHeaderDict`` already holds
    them merged our way (by lower-case name: the first spelling, then every value), so its
    table is taken in one pass rather than re-merged a value at a time (a few dozen calls
    per response); anything else (vcrpy's replayed headers) is read item by item."""
    table = getattr(raw, "_container", None)
    if type(table) is dict:
        merged: dict[str, tuple[str, str]] = {}
        for key, entry in table.items():
            if type(entry) is not list or len(entry) < 2 or type(key) is not str:
                break
            if len(entry) == 2 and type(entry[0]) is str and type(entry[1]) is str:
                merged[key] = (entry[0], entry[1])
            else:
                merged[key] = (str(entry[0]), ", ".join([str(v) for v in entry[1:]]))
        else:
            headers = Headers()
            headers._items = merged
            return headers
    return Headers((str(k), str(v)) for k, v in raw.items())


def find_header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive lookup in a plain request-header dict."""
    lower = name.lower()
    for key, value in headers.items():
        if key.lower() == lower:
            return value
    return None


def with_header(headers: Mapping[str, str], name: str, value: str | None) -> dict[str, str]:
    """A copy with `name` set (or removed when value is None), whatever case it had before."""
    lower = name.lower()
    updated = {key: val for key, val in headers.items() if key.lower() != lower}
    if value is not None:
        updated[name] = value
    return updated


@attrs.frozen(kw_only=True, slots=False)
class Request:
    """One HTTP request. Frozen: a policy returns `attrs.evolve(request, ...)`, so a retry
    or a redirect never sees another policy's half-made change.

    Not slotted: ``evolve``, done several times per request by the policies, copies the
    instance's ``__dict__`` in one step."""

    method: str
    # A pre-signed download URL carries its credential in the query: the repr hides it.
    url: str = attrs.field(repr=lambda url: repr(redact_url(url)))
    headers: dict[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes | None = attrs.field(default=None, repr=False)
    operation: str = ""
    provider: str = ""
    #: Set by IdempotencyKeyPolicy: the request carries the API's idempotency key, so
    #: sending it again cannot act twice (RetryPolicy then retries a POST too).
    idempotent: bool = False
    #: Set by RetryPolicy; the transport hands it to urllib3, which runs the retry loop.
    retries: Retry | None = attrs.field(default=None, repr=False, eq=False)
    #: Hides the secrets the client holds in any text made from this exchange (set by
    #: ApiClient from its auth policy; alone it still hides key-shaped strings).
    scrubber: Callable[[str], str] = attrs.field(factory=Scrubber, repr=False, eq=False)
    #: When the whole exchange must be over (``time.monotonic`` seconds), retries, waits for
    #: Retry-After and reading the body included; None: only the per-read timeouts hold.
    #: Past it the exchange is abandoned with a ``DeadlineExceededError`` (``deadlines``).
    deadline: float | None = attrs.field(default=None, eq=False)
    #: The longest wait for any byte (the socket read timeout) instead of the transport's:
    #: a stall limit for a long download.
    read_timeout: float | None = attrs.field(default=None, eq=False)
    #: Set by whoever sends a request its URL alone authorises (a pre-signed download,
    #: sent with no key): the URL is then a credential whatever its query keys are called
    #: (``?e=1&s=...``), so the transport keeps HTTP auto-instrumentation off it always
    #: instead of guessing from the keys (``instrumentation``).
    url_is_credential: bool = attrs.field(default=False, eq=False)

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)

    def evolve(self, **changes: Any) -> Request:
        """``attrs.evolve(self, **changes)`` without its per-call field introspection and
        ``__init__``: the policies evolve every request several times. Request has no
        validators, converters or post-init to run, so a copy of the fields with
        ``changes`` over them is what ``attrs.evolve`` builds; a name that is no field is
        the same TypeError."""
        if not changes.keys() <= _REQUEST_FIELDS:
            unknown = sorted(changes.keys() - _REQUEST_FIELDS)
            raise TypeError(f"Request.evolve() got unexpected keyword argument(s) {unknown}")
        new: Request = _new_object(Request)
        state = new.__dict__
        state.update(self.__dict__)
        state.update(changes)
        return new


_REQUEST_FIELDS: frozenset[str] = frozenset(field.name for field in attrs.fields(Request))
_new_object = object.__new__


class RawResponse(Protocol):
    """What we use of a urllib3 response. vcrpy's VCRHTTPResponse stands in for urllib3's
    during replay, so we rely on this shape and never on isinstance checks."""

    status: int

    @property
    def headers(self) -> Any: ...

    def read(self, amt: int | None = None) -> bytes: ...

    def stream(self, amt: int = ...) -> Iterator[bytes]: ...

    def release_conn(self) -> None: ...

    def close(self) -> Any: ...


def body_excerpt(body: bytes, limit: int = 200, scrub: Callable[[str], str] = scrub_text) -> str:
    """A short, single-line, scrubbed piece of a body for error messages.

    Scrubbed before it is cut, so a secret straddling the cut cannot leave half of itself.
    """
    text = body[: limit * 8].decode("utf-8", errors="replace")
    text = scrub(" ".join(text.split()))
    if len(text) > limit:
        text = text[:limit] + "..."
    return text


class TooManyJsonItems(ValueError):
    """A JSON text holding more values than ``parse_json`` was allowed to build."""


def count_json_items(body: bytes | str) -> int:
    """An upper bound of the values in a JSON text (its ``[``, ``{`` and ``,``, strings
    included), read at memory speed before a parse that could cost far more."""
    if isinstance(body, str):
        return body.count("[") + body.count("{") + body.count(",")
    return body.count(b"[") + body.count(b"{") + body.count(b",")


def parse_json(body: bytes | str, max_items: int | None = DEFAULT_MAX_JSON_ITEMS) -> Any:
    """``json.loads`` whose every failure is a ValueError (a body nested deeper than the
    interpreter's recursion limit raises RecursionError otherwise), refusing a body with
    more than ``max_items`` values (``TooManyJsonItems``) before building any of them."""
    if max_items is not None and count_json_items(body) > max_items:
        raise TooManyJsonItems(f"more than {max_items} JSON values")
    try:
        return json.loads(body)
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


class Response:
    """An HTTP response whose body is read once: all at once (`read`, `json`) or streamed
    (`iter_bytes`) without holding it in memory. Close it (or use `with`) when streaming."""

    def __init__(
        self,
        raw: RawResponse | None,
        *,
        request: Request,
        status: int | None = None,
        headers: Headers | None = None,
        content: bytes | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_json_items: int = DEFAULT_MAX_JSON_ITEMS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.request = request
        self._clock = clock
        self.max_body_bytes = max_body_bytes
        self.max_json_items = max_json_items
        self._raw = raw
        self.status: int = status if status is not None else (raw.status if raw else 0)
        if headers is None:
            headers = _headers_of(raw.headers) if raw is not None else Headers()
        self.headers: Headers = headers
        self._content = content
        self._consumed = False
        self._fill: Callable[[memoryview], int] | None = None
        self._filled = 0
        self._alarm: Any = None  # readinto's deadline watchdog, armed on its first call

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_length(self) -> int | None:
        """Bytes the body will yield, when the server said so and did not compress it."""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        if _LENGTH.fullmatch(value):  # one plain value: every answer but a rare few
            return int(value) if encoding in ("", "identity") else None
        # Repeated identical values ("12, 12") are allowed by RFC 9110; anything but ASCII
        # digits, or more of them than any real body needs (int() refuses 4300+ digits),
        # leaves the body's end unknown: the response cannot be trusted, so it is refused.
        values = {part.strip() for part in value.split(",")}
        if len(values) != 1 or not all(_LENGTH.fullmatch(part) for part in values):
            raise self._bad_framing(f"an invalid Content-Length ({value[:40]!r})")
        if encoding not in ("", "identity"):
            return None
        return int(values.pop())

    @property
    def request_id(self) -> str | None:
        """``Request-Id``, else a vendor-prefixed ``<Vendor>-Request-Id``: what support asks for."""
        return self._id_header("request-id")

    @property
    def track_id(self) -> str | None:
        """A vendor-prefixed ``<Vendor>-Track-Id`` (a trace id spanning several requests)."""
        return self._id_header("track-id")

    def _id_header(self, kind: str) -> str | None:
        exact = self.headers.get(kind)
        if exact:
            return exact
        suffix = "-" + kind
        for name in self.headers:
            if name.lower().endswith(suffix):
                value = self.headers[name]
                if value:
                    return value
        return None

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def read(self) -> bytes:
        """The whole body (cached; later calls return the same bytes).

        At most ``max_body_bytes``: a larger announced length is refused before a byte is
        read, and without one reading stops one chunk past the cap; either way the
        connection is dropped and a ``BodyTooLargeError`` raised.
        """
        if self._content is None:
            if self._consumed:
                raise ReportingError("the response body was already streamed")
            limit = self.max_body_bytes
            announced = self.content_length
            if announced is not None and announced > limit:
                self.close()
                raise self._too_large(f"announces {announced} bytes")
            if announced is not None and self.request.deadline is None and self._raw is not None:
                self._content = self._read_announced(limit)
                return self._content
            chunks: list[bytes] = []
            size = 0
            stream = self.iter_bytes(_READ_CHUNK)
            try:
                for chunk in stream:
                    size += len(chunk)
                    if size > limit:
                        chunks.clear()
                        raise self._too_large(f"sent more than {limit} bytes")
                    chunks.append(chunk)
            finally:
                stream.close()  # an abandoned read drops the connection (see iter_bytes)
            self._content = b"".join(chunks)
        return self._content

    def _read_announced(self, limit: int) -> bytes:
        """``read``'s way for a body of known length with no deadline to watch (every JSON
        answer of a call without one): one read of the raw response instead of a stream of
        chunks through two generators. The same checks and errors as ``iter_bytes``."""
        self._consumed = True
        raw = self._raw
        assert raw is not None
        finished = False
        try:
            data = raw.read()
            if len(data) > limit:
                raise self._too_large(f"sent more than {limit} bytes")
            finished = True
        except ReportingError:
            raise
        except Exception as exc:
            # urllib3 errors name the URL (query included); describe them ourselves.
            raise TransportError(
                f"{self._where()}: connection lost while reading the body ({type(exc).__name__})",
                provider=self.request.provider,
                operation=self.request.operation,
            ) from None
        finally:
            self._finish(finished)
        return data

    def read_prefix(self, limit: int) -> bytes:
        """The first ``limit`` bytes of the body, the rest left unread (the connection is
        dropped): enough of an error page to explain it, never the whole of a huge one."""
        if self._content is None:
            if self._consumed:
                raise ReportingError("the response body was already streamed")
            buffer = bytearray()
            stream = self.iter_bytes(_READ_CHUNK)
            try:
                for chunk in stream:
                    buffer += chunk[: limit - len(buffer)]
                    if len(buffer) >= limit:
                        break
            finally:
                stream.close()
            self._content = bytes(buffer)
        return self._content

    def _bad_framing(self, what: str) -> ResponseFormatError:
        self.close()
        return ResponseFormatError(
            f"{self._where()}: the answer has {what}, so where its body ends is unknown"
            f" (HTTP {self.status}"
            + (f", request id {self.request_id}" if self.request_id else "")
            + "); refused",
            provider=self.request.provider,
            operation=self.request.operation,
            status=self.status,
        )

    def _too_large(self, what: str) -> BodyTooLargeError:
        return BodyTooLargeError(
            f"{self._where()}: the answer {what}, beyond the {self.max_body_bytes}-byte limit"
            f" for a response read into memory (HTTP {self.status}"
            + (f", request id {self.request_id}" if self.request_id else "")
            + "); raise Transport(max_body_bytes=...) if it is genuine",
            provider=self.request.provider,
            operation=self.request.operation,
            status=self.status,
            limit=self.max_body_bytes,
        )

    def json(self) -> Any:
        """The body parsed as JSON; anything else (not JSON, nested too deeply, more than
        ``max_json_items`` values) is a ``ResponseFormatError``. Past the request's deadline
        nothing is parsed (``DeadlineExceededError``): parsing is work on the caller's time."""
        body = self.read()
        deadline = self.request.deadline
        if deadline is not None and self._clock() >= deadline:
            raise self.deadline_error()
        if count_json_items(body) > self.max_json_items:
            raise ResponseFormatError(
                f"{self._where()}: the JSON answer holds more than {self.max_json_items} values"
                f" (HTTP {self.status}"
                + (f", request id {self.request_id}" if self.request_id else "")
                + "); refused unparsed, raise Transport(max_json_items=...) if it is genuine",
                provider=self.request.provider,
                operation=self.request.operation,
                status=self.status,
            )
        try:
            return json.loads(body)
        except RecursionError:
            problem = "the JSON answer is nested too deeply to read"
        except (ValueError, UnicodeDecodeError):
            problem = f"expected JSON, got {self.content_type or 'no content type'}"
        excerpt = body_excerpt(body, scrub=self.request.scrubber)
        raise ResponseFormatError(
            f"{self._where()}: {problem} (HTTP {self.status}): {excerpt!r}",
            provider=self.request.provider,
            operation=self.request.operation,
            status=self.status,
            excerpt=excerpt,
        ) from None

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Generator[bytes, None, None]:
        """Body chunks as they arrive; empty chunks (vcrpy ends streams with one) skipped."""
        if self._content is not None:
            for start in range(0, len(self._content), chunk_size):
                yield self._content[start : start + chunk_size]
            return
        if self._consumed:
            raise ReportingError("the response body was already streamed")
        self._consumed = True
        raw = self._raw
        if raw is None:
            return
        finished = False
        deadline = self.request.deadline
        alarm = None
        if deadline is not None:
            # A body trickled a byte at a time never trips a per-read timeout: the watchdog
            # shuts the socket down at the deadline, and each chunk checks it too.
            from reporting_runtime.deadlines import WATCHDOG, shutdown_connection

            connection = getattr(raw, "connection", None)
            alarm = WATCHDOG.arm(
                deadline, lambda: shutdown_connection(connection), clock=self._clock
            )
        try:
            for chunk in raw.stream(chunk_size):
                if deadline is not None and (
                    (alarm is not None and alarm.fired) or self._clock() >= deadline
                ):
                    raise self.deadline_error()
                if chunk:
                    yield chunk
            if alarm is not None and alarm.fired:  # a shut socket can look like the end
                raise self.deadline_error()
            finished = True
        except ReportingError:
            raise
        except Exception as exc:
            if deadline is not None and (
                (alarm is not None and alarm.fired) or self._clock() >= deadline
            ):
                raise self.deadline_error() from None
            # urllib3 errors name the URL (query included); describe them ourselves.
            raise TransportError(
                f"{self._where()}: connection lost while reading the body ({type(exc).__name__})",
                provider=self.request.provider,
                operation=self.request.operation,
            ) from None
        finally:
            if alarm is not None:
                alarm.cancel()
            self._finish(finished)

    def deadline_error(self) -> DeadlineExceededError:
        """The error for a body still unread at the request's deadline."""
        return DeadlineExceededError(
            f"{self._where()}: the answer did not arrive before the deadline (HTTP {self.status}"
            + (f", request id {self.request_id}" if self.request_id else "")
            + "); abandoned",
            provider=self.request.provider,
            operation=self.request.operation,
        )

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` with the next body bytes and return how many; 0 at the end.

        For a download's hot path: nothing is allocated per call. A plain (not
        content-encoded) urllib3 body is read by its ``http.client`` response straight from
        the socket into ``buffer`` (urllib3's own ``readinto`` reads a fresh bytes object
        and copies it: issue 12 measured such per-chunk objects costing up to 3x under
        memory pressure). Anything else (a compressed body, vcrpy's replay stub) goes
        through the raw response's ``readinto``. A body cut short of its Content-Length is
        a ``TransportError``, as with ``iter_bytes``. Do not mix the two on one response.
        """
        fill = self._fill
        deadline = self.request.deadline if self._content is None else None
        if fill is None:
            if self._consumed and self._content is None:
                raise ReportingError("the response body was already streamed")
            self._consumed = True
            fill = self._fill = self._filler()
            if deadline is not None and self._raw is not None:
                # As in iter_bytes: a body trickled a byte at a time never trips a per-read
                # timeout, so the watchdog shuts the socket down at the deadline.
                from reporting_runtime.deadlines import WATCHDOG, shutdown_connection

                connection = getattr(self._raw, "connection", None)
                self._alarm = WATCHDOG.arm(
                    deadline, lambda: shutdown_connection(connection), clock=self._clock
                )
        if deadline is not None and self._deadline_hit(deadline):
            self._stop_alarm()
            self._finish(False)
            raise self.deadline_error()
        try:
            count = fill(buffer)
        except ReportingError:
            self._stop_alarm()
            raise
        except Exception as exc:
            self._stop_alarm()
            self._finish(False)
            if deadline is not None and self._deadline_hit(deadline):
                raise self.deadline_error() from None
            raise TransportError(
                f"{self._where()}: connection lost while reading the body ({type(exc).__name__})",
                provider=self.request.provider,
                operation=self.request.operation,
            ) from None
        self._filled += count
        if count == 0 and len(buffer):
            fired = self._alarm is not None and self._alarm.fired
            self._stop_alarm()
            if fired:  # a socket shut by the watchdog can look like the end of the body
                self._finish(False)
                raise self.deadline_error()
            expected = self.content_length if self._content is None else None
            self._finish(expected is None or self._filled >= expected)
            if expected is not None and self._filled < expected:
                raise TransportError(
                    f"{self._where()}: connection lost while reading the body "
                    f"({self._filled} of {expected} bytes)",
                    provider=self.request.provider,
                    operation=self.request.operation,
                )
        return count

    def wire_bytes(self) -> int | None:
        """Body bytes read off the connection so far, before any Content-Encoding is undone
        (None when unknown): what a caller bounds a compressed body's expansion by."""
        tell = getattr(self._raw, "tell", None)
        if not callable(tell):
            return None
        try:
            return int(tell())
        except Exception:  # a replay stub may not count: unknown, not an error
            return None

    def _deadline_hit(self, deadline: float) -> bool:
        return (self._alarm is not None and self._alarm.fired) or self._clock() >= deadline

    def _stop_alarm(self) -> None:
        alarm, self._alarm = self._alarm, None
        if alarm is not None:
            alarm.cancel()

    def _filler(self) -> Callable[[memoryview], int]:
        if self._content is not None:
            return io.BytesIO(self._content).readinto
        raw = self._raw
        if raw is None:
            return lambda buffer: 0
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        # urllib3 keeps the http.client response in a private attribute; without it (a
        # replay stub, another urllib3) the public readinto below still works.
        direct = getattr(getattr(raw, "_fp", None), "readinto", None)
        if encoding in ("", "identity") and callable(direct):
            return direct  # type: ignore[no-any-return]
        readinto = getattr(raw, "readinto", None)
        if callable(readinto):
            return readinto  # type: ignore[no-any-return]

        def read(buffer: memoryview) -> int:
            data = raw.read(len(buffer))
            buffer[: len(data)] = data
            return len(data)

        return read

    def close(self) -> None:
        """Give the connection back: reuse it if the body was read, drop it otherwise."""
        self._stop_alarm()
        if self._raw is not None and self._content is None:
            self._consumed = True
            self._finish(False)

    def _finish(self, finished: bool) -> None:
        raw, self._raw = self._raw, None
        if raw is None:
            return
        try:
            if not finished:
                raw.close()
            raw.release_conn()
        except Exception:  # noqa: S110 - releasing must never mask the real outcome
            pass

    def _where(self) -> str:
        return " ".join(p for p in (self.request.provider, self.request.operation) if p) or (
            self.request.method
        )

    def __enter__(self) -> Response:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.request.method} {self.request.operation}>"
