"""An exception sheet's rows, made a column at a time (``flows/sheetrows.py``), read back as a
reviewer's spreadsheet reads them: each cell is what ``row_values`` says the row shows, typed as
openpyxl would have written it cell by cell — text as text (a formula-like start marked as text),
numbers as numbers, money in yuan with its format, an empty text as an empty cell, nothing where
there is no value — across the slices the rows are made in, with the total row after them."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook

from flows import sheetrows
from flows.words import label, outcome_label
from flows.workbook import COLUMNS, MONEY_COLUMNS, REVIEWER_COLUMNS, prepared, row_values, write_workbook
from reconcile.codes import Outcome
from tests.test_workbook import NAMES, SUMMARY

ROWS = pl.DataFrame(
    [
        # key, status, earlier, channel, contract, inst, txn, amount, held, account, zh, en, action, file, line, age
        ("k01", "OPEN", None, "alipay", "C1", 3, "T1", 93_333, 5_000, "13812345678", "收到 933.33 元", "got",
         "退款 / refund", "a.csv", 7, 0),
        ("k02", "OPEN", "REFUNDED", "icbc", None, None, None, None, None, None, None, None, None, None, None, None),
        ("k03", "RESOLVED", None, "newbank", "=1+2", 1, "+86 100", -5, 0, "ab@example.com", "-减", "@x",
         "=SUM(A1) / =SUM(A1)", "<b>&amp;.csv", 1, 41),
        ("k04", "OPEN", None, "alipay", " C4 ", 12, "\tT4", 100_000_000_00, 1, "", " 前后空格 ", " both ", "",
         "f.csv", 2, 3),
        ("k05", "OPEN", None, "alipay", "C5", 1, "T5", 1_050, 10, "62220212345678901234", "文件原因：header missing",
         "e", "核对", "f.csv", 3, 1),
    ],
    schema={
        "exception_key": pl.String, "status": pl.String, "earlier_resolution": pl.String, "channel": pl.String,
        "contract_no": pl.String, "installment_no": pl.Int64, "channel_txn_id": pl.String, "amount_fen": pl.Int64,
        "held_fen": pl.Int64, "account_masked": pl.String, "explanation_zh": pl.String,
        "explanation_en": pl.String, "suggested_action": pl.String, "source_file": pl.String, "line_no": pl.Int64,
        "age_days": pl.Int64,
    },
    orient="row",
).with_columns(
    outcome=pl.lit("UNMATCHED_DEBIT"),
    severity=pl.lit("HIGH"),
    business_date=pl.lit("2026-11-27"),
    instruction_id=pl.col("channel_txn_id"),
    facts=pl.when(pl.col("exception_key") == "k02").then(None).otherwise(pl.lit("1|2|a&b")),
)  # fmt: skip


def _shown(value: object) -> object:
    """A value as a spreadsheet reads back what ``row_values`` shows: an empty text is no value."""
    if value == "":
        return None
    if isinstance(value, Decimal):
        return float(value)
    return value


@pytest.mark.parametrize("language", ["zh", "en"])
def test_each_cell_is_what_the_row_shows(tmp_path: Path, language: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sheetrows, "SLICE_ROWS", 2)  # three slices of five rows
    path = write_workbook(tmp_path / "recon_20261127_r1.xlsx", SUMMARY, ROWS, language, NAMES)
    sheet = load_workbook(path)[outcome_label(Outcome.UNMATCHED_DEBIT, language)]
    expected = [row_values(r, language, NAMES) for r in prepared(ROWS).sort("exception_key").to_dicts()]
    assert sheet.max_row == len(expected) + 2
    risky = ("=", "+", "-", "@", "\t", "\r")
    for row, values in enumerate(expected, start=2):
        for index, name in enumerate(COLUMNS, start=1):
            cell = sheet.cell(row, index)
            if name in REVIEWER_COLUMNS:
                assert cell.value is None and not cell.has_style, (row, name)
                continue
            want = _shown(values[name])
            got = round(cell.value, 2) if isinstance(cell.value, float) else cell.value
            assert got == want, (row, name, got, want)
            if name in MONEY_COLUMNS:
                assert cell.number_format == "#,##0.00", (row, name)
            quoted = isinstance(want, str) and want.startswith(risky)
            assert cell.quotePrefix == quoted and (cell.data_type == "s") == isinstance(want, str), (row, name)
    total = len(expected) + 2
    assert sheet.cell(total, 1).value == f"{label('total', language)} 5" and sheet.cell(total, 1).font.b
    amount = sheet.cell(total, COLUMNS.index("amount_yuan") + 1)
    assert round(amount.value, 2) == round(sum(ROWS["amount_fen"].drop_nulls()) / 100, 2) and amount.font.b
    assert amount.number_format == "#,##0.00"


def test_rows_keep_their_numbers_across_slices() -> None:
    looks = sheetrows.Looks(risky=1, money=2, bold=3, bold_money=4)
    cells = pl.DataFrame({"a": ["x", None, "", "y&<z>"], "n": [1, None, 3, 4]})
    rows = sheetrows.SheetRows(columns=[("a", "text"), ("n", "int")], cells=cells, total="<row/>", sheet=None)
    made = [sheetrows.row_xml(rows, looks, 2 + start, cells.slice(start, 2)) for start in (0, 2)]
    assert "".join(made) == (
        '<row r="2"><c r="A2" t="inlineStr"><is><t>x</t></is></c><c r="B2" t="n"><v>1</v></c></row>'
        '<row r="3"></row>'
        '<row r="4"><c r="A4" t="inlineStr"/><c r="B4" t="n"><v>3</v></c></row>'
        '<row r="5"><c r="A5" t="inlineStr"><is><t>y&amp;&lt;z&gt;</t></is></c><c r="B5" t="n"><v>4</v></c></row>'
    )


@pytest.mark.parametrize(
    ("fen", "text"),
    [(0, "0"), (5_000, "50"), (93_333, "933.33"), (93_330, "933.3"), (-5, "-0.05"), (100_000_000_00, "100000000"),
     (1_050, "10.5"), (None, None)],
)  # fmt: skip
def test_money_is_written_as_a_decimal_prints_it(fen: int | None, text: str | None) -> None:
    assert pl.select(sheetrows.yuan_number_text(pl.lit(fen, pl.Int64))).item() == text
    if fen is not None:
        assert f"{float(Decimal(fen).scaleb(-2)):.16g}" == text  # what openpyxl writes for a Decimal
