"""How a figure is measured: alternating pairs, a ratio per pair, median and spread.

A pair is one run of the subject and one of its baseline, back to back, each in a fresh
process that does its setup (imports, client, the run fetched), then sleeps the same idle
time, then times only its transfer or parse. The ratio is taken inside the pair, so both
sides share whatever the machine was doing at that moment; the headline is the median of
the pairs' ratios, and the spread (min-max) says how much to trust it. Which side goes
first alternates from pair to pair (A B, B A, ...): on this machine kind every other
large page-cache write can be slower, and a fixed order would hand that to one side.
There is no ``os.sync()`` and no best-of-N: a user's machine does neither.

``BusyLoad`` is the "busy machine" condition: ``tests.bench.busy`` running beside the pairs.
"""

from __future__ import annotations

import dataclasses
import statistics
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

Sample = dict[str, Any]


@dataclasses.dataclass
class Pairs:
    """Samples per contender, index-aligned: ``samples[name][i]`` is from pair (round) i."""

    samples: dict[str, list[Sample]]

    def values(self, name: str, key: str = "seconds") -> list[float]:
        return [float(s[key]) for s in self.samples[name]]

    def median(self, name: str, key: str = "seconds") -> float:
        return statistics.median(self.values(name, key))

    def ratios(self, subject: str, baseline: str, *, key: str = "seconds") -> list[float]:
        """Subject speed over baseline speed per pair (>1: the subject was faster)."""
        return [
            float(b[key]) / float(s[key])
            for s, b in zip(self.samples[subject], self.samples[baseline], strict=True)
        ]


def alternate(contenders: Mapping[str, Callable[[], Sample]], pairs: int) -> Pairs:
    """Run every contender once per round, ``pairs`` rounds, rotating who goes first."""
    names = list(contenders)
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for index in range(pairs):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(contenders[name]())
    return Pairs(samples)


def summary(ratios: Sequence[float]) -> tuple[float, str]:
    """The median ratio and its spread as text: ``1.02 (0.97-1.10, n=5)``."""
    middle = statistics.median(ratios)
    return middle, f"{middle:.2f} ({min(ratios):.2f}-{max(ratios):.2f}, n={len(ratios)})"


class BusyLoad:
    """``with BusyLoad(folder, alloc, file_bytes, seconds):`` another process allocating
    and writing gigabytes until the block ends (or ``seconds`` pass, whichever is first)."""

    def __init__(self, folder: Path, alloc: int, file_bytes: int, seconds: float) -> None:
        self._args = [str(folder), str(alloc), str(file_bytes), str(seconds)]
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> BusyLoad:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.busy", *self._args],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        if self._proc.stdout.readline().strip() != "busy":
            self._proc.kill()
            self._proc.wait()
            raise RuntimeError("busy load did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is not None and proc.returncode != 0 and exc is None:
            raise RuntimeError(f"busy load exited early with {proc.returncode}")
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
