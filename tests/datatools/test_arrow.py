"""``to_arrow`` and friends: typed by the provider's schema, strings otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pytest
from report_gateway import Gateway, ReportRun, RunStatus, tabular
from report_gateway.errors import IntegrityError, ResultFormatError


class FakeDriver:
    def __init__(self, columns: Mapping[str, str] | None) -> None:
        self.columns = columns

    def result_columns(self, run: ReportRun) -> Mapping[str, str] | None:
        return self.columns


class FakeGateway:
    """What the data tools use of a Gateway: its driver, scrub and rows; rows counted as
    they are pulled, so a test can see how far ahead of the batches the reading runs."""

    def __init__(
        self,
        rows: list[dict[str, str]],
        columns: Mapping[str, str] | None = None,
        fail_after: int | None = None,
    ) -> None:
        self._rows = rows
        self._driver = FakeDriver(columns)
        self.fail_after = fail_after
        self.pulled = 0

    def driver(self, provider: str) -> Any:
        return self._driver

    def scrub(self, text: str) -> str:
        return text

    def rows(self, run: ReportRun, **_: Any) -> Iterator[dict[str, str]]:
        for row in self._rows:
            if self.fail_after is not None and self.pulled >= self.fail_after:
                raise IntegrityError("example run r_1 result: the connection was cut")
            self.pulled += 1
            yield row


RUN = ReportRun(provider="example", id="r_1", report_id="x", status=RunStatus.SUCCEEDED,
                raw_status="done")  # fmt: skip

ROWS = [
    {"id": "a", "n": "1", "amount": "1.50", "ok": "true", "at": "2025-01-02 03:04:05",
     "day": "2025-01-02", "note": ""},
    {"id": "b", "n": "", "amount": "-2", "ok": "false", "at": "2025-01-03T00:00:00Z",
     "day": "", "note": "x"},
]  # fmt: skip
SCHEMA = {"n": "integer", "amount": "number", "ok": "boolean", "at": "timestamp",
          "day": "date"}  # fmt: skip


def as_gateway(fake: FakeGateway) -> Gateway:
    return fake  # type: ignore[return-value]


def test_columns_are_typed_by_the_providers_schema() -> None:
    table = tabular.to_arrow(as_gateway(FakeGateway(ROWS[:1], SCHEMA)), RUN)
    assert table.schema.field("n").type == pa.int64()
    assert table.schema.field("amount").type == pa.float64()
    assert table.schema.field("ok").type == pa.bool_()
    assert table.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("day").type == pa.date32()
    assert table.schema.field("id").type == pa.string()  # not in the schema: text
    row = table.to_pylist()[0]
    assert row["n"] == 1
    assert row["amount"] == 1.5
    assert row["ok"] is True
    assert row["at"].isoformat() == "2025-01-02T03:04:05+00:00"
    assert row["note"] == ""  # an empty text cell stays text


def test_empty_typed_cells_are_null_and_offsets_are_read() -> None:
    table = tabular.to_arrow(as_gateway(FakeGateway(ROWS[1:], SCHEMA)), RUN)
    row = table.to_pylist()[0]
    assert row["n"] is None
    assert row["day"] is None
    assert row["at"].isoformat() == "2025-01-03T00:00:00+00:00"


def test_without_a_schema_every_column_is_text() -> None:
    table = tabular.to_arrow(as_gateway(FakeGateway(ROWS)), RUN)
    assert set(table.schema.types) == {pa.string()}
    assert table.column("n").to_pylist() == ["1", ""]


def test_types_override_and_typed_false() -> None:
    fake = as_gateway(FakeGateway(ROWS, SCHEMA))
    assert (
        tabular.to_arrow(fake, RUN, types={"id": "string", "n": "number"}).schema.field("n").type
        == pa.float64()
    )
    assert set(tabular.to_arrow(fake, RUN, typed=False).schema.types) == {pa.string()}


def test_a_cell_that_is_not_its_type_names_the_column() -> None:
    rows = [{"n": "12"}, {"n": "twelve"}]
    with pytest.raises(ResultFormatError, match="'n' is typed integer"):
        tabular.to_arrow(as_gateway(FakeGateway(rows, {"n": "integer"})), RUN)


def test_cells_beyond_the_header_are_refused_not_dropped() -> None:
    rows = [{"a": "1"}, {"a": "2", "_extra_1": "3"}]
    with pytest.raises(ResultFormatError, match="row 2 has cells beyond the header"):
        tabular.to_arrow(as_gateway(FakeGateway(rows)), RUN)


def test_an_unknown_type_name_is_refused_before_any_request() -> None:
    fake = FakeGateway(ROWS, SCHEMA, fail_after=0)  # any row read would raise IntegrityError
    with pytest.raises(ValueError, match=r"'b': 'int'.*string, integer, number"):
        tabular.to_arrow(as_gateway(fake), RUN, types={"b": "int"})
    with pytest.raises(ValueError, match=r"'int'"):
        tabular.iter_batches(as_gateway(fake), RUN, types={"b": "int"})
    assert fake.pulled == 0


def test_a_users_type_that_fails_names_types_not_the_schema() -> None:
    rows = [{"n": "12"}, {"n": "twelve"}]
    with pytest.raises(tabular.ColumnTypeError, match=r"by types=\{'n': 'integer'\}") as caught:
        tabular.to_arrow(as_gateway(FakeGateway(rows)), RUN, types={"n": "integer"})
    assert "schema" not in str(caught.value)
    assert "typed=False" not in str(caught.value)
    assert caught.value.by_schema is False


def test_a_first_row_with_extra_cells_is_the_row_named() -> None:
    rows = [{"a": "1", "_extra_1": "3"}, {"a": "2"}]
    with pytest.raises(ResultFormatError, match=r"row 1 has cells beyond the header \(_extra_1\)"):
        tabular.to_arrow(as_gateway(FakeGateway(rows)), RUN)


def test_no_rows_keeps_the_schemas_columns() -> None:
    table = tabular.to_arrow(as_gateway(FakeGateway([], {"n": "integer"})), RUN)
    assert table.num_rows == 0
    assert table.schema.field("n").type == pa.int64()


def test_batches_are_bounded_and_read_lazily() -> None:
    rows = [{"i": str(i)} for i in range(1000)]
    fake = FakeGateway(rows, {"i": "integer"})
    batches = tabular.iter_batches(as_gateway(fake), RUN, batch_rows=128)
    first = next(batches)
    assert first.num_rows == 128
    assert fake.pulled == 128  # nothing read ahead of the batch handed out
    sizes = [first.num_rows, *(b.num_rows for b in batches)]
    assert sizes == [128] * 7 + [104]


def test_stripe_v2_columns_come_from_result_file_schema(
    gateway: Gateway, finished: Callable[[str], ReportRun]
) -> None:
    run = finished("stripe-v2")
    table = gateway.to_arrow(run)
    assert table.num_rows == 300
    assert table.schema.field("net_amount").type == pa.float64()
    assert table.schema.field("currency").type == pa.string()
    assert table.num_rows == len(list(gateway.rows(run)))


@pytest.mark.parametrize("provider", ["stripe", "zuora"])
def test_providers_without_types_give_text(
    provider: str, gateway: Gateway, finished: Callable[[str], ReportRun]
) -> None:
    run = finished(provider)
    table = gateway.to_arrow(run)
    assert set(table.schema.types) == {pa.string()}
    assert table.to_pylist() == list(gateway.rows(run))


def test_pandas_and_polars_frames(gateway: Gateway, finished: Callable[[str], ReportRun]) -> None:
    run = finished("stripe-v2")
    frame = tabular.to_pandas(gateway, run)
    assert len(frame) == 300
    assert str(frame["net_amount"].dtype) == "float64"
    polars_frame = tabular.to_polars(gateway, run)
    assert polars_frame.height == 300
    assert str(polars_frame.schema["net_amount"]) == "Float64"
