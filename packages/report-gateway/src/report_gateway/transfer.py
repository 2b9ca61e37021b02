"""Reading a result's bytes once, in order, surviving dropped connections.

Both ``download`` and ``rows`` consume ``ResultBody.chunks()``: it reopens the result after a
connection drops or a body ends short, asking for the rest with a Range request
(``open_result(offset=N)``). A server that answers 200 instead of 206 sends everything
again, and the bytes already delivered are skipped, so a consumer never sees a byte twice.
Attempts are bounded; the final check compares the byte count with the size the provider
announced.
"""

from __future__ import annotations

import http.client
import re
import sys
from collections.abc import Callable, Iterator

from reporting_runtime.errors import TransportError

from .errors import DownloadError, IntegrityError
from .provider import ResultResponse

__all__ = ["CHUNK_SIZE", "ResultBody", "network_errors"]

CHUNK_SIZE = 1 << 20
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)", re.IGNORECASE)


def network_errors() -> tuple[type[BaseException], ...]:
    """Exceptions meaning "the connection failed", whatever layer raised them.

    Built at call time so importing the gateway does not import urllib3.
    """
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError, http.client.HTTPException]
    urllib3_exceptions = sys.modules.get("urllib3.exceptions")
    if urllib3_exceptions is not None:
        errors.append(urllib3_exceptions.HTTPError)
    errors.append(TransportError)
    return tuple(errors)


class ResultBody:
    """One pass over a result's bytes, resumed after interruptions.

    ``open_result(offset)`` returns a streaming response starting at ``offset`` (206) or at
    zero (200). ``expected_size`` is the provider's announced size, if any; ``received`` and
    ``total`` are readable for progress display.
    """

    def __init__(
        self,
        open_result: Callable[[int], ResultResponse],
        *,
        expected_size: int | None,
        description: str,
        max_attempts: int = 5,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        self._open = open_result
        self.expected_size = expected_size
        self.total = expected_size
        self.received = 0
        self.description = description
        self.max_attempts = max(1, max_attempts)
        self.chunk_size = chunk_size

    def chunks(self) -> Iterator[bytes]:
        """Yield the bytes in order, each exactly once; raise DownloadError/IntegrityError."""
        retryable = network_errors()
        failures = 0
        while True:
            response = self._open(self.received)
            short = False
            try:
                skip, body_length = self._position(response)
                got = 0
                try:
                    for chunk in response.iter_bytes(self.chunk_size):
                        got += len(chunk)
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk = chunk[skip:]
                            skip = 0
                        self.received += len(chunk)
                        yield chunk
                except retryable as exc:
                    failures += 1
                    if failures >= self.max_attempts:
                        raise DownloadError(
                            f"{self.description}: connection failed {failures} times, "
                            f"last after {self.received} bytes ({type(exc).__name__})"
                        ) from exc
                    continue
                short = body_length is not None and got < body_length
            finally:
                response.close()
            if short:
                failures += 1
                if failures >= self.max_attempts:
                    raise IntegrityError(
                        f"{self.description}: body ended early {failures} times; received "
                        f"{self.received} of {self.total} bytes"
                    )
                continue
            if self.expected_size is not None and self.received != self.expected_size:
                raise IntegrityError(
                    f"{self.description}: received {self.received} bytes but the provider "
                    f"announced {self.expected_size}"
                )
            return

    def _position(self, response: ResultResponse) -> tuple[int, int | None]:
        """How many leading bytes of this response to skip, and how long its body should be."""
        status = response.status
        length = response.content_length
        if status == 206:
            match = _CONTENT_RANGE.search(response.headers.get("Content-Range", ""))
            if match is None:
                raise DownloadError(f"{self.description}: partial response without Content-Range")
            start = int(match.group(1))
            if match.group(3) != "*" and self.total is None:
                self.total = int(match.group(3))
            if start > self.received:
                raise DownloadError(
                    f"{self.description}: server resumed at byte {start}, expected {self.received}"
                )
            return self.received - start, length
        if 200 <= status < 300:
            if self.total is None and length is not None:
                self.total = length
            return self.received, length
        raise DownloadError(f"{self.description}: unexpected HTTP status {status}")
