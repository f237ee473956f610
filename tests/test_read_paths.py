"""The reader's shortcuts for clean files give exactly what its general path gives.

A file whose cells hold no padding is not stripped, amounts that are all plain yuan skip the
cleaning, a file without repeated keys skips the exact duplicate check, and times are localised by
one offset when the zone keeps one over the file's span. Each test feeds the general path too (a
padded cell, a decorated amount, a repeat, a daylight-saving change) and compares.
"""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.config import load_channel_config
from reconcile import synthetic as syn
from reconcile.ingest import ParsedFile, _repeated, parse_channel_file
from reconcile.settings import settings_from_mapping
from reconcile.timezones import local_to_utc

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 40, seed=11)
REPAID = LINES.filter((pl.col("status") == "SUCCESS") & (pl.col("kind") == "debit"))
CLEAN = syn.offline_repayments_file(REPAID).decode("utf-8").split("\n")
RECORD = ["record_kind", "status", "channel_txn_id", "memo", "amount_fen", "settled_at"]


def read(lines: list[str]) -> ParsedFile:
    channel = SETTINGS.channels["offline"]
    data = "\n".join(lines).encode("utf-8")
    return parse_channel_file(
        "offline_20261127.csv", data, "0" * 64, channel, SETTINGS.layouts["offline_repayments"], DAY
    )


def with_cell(line_no: int, column: int, text: str) -> list[str]:
    """The clean file with one cell (0-based column) of one line (1-based) rewritten."""
    lines = list(CLEAN)
    cells = lines[line_no - 1].split(",")
    cells[column] = text
    lines[line_no - 1] = ",".join(cells)
    return lines


def test_the_clean_file_reads_without_a_bad_line() -> None:
    parsed = read(CLEAN)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    assert parsed.records.height == REPAID.height > 10


@pytest.mark.parametrize(
    "padded",
    [" {}", "{} ", "\t{}", "{}\t", "\u3000{}", '"{}"', "\ufeff{}"],
    ids=["space before", "space after", "tab before", "tab after", "ideographic space", "quotes", "bom"],
)
def test_one_padded_cell_anywhere_makes_the_reader_strip(padded: str) -> None:
    clean = read(CLEAN).records.select(RECORD)
    for line_no, column in [(2, 3), (len(REPAID) + 1, 2), (5, 0)]:  # contract, txn id, a cell nobody reads
        cell = CLEAN[line_no - 1].split(",")[column]
        parsed = read(with_cell(line_no, column, padded.format(cell)))
        assert parsed.invalid.height == 0, parsed.invalid.to_dicts()
        assert parsed.records.select(RECORD).equals(clean)


def test_a_cell_left_empty_by_its_padding_is_blank() -> None:
    parsed = read(with_cell(3, 3, " \t "))  # the contract cell of line 3 holds only padding
    memo = parsed.records.filter(pl.col("line_no") == 3)["memo"]
    assert memo.to_list() == [None]


def test_one_decorated_amount_gives_the_same_fen_as_plain_text() -> None:
    clean = read(CLEAN).records.select(RECORD)
    amount = CLEAN[1].split(",")[4]
    whole, _, fraction = amount.partition(".")
    for dressed in [f"¥{amount}", f"￥{int(whole):,}.{fraction}", f"{amount}元"]:
        parsed = read(with_cell(2, 4, dressed))
        assert parsed.invalid.height == 0, (dressed, parsed.invalid.to_dicts())
        assert parsed.records.select(RECORD).equals(clean)


def test_a_line_with_one_field_more_or_less_is_counted_exactly() -> None:
    lines = list(CLEAN)
    lines[2] = lines[2] + ","  # an empty ninth field
    lines[4] = lines[4].rsplit(",", 1)[0]  # the last field gone
    parsed = read(lines)
    assert parsed.invalid.select("line_no", "check", "message").rows() == [
        (3, "field_count", "9 fields where the layout has 8"),
        (5, "field_count", "7 fields where the layout has 8"),
    ]
    assert parsed.records.height == REPAID.height - 2


def test_a_repeated_line_is_a_duplicate_and_the_first_stays() -> None:
    lines = [*CLEAN[:3], CLEAN[2], *CLEAN[3:]]
    parsed = read(lines)
    assert parsed.invalid.select("line_no", "check").rows() == [(4, "duplicate_record")]
    assert parsed.records.height == REPAID.height


keys = st.lists(
    st.tuples(
        st.sampled_from(["debit", "refund"]), st.sampled_from(["T1", "T2", "T3", None]), st.sampled_from(["R1", None])
    ),
    max_size=12,
)


@given(keys)
def test_repeated_rows_are_exactly_the_later_copies_of_a_key(rows: list[tuple[str, str | None, str | None]]) -> None:
    frame = pl.DataFrame(rows, schema=["record_kind", "channel_txn_id", "refund_request_no"], orient="row")
    for key in (list(frame.columns), ["channel_txn_id", "record_kind", "refund_request_no"]):
        expected = frame.with_row_index().filter(~pl.struct(key).is_first_distinct())
        assert _repeated(frame.with_row_index(), key).equals(expected)


ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/New_York"]


@settings(max_examples=150, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.datetimes(min_value=dt.datetime(1985, 1, 1), max_value=dt.datetime(2030, 12, 31)),
    seconds=st.lists(st.integers(min_value=0, max_value=3 * 86_400), min_size=1, max_size=30),
)
def test_localising_by_one_offset_agrees_with_the_zone_rules(zone: str, start: dt.datetime, seconds: list[int]) -> None:
    """Spans of up to three days, anywhere from 1985 (Shanghai kept summer time 1986–1991)."""
    naive = pl.Series("t", [start + dt.timedelta(seconds=s) for s in seconds], pl.Datetime("us"))
    by_rules = naive.dt.replace_time_zone(zone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")
    assert local_to_utc(naive, zone).equals(by_rules)


def test_localising_around_a_summer_time_change_uses_the_rules() -> None:
    naive = pl.Series(
        "t", [dt.datetime(2026, 3, 29, 1, 30), dt.datetime(2026, 3, 29, 2, 30), dt.datetime(2026, 3, 29, 3, 30)]
    )
    assert local_to_utc(naive, "Europe/Berlin").to_list() == [
        dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC),
        None,  # 02:30 did not happen in Berlin that night
        dt.datetime(2026, 3, 29, 1, 30, tzinfo=dt.UTC),
    ]


def test_a_space_beside_a_pipe_is_padding_too() -> None:
    channel = SETTINGS.channels["icbc"]
    layout = SETTINGS.layouts["bank_pipe_v1"]
    debits = LINES.filter(pl.col("kind") == "debit")
    text = syn.bank_result_file(DAY, debits).decode("gb18030")
    lines = text.split("\r\n") if "\r\n" in text else text.split("\n")
    cells = lines[1].split("|")
    cells[2] = cells[2] + " "  # the instruction id, padded before its pipe
    padded = "\n".join([lines[0], "|".join(cells), *lines[2:]]).encode("gb18030")

    def read_bank(data: bytes) -> pl.DataFrame:
        parsed = parse_channel_file("icbc_result_20261127.txt", data, "0" * 64, channel, layout, DAY)
        assert parsed.rejected_reason is None and parsed.invalid.height == 0
        return parsed.records.select([*RECORD, "reference"])

    assert read_bank(padded).equals(read_bank("\n".join(lines).encode("gb18030")))


def test_blank_and_whitespace_lines_are_no_lines_at_all() -> None:
    lines = [*CLEAN[:3], "", *CLEAN[3:6], "  \t ", *CLEAN[6:], "", ""]
    parsed = read(lines)
    assert parsed.invalid.height == 0, parsed.invalid.to_dicts()
    assert parsed.records.select(RECORD).equals(read(CLEAN).records.select(RECORD))


def test_times_that_state_their_offset_are_only_converted() -> None:
    stated = pl.Series(["2026-11-27 08:00:00+0800", "2026-11-27 01:00:00+0100"]).str.to_datetime("%Y-%m-%d %H:%M:%S%z")
    assert local_to_utc(stated, "Asia/Shanghai").to_list() == [
        dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 27, 0, 0, tzinfo=dt.UTC),
    ]


def test_bad_lines_read_in_a_later_chunk_are_reported_not_a_crash() -> None:
    """polars reads a file in chunks; a filter can leave a column whose first chunk is empty, on
    which ``pl.format`` panicked (polars 2.1). The shipped sample's bank file has its bad times in
    the second chunk."""
    from pathlib import Path

    channel = SETTINGS.channels["icbc"]
    path = (
        Path(__file__).resolve().parents[1]
        / "sample_data"
        / "demo"
        / "inbox"
        / "2026-11-27"
        / "icbc_result_20261127.txt"
    )
    parsed = parse_channel_file(path.name, path.read_bytes(), "0" * 64, channel, SETTINGS.layouts["bank_pipe_v1"], DAY)
    assert parsed.rejected_reason is None
    assert parsed.invalid.select("line_no", "check").rows() == [(115, "parse"), (139, "parse")]
    assert parsed.invalid["message"][0] == "settled_at: 20261399250000 is not a time of the form %Y%m%d%H%M%S"


@given(st.lists(st.booleans(), max_size=30))
def test_keeping_rows_by_slice_or_filter_gives_the_filter(mask: list[bool]) -> None:
    from reconcile.reader.lines import keep_rows

    body = pl.DataFrame(
        {"line_no": list(range(1, len(mask) + 1)), "_usual": mask}, schema={"line_no": pl.Int64, "_usual": pl.Boolean}
    )
    assert keep_rows(body, "_usual").equals(body.filter(pl.col("_usual")))
