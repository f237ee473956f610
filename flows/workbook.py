"""The finance workbook (openpyxl, write-only): a summary that ties out to the fen, one sheet per
exception type, money in yuan, frozen headers, filters, a resolution drop-down, PII masked, and no
cell a spreadsheet could execute. Written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.worksheet.datavalidation import DataValidation

from flows.faults import checkpoint
from reconcile.codes import OUTCOME_ZH, Outcome
from reconcile.masking import mask_account, mask_account_expr
from reconcile.money import fen_expr_to_yuan_text, fen_to_yuan_text
from reconcile.text import printable_text

RESOLUTIONS = ("REFUNDED", "APPLIED_MANUALLY", "CHANNEL_CORRECTED", "WRITTEN_OFF", "NO_ACTION", "OTHER")
HEADERS = {
    "zh": ["异常键", "业务日期", "账龄(天)", "状态", "严重度", "渠道", "合同号", "期次", "指令号", "渠道流水号",
           "金额(元)", "挂账(元)", "账户(脱敏)", "说明", "建议操作", "文件", "行号", "处理结果", "处理说明"],
    "en": ["exception key", "business date", "age (days)", "status", "severity", "channel", "contract",
           "installment", "instruction", "channel txn", "amount (yuan)", "held (yuan)", "account (masked)",
           "explanation", "suggested action", "file", "line", "resolution", "resolution note"],
}  # fmt: skip
RESOLUTION_COLUMN = "R"
_RISKY_START = ("=", "+", "-", "@", "\t", "\r")
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: East Asian wide characters count as two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _cell(sheet: Any, value: Any, bold: bool = False) -> WriteOnlyCell:
    cell = WriteOnlyCell(sheet, value=value)
    if _risky(value):
        cell.data_type = "s"
        cell.quotePrefix = True
    if bold:
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
    return cell


def _yuan(fen: int | None) -> str:
    return "" if fen is None else fen_to_yuan_text(int(fen))


def write_workbook(path: Path, summary: dict[str, Any], exceptions: pl.DataFrame, language: str = "zh") -> Path:
    """Write the workbook for a run; returns the final path (complete only once it exists).

    Exceptions a person must act on (severity MEDIUM and HIGH) get a sheet per type; the LOW ones
    (failed debits to retry, partial and late payments) are counted on the summary sheet and listed
    in full in a CSV beside the workbook (``….detail.csv``), which costs a fraction of xlsx rows.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # a control character in any text (an id, a memo quoted in an explanation) is refused by a cell
    exceptions = exceptions.with_columns(
        [printable_text(c).alias(c) for c, t in exceptions.schema.items() if t == pl.String]
    )
    actionable = exceptions.filter(pl.col("severity") != "LOW")
    informational = exceptions.filter(pl.col("severity") == "LOW")
    detail = path.with_name(path.stem + ".detail.csv")
    _write_detail_csv(detail, exceptions)
    partial = path.with_name(f".{path.name}.partial")
    book = Workbook(write_only=True)
    _summary_sheet(book, summary, language, informational, detail.name)
    for code in Outcome:
        rows = actionable.filter(pl.col("outcome") == code.value)
        if rows.height:
            _exception_sheet(book, code, rows, language)
    book.save(partial)
    checkpoint("workbook_saved")
    os.replace(partial, path)
    return path


def _write_detail_csv(path: Path, exceptions: pl.DataFrame) -> None:
    """Every exception, accounts masked, amounts in yuan; written whole, then renamed."""
    partial = path.with_name(f".{path.name}.partial")
    risky = r"^[=+\-@\t\r]"
    exceptions.with_columns(account_masked=mask_account_expr("account_masked")).with_columns(
        # a spreadsheet opening the CSV would run a cell starting with = + - @: quote it
        pl.col(pl.String).str.replace(risky, "'$0"),
    ).select(
        "exception_key", "business_date", "age_days", "status", "outcome", "severity", "channel", "contract_no",
        "installment_no", "instruction_id", "channel_txn_id",
        fen_expr_to_yuan_text(pl.col("amount_fen").fill_null(0)).alias("amount_yuan"),
        fen_expr_to_yuan_text(pl.col("held_fen").fill_null(0)).alias("held_yuan"),
        "account_masked", "explanation_zh", "explanation_en", "suggested_action", "source_file", "line_no",
    ).write_csv(partial)  # fmt: skip
    os.replace(partial, path)


def _summary_sheet(
    book: Workbook, summary: dict[str, Any], language: str, informational: pl.DataFrame, detail_name: str
) -> None:
    zh = language == "zh"
    sheet = book.create_sheet("总览" if zh else "Summary")
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 40
    sheet.freeze_panes = "A2"
    sheet.append([_cell(sheet, "项目" if zh else "item", True), _cell(sheet, "值" if zh else "value", True)])
    labels = {
        "received": ("实收金额(元)", "received (yuan)"),
        "applied": ("入账金额(元)", "applied (yuan)"),
        "held": ("挂账金额(元)", "held (yuan)"),
        "reversed": ("退款冲正(元)", "reversed (yuan)"),
        "unapplied": ("冲回入账(元)", "unapplied (yuan)"),
        "released": ("释放挂账(元)", "released (yuan)"),
    }
    for key, value in (
        ("业务日期" if zh else "business date", summary["business_date"]),
        ("运行号" if zh else "run id", summary["run_id"]),
        ("记录数" if zh else "records", summary["records"]),
    ):
        sheet.append([_cell(sheet, key), _cell(sheet, str(value))])
    for key, (label_zh, label_en) in labels.items():
        sheet.append([_cell(sheet, label_zh if zh else label_en), _cell(sheet, _yuan(summary["fen"][key]))])
    sheet.append(
        [
            _cell(sheet, "轧平" if zh else "balanced"),
            _cell(sheet, "是" if summary["balanced"] and zh else ("否" if zh else str(summary["balanced"]))),
        ]
    )
    sheet.append([])
    sheet.append([_cell(sheet, "结果" if zh else "outcome", True), _cell(sheet, "笔数" if zh else "count", True)])
    for code, count in summary["outcomes"].items():
        label = f"{OUTCOME_ZH[Outcome(code)]} {code}" if zh else code
        sheet.append([_cell(sheet, label), _cell(sheet, int(count))])
    sheet.append([])
    sheet.append(
        [
            _cell(sheet, "低风险异常(明细见 CSV)" if zh else "low-severity exceptions (detail in CSV)", True),
            _cell(sheet, detail_name, True),
        ]
    )
    by_outcome = informational.group_by("outcome").agg(pl.len(), pl.col("amount_fen").sum()).sort("outcome")
    for row in by_outcome.iter_rows(named=True):
        label = f"{OUTCOME_ZH[Outcome(row['outcome'])]} {row['outcome']}" if zh else row["outcome"]
        sheet.append([_cell(sheet, label), _cell(sheet, f"{row['len']} / {_yuan(row['amount_fen'])}")])
    sheet.append([])
    sheet.append([_cell(sheet, "文件" if zh else "file", True), _cell(sheet, "状态" if zh else "status", True)])
    for item in summary["files"]:
        said = "; ".join([item.get("reason") or "", *item.get("notes", [])]).strip("; ")
        sheet.append([_cell(sheet, item["name"]), _cell(sheet, f"{item['status']} {said}".strip())])


def _exception_sheet(book: Workbook, code: Outcome, rows: pl.DataFrame, language: str) -> None:
    zh = language == "zh"
    sheet = book.create_sheet(f"{OUTCOME_ZH[code]}" if zh else code.value[:31])
    headers = HEADERS["zh" if zh else "en"]
    records = rows.sort("exception_key").to_dicts()
    values = [
        [
            r["exception_key"],
            str(r["business_date"]),
            r["age_days"],
            r["status"],
            r["severity"],
            r["channel"] or "",
            r["contract_no"] or "",
            r["installment_no"] if r["installment_no"] is not None else "",
            r["instruction_id"] or "",
            r["channel_txn_id"] or "",
            _yuan(r["amount_fen"]),
            _yuan(r["held_fen"]),
            mask_account(r["account_masked"]) if r.get("account_masked") else "",
            r["explanation_zh"] if zh else r["explanation_en"],
            r["suggested_action"],
            r["source_file"] or "",
            r["line_no"] if r["line_no"] is not None else "",
            "",
            "",
        ]
        for r in records
    ]
    for index, header in enumerate(headers):
        longest = max([display_width(str(v[index])) for v in values[:200]] + [display_width(header)])
        sheet.column_dimensions[chr(ord("A") + index)].width = min(max(longest + 2, 8), 80)
    sheet.freeze_panes = "A2"
    last = len(values) + 1
    last_column = chr(ord("A") + len(headers) - 1)
    sheet.auto_filter.ref = f"A1:{last_column}{last}"
    choices = DataValidation(type="list", formula1='"' + ",".join(RESOLUTIONS) + '"', allow_blank=True)
    choices.add(f"{RESOLUTION_COLUMN}2:{RESOLUTION_COLUMN}{max(last, 2)}")
    sheet.data_validations.append(choices)
    sheet.append([_cell(sheet, h, True) for h in headers])
    for row in values:
        sheet.append([_cell(sheet, v) if _risky(v) else v for v in row])


def _risky(value: Any) -> bool:
    """Text a spreadsheet would read as a formula: it gets a cell of its own marked as text (plain
    values are written as they are, which costs a third of making a cell for each)."""
    return isinstance(value, str) and value.startswith(_RISKY_START)
