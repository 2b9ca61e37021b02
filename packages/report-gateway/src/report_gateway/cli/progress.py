"""One status line on stderr, rewritten in place, while a run is waited for or downloaded.

Shown only when stderr is a terminal: in a pipe or a log file the carriage returns would be
noise, so the display stays silent there (results and errors still go out as usual).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import IO, TYPE_CHECKING

from .output import format_bytes, format_seconds, status_text

if TYPE_CHECKING:
    from report_gateway.models import ReportRun, StartProgress

__all__ = ["Progress"]

_MIN_INTERVAL = 0.1  # seconds between redraws of a download line
_TICK = 1.0  # seconds between redraws of a waiting line while no poll answers


class Progress:
    """Draws waiting and download progress; ``enabled=None`` means "if stream is a tty"."""

    def __init__(
        self,
        stream: IO[str],
        *,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        scrub: Callable[[str], str] | None = None,
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
        self._conversion: str | None = None
        self.prefix = ""
        #: Applied to every line drawn (run ids and statuses are the provider's words).
        self.scrub = scrub
        # The waiting line's last poll (run, elapsed then, clock then), redrawn by the ticker
        # so the elapsed time moves every second even when polls are a minute apart.
        self._polled: tuple[ReportRun, float, float] | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def _draw(self, text: str) -> None:
        with self._lock:
            line = f"{self.prefix}{text}"
            if self.scrub is not None:
                line = self.scrub(line)
            pad = " " * max(0, self._width - len(line))
            self.stream.write(f"\r{line}{pad}")
            self.stream.flush()
            self._width = len(line)

    def finish(self, text: str | None = None) -> None:
        """End the current line (with a final text), so the next output starts clean."""
        self._stop_ticker()
        if not self.enabled:
            return
        with self._lock:
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
            line = f"{self.prefix}{text}"
            self.stream.write(f"{self.scrub(line) if self.scrub is not None else line}\n")
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
        """``on_progress`` for ``Gateway.wait``: status and elapsed time (kept ticking)."""
        if not self.enabled:
            return
        with self._lock:
            self._polled = (run, elapsed, self._clock())
            self.tick()
        if self._ticker is None:
            self._stop.clear()
            self._ticker = threading.Thread(
                target=self._tick_until_stopped, name="report-gateway-progress", daemon=True
            )
            self._ticker.start()

    def tick(self) -> None:
        """Redraw the waiting line with the time elapsed since the last poll added."""
        with self._lock:
            if self._polled is None:
                return
            run, elapsed, at = self._polled
            elapsed += max(0.0, self._clock() - at)
            self._draw(
                f"{run.provider} run {run.id}: {status_text(run)}, {format_seconds(elapsed)}"
            )

    def _tick_until_stopped(self) -> None:
        while not self._stop.wait(_TICK):
            self.tick()

    def _stop_ticker(self) -> None:
        ticker = self._ticker
        with self._lock:
            self._polled = None
        if ticker is not None:
            self._stop.set()
            if ticker is not threading.current_thread():
                ticker.join()
            self._ticker = None

    # -- downloading -----------------------------------------------------------------------

    def start_download(
        self, run: ReportRun | None = None, *, unzip: bool = False, raw: bool = False
    ) -> None:
        """Begin a download line; ``run`` (with ``unzip``/``raw``) tells whether a
        conversion step follows the transfer, to be shown as its own state."""
        self._stop_ticker()
        self._started = self._clock()
        self._last_draw = 0.0
        self._received = 0
        self._conversion = None
        result = run.result if run is not None else None
        if result is not None:
            from report_gateway.models import CONTENT_TSV_UTF16, CONTENT_ZIP

            if result.content_type == CONTENT_TSV_UTF16 and not raw:
                self._conversion = "converting UTF-16 TSV to UTF-8 CSV"
            elif result.content_type == CONTENT_ZIP and unzip:
                self._conversion = "unpacking the ZIP to its CSV"

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
        if done and self._conversion:
            text = f"downloaded {format_bytes(received)}; {self._conversion}..."
        self._draw(text)

    def downloaded(self, size: int, path: str) -> None:
        """The closing line: bytes received (before any unzip or UTF-16 conversion) and kept."""
        elapsed = max(self._clock() - self._started, 1e-6)
        received = self._received or size
        self.finish(
            f"downloaded {format_bytes(received)} in {format_seconds(elapsed)} "
            f"({format_bytes(received / elapsed)}/s); wrote {path} ({format_bytes(size)})"
        )
