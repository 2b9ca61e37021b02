"""Where flow cassettes live and how vcrpy is set up to write and to replay them.

Recording and replay agree on one thing that matters: requests are matched on method,
path, query and body (never on the host, whose port is random while recording, nor on
headers, which carry per-request idempotency keys). Each recorded response plays once, in
order, so a replayed ``wait`` sees the recorded statuses and polls exactly as often.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import vcr  # type: ignore[import-untyped]
from vcr.serializers import yamlserializer  # type: ignore[import-untyped]

from .scrubbing import PLACEHOLDER, SECRET_REQUEST_HEADERS, Scrubber

__all__ = [
    "CASSETTES",
    "MATCH_ON",
    "REPO",
    "cassette_path",
    "recording_vcr",
    "replay_vcr",
]

REPO = Path(__file__).resolve().parents[2]
CASSETTES = REPO / "tests" / "cassettes"
MATCH_ON = ("method", "path", "query", "body")
SERIALIZER = "flow-yaml"


def cassette_path(provider: str, flow: str) -> Path:
    return CASSETTES / provider / "flows" / f"{flow}.yaml"


class _HeaderedYaml:
    """vcrpy's YAML with a first comment line saying where the recording came from."""

    def __init__(self, header: str) -> None:
        self.header = header

    def serialize(self, cassette_dict: dict[str, Any]) -> str:
        return f"# {self.header}\n{yamlserializer.serialize(cassette_dict)}"

    @staticmethod
    def deserialize(cassette_string: str) -> Any:
        return yamlserializer.deserialize(cassette_string)


def record_header(source: str, today: dt.date | None = None) -> str:
    day = (today or dt.datetime.now(dt.UTC).date()).isoformat()
    return f"recorded from {source} by `nox -s record` on {day}; never edit by hand"


def recording_vcr(scrubber: Scrubber, *, source: str) -> vcr.VCR:
    """A VCR that overwrites a cassette with what the flow really sends and receives."""
    recorder = vcr.VCR(
        record_mode="all",
        decode_compressed_response=True,
        match_on=MATCH_ON,
        filter_headers=[(name, PLACEHOLDER) for name in SECRET_REQUEST_HEADERS]
        + [("Cookie", None)],
        before_record_request=scrubber.before_record_request,
        before_record_response=scrubber.before_record_response,
        serializer=SERIALIZER,
    )
    recorder.register_serializer(SERIALIZER, _HeaderedYaml(record_header(source)))
    return recorder


def replay_vcr() -> vcr.VCR:
    """A VCR that only plays back: an unrecorded request fails the test."""
    return vcr.VCR(
        record_mode="none",
        decode_compressed_response=True,
        match_on=MATCH_ON,
    )
