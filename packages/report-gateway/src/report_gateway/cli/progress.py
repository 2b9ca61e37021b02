"""One status line on stderr, rewritten in place, while a run is waited for or downloaded.

Shown only when stderr is a terminal: in a pipe or a log file the carriage returns would be
noise, so the display stays silent there (results and errors still go out as usual).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from .output import format_bytes, format_seconds, status_text

if TYPE_CHECKING:
    from report_gateway.models import ReportRun, StartProgress

__all__ = ["Progress"]

_MIN_INTERVAL = 0.1  # seconds between redraws of a download line


class Progress:
    """Draws waiting and download progress; ``enabled=None`` means "if stream is a tty"."""

    def __init__(
        self,
        stream: IO[str],
        *,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if enabled is None:
            isatty = getattr(stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.stream = stream
        self.enabled = enabled
        self._clock = clock
        self._width = 0
        self._started = 0.0
        self._last_draw = 0.0
        self._received = 0
        self.prefix = ""

    def _draw(self, text: str) -> None:
        line = f"{self.prefix}{text}"
        pad = " " * max(0, self._width - len(line))
        self.stream.write(f"\r{line}{pad}")
        self.stream.flush()
        self._width = len(line)

    def finish(self, text: str | None = None) -> None:
        """End the current line (with a final text), so the next output starts clean."""
        if not self.enabled:
            return
        if text is not None:
            self._draw(text)
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0

    def note(self, text: str) -> None:
        """A line of its own (``started run ...``), shown only on a terminal like the rest."""
        if self.enabled:
            self.finish()
            self.stream.write(f"{self.prefix}{text}\n")
            self.stream.flush()

    # -- starting --------------------------------------------------------------------------

    def starting(self, event: StartProgress) -> None:
        """``on_progress`` for ``Gateway.start``: a start waiting for a free run slot."""
        if not self.enabled:
            return
        where = "" if event.position is None else f"position {event.position}, "
        self._draw(f"waiting for a free run slot ({where}{format_seconds(event.waited_seconds)})")

    # -- waiting ---------------------------------------------------------------------------

    def waiting(self, run: ReportRun, elapsed: float) -> None:
        """``on_progress`` for ``Gateway.wait``: status and elapsed time."""
        if not self.enabled:
            return
        self._draw(f"{run.provider} run {run.id}: {status_text(run)}, {format_seconds(elapsed)}")

    # -- downloading -----------------------------------------------------------------------

    def start_download(self) -> None:
        self._started = self._clock()
        self._last_draw = 0.0
        self._received = 0

    def downloading(self, received: int, total: int | None) -> None:
        """``on_progress`` for ``Gateway.download``: bytes, percentage, rate and ETA."""
        self._received = received
        if not self.enabled:
            return
        now = self._clock()
        done = total is not None and received >= total
        if not done and now - self._last_draw < _MIN_INTERVAL:
            return
        self._last_draw = now
        elapsed = max(now - self._started, 1e-6)
        rate = received / elapsed
        text = f"downloading {format_bytes(received)}"
        if total:
            text += f" / {format_bytes(total)} ({100 * received / total:.0f}%)"
        text += f", {format_bytes(rate)}/s"
        if total and rate > 0 and received < total:
            text += f", ETA {format_seconds((total - received) / rate)}"
        self._draw(text)

    def downloaded(self, size: int, path: str) -> None:
        """The closing line: bytes received (before any unzip or UTF-16 conversion) and kept."""
        elapsed = max(self._clock() - self._started, 1e-6)
        received = self._received or size
        self.finish(
            f"downloaded {format_bytes(received)} in {format_seconds(elapsed)} "
            f"({format_bytes(received / elapsed)}/s); wrote {path} ({format_bytes(size)})"
        )
