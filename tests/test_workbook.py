from __future__ import annotations

from pathlib import Path

import polars as pl
from openpyxl import load_workbook

from flows.workbook import display_width, write_workbook

SUMMARY = {
    "business_date": "2026-11-27",
    "run_id": "r1",
    "records": 2,
    "fen": {"received": 100, "applied": 60, "held": 40, "reversed": 0, "unapplied": 0, "released": 0},
    "balanced": True,
    "outcomes": {"MATCHED": 1, "UNMATCHED_DEBIT": 1},
    "files": [],
}


def exceptions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "exception_key": ["UNMATCHED_DEBIT|alipay|x"],
            "outcome": ["UNMATCHED_DEBIT"],
            "severity": ["HIGH"],
            "business_date": ["2026-11-27"],
            "age_days": [0],
            "status": ["OPEN"],
            "channel": ["alipay"],
            "contract_no": [None],
            "installment_no": [None],
            "instruction_id": ["=HYPERLINK(1)"],
            "channel_txn_id": ["T1"],
            "amount_fen": [40],
            "held_fen": [40],
            "account_masked": ["6222021234561234"],
            "explanation_zh": ["说明"],
            "explanation_en": ["text"],
            "suggested_action": ["-act"],
            "source_file": ["f.csv"],
            "line_no": [5],
        }
    )


def test_workbook_masks_accounts_neutralises_formulas_and_shows_yuan(tmp_path: Path) -> None:
    path = write_workbook(tmp_path / "r.xlsx", SUMMARY, exceptions())
    book = load_workbook(path)
    assert book.sheetnames == ["总览", "无法匹配"]
    sheet = book["无法匹配"]
    values = [cell.value for cell in sheet[2]]
    assert "622202******1234" in values and "6222021234561234" not in values
    assert "0.40" in values
    risky = [cell for cell in sheet[2] if isinstance(cell.value, str) and cell.value.startswith(("=", "-"))]
    assert risky and all(cell.data_type == "s" and cell.quotePrefix for cell in risky)
    assert sheet.freeze_panes == "A2" and sheet.auto_filter.ref.startswith("A1")
    assert sheet.data_validations.dataValidation[0].sqref is not None
    summary = {row[0].value: row[1].value for row in book["总览"].iter_rows(min_row=2) if row[0].value}
    assert summary["实收金额(元)"] == "1.00" and summary["挂账金额(元)"] == "0.40"
    assert not list(tmp_path.glob(".*partial"))


def test_chinese_characters_count_double_for_column_width() -> None:
    assert display_width("张三ab") == 6


def test_low_severity_exceptions_are_counted_on_the_summary_and_listed_in_csv(tmp_path: Path) -> None:
    rows = pl.concat(
        [
            exceptions(),
            exceptions().with_columns(
                exception_key=pl.lit("DEBIT_FAILED|icbc|y"), outcome=pl.lit("DEBIT_FAILED"), severity=pl.lit("LOW")
            ),
        ]
    )
    path = write_workbook(tmp_path / "r.xlsx", SUMMARY, rows)
    book = load_workbook(path)
    assert "扣款失败" not in book.sheetnames
    summary = {row[0].value: row[1].value for row in book["总览"].iter_rows(min_row=2) if row[0].value}
    assert summary["扣款失败 DEBIT_FAILED"] == "1 / 0.40"
    detail = pl.read_csv(tmp_path / "r.detail.csv")
    assert sorted(detail["outcome"].to_list()) == ["DEBIT_FAILED", "UNMATCHED_DEBIT"]
    assert "6222021234561234" not in (tmp_path / "r.detail.csv").read_text(encoding="utf-8")
