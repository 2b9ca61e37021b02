"""The one results table: every figure beside its baseline, the ratio and the target."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass
class Row:
    """One line of the table. ``ok`` None means informational (no target)."""

    item: str
    figure: str
    baseline: str
    ratio: str
    target: str
    ok: bool | None

    @property
    def verdict(self) -> str:
        if self.ok is None:
            return "info"
        return "PASS" if self.ok else "MISS"


HEADERS = ("#", "benchmark", "figure", "baseline", "ratio", "target", "result")


def render(rows: Sequence[tuple[str, Row]]) -> str:
    """A fixed-width table; ``rows`` pairs each row with its benchmark number."""
    cells = [HEADERS] + [
        (num, r.item, r.figure, r.baseline, r.ratio, r.target, r.verdict) for num, r in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(HEADERS))]
    rule = "+".join("-" * (w + 2) for w in widths)
    out = []
    for index, line in enumerate(cells):
        out.append("|".join(f" {c:<{w}} " for c, w in zip(line, widths)).rstrip())
        if index == 0:
            out.append(rule)
    return "\n".join(out)
