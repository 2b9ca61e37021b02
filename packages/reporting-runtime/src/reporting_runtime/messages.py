"""Request and Response: the two values every policy and the transport pass around."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from reporting_runtime.errors import ReportingError, ResponseFormatError, TransportError
from reporting_runtime.redaction import redact_url, scrub_text

if TYPE_CHECKING:
    from urllib3.util.retry import Retry

__all__ = ["Headers", "RawResponse", "Request", "Response", "body_excerpt"]


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

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        # Names only: values may be credentials.
        return f"Headers({list(self)!r})"


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


@attrs.frozen(kw_only=True)
class Request:
    """One HTTP request. Frozen: a policy returns `attrs.evolve(request, ...)`, so a retry
    or a redirect never sees another policy's half-made change."""

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

    def header(self, name: str) -> str | None:
        return find_header(self.headers, name)


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


def body_excerpt(body: bytes, limit: int = 200) -> str:
    """A short, single-line, key-scrubbed piece of a body for error messages."""
    text = body[: limit * 4].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit] + "..."
    return scrub_text(text)


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
    ) -> None:
        self.request = request
        self._raw = raw
        self.status: int = status if status is not None else (raw.status if raw else 0)
        if headers is None:
            items = raw.headers.items() if raw is not None else ()
            headers = Headers((str(k), str(v)) for k, v in items)
        self.headers: Headers = headers
        self._content = content
        self._consumed = False
        self._fill: Callable[[memoryview], int] | None = None
        self._filled = 0

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content_length(self) -> int | None:
        """Bytes the body will yield, when the server said so and did not compress it."""
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        value = self.headers.get("Content-Length")
        if value is None or encoding not in ("", "identity") or not value.strip().isdigit():
            return None
        return int(value)

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
        """The whole body (cached; later calls return the same bytes)."""
        if self._content is None:
            if self._consumed:
                raise ReportingError("the response body was already streamed")
            chunks = list(self.iter_bytes())
            self._content = b"".join(chunks)
        return self._content

    def json(self) -> Any:
        body = self.read()
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            excerpt = body_excerpt(body)
            raise ResponseFormatError(
                f"{self._where()}: expected JSON, got {self.content_type or 'no content type'}"
                f" (HTTP {self.status}): {excerpt!r}",
                provider=self.request.provider,
                operation=self.request.operation,
                status=self.status,
                excerpt=excerpt,
            ) from None

    def iter_bytes(self, chunk_size: int = 1 << 20) -> Iterator[bytes]:
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
        try:
            for chunk in raw.stream(chunk_size):
                if chunk:
                    yield chunk
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
        if fill is None:
            if self._consumed and self._content is None:
                raise ReportingError("the response body was already streamed")
            self._consumed = True
            fill = self._fill = self._filler()
        try:
            count = fill(buffer)
        except ReportingError:
            raise
        except Exception as exc:
            self._finish(False)
            raise TransportError(
                f"{self._where()}: connection lost while reading the body ({type(exc).__name__})",
                provider=self.request.provider,
                operation=self.request.operation,
            ) from None
        self._filled += count
        if count == 0 and len(buffer):
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
