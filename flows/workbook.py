"""The finance workbook (openpyxl, write-only; the exception sheets' rows made by ``flows/sheetrows.py``),
in Chinese by default or English.

- A summary sheet. It ties out for each channel and for the day (received = applied + held,
  reversed = unapplied + released), each check shown. It explains every count (records,
  instructions without a result, rejected files and missing channels add up to the outcomes) and
  lists the outcomes with their amounts. It lists the files with their control totals in yuan and
  ages the open exceptions (0–1, 2–3, 4–7, 8–30, over 30 days).
- One sheet per kind of exception a person must act on (MEDIUM and HIGH). Each row has a short id
  to read out on the phone, the facts, the explanation and the suggested action, then the
  reviewer's columns: a resolution from a drop-down that refuses anything else, a note, the
  reviewer and the date. The exception key is kept, hidden, for the machine. Each sheet ends
  with a total row.
- An instructions sheet (填写说明).

Money is numbers in yuan with a ``#,##0.00`` format. Every sheet prints landscape, fitted to the
page width, with its header row repeated. Accounts are masked, and text a spreadsheet would run
as a formula is written as text. The LOW exceptions (failed debits to retry, partial and late
payments) are counted on the summary and listed in a CSV beside the workbook, with a byte-order
mark so that Excel on Chinese Windows reads it. Each file is written under a temporary name, then
renamed; ``recon_YYYYMMDD.xlsx`` is always the date's current workbook, and each run's own stays
beside it.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import os
import shutil
import unicodedata
import weakref
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from flows.faults import checkpoint
from flows.sheetrows import RISKY_PREFIXES, RISKY_START, Looks, SheetRows, put_rows, total_xml
from flows.words import (
    FUNDS_OUTCOMES,
    INSTRUCTIONS,
    any_outcome_label,
    applies_to_label,
    code_label,
    explanation_in,
    in_language,
    label,
    outcome_label,
    reason_in,
    resolution_label,
    resolution_labels,
)
from reconcile.codes import Outcome
from reconcile.funds.clearing import AGES
from reconcile.masking import mask_account, mask_account_expr, mask_numbers_in_series
from reconcile.money import fen_expr_to_yuan_text
from reconcile.text import printable_text

#: The exception sheets' columns, in order; the reviewer fills the four before the hidden key.
COLUMNS = ("short_id", "business_date", "age_days", "status", "severity", "channel", "contract_no",
           "installment_no", "instruction_id", "channel_txn_id", "amount_yuan", "held_yuan", "account",
           "explanation", "action", "source_file", "line_no", "resolution", "apply_contract", "apply_installment",
           "note", "reviewer", "reviewed_on", "exception_key", "facts")  # fmt: skip
#: What a reviewer may not change: the import compares them with the books.
PROTECTED = ("short_id", "business_date", "channel", "contract_no", "installment_no", "instruction_id",
             "channel_txn_id", "amount_yuan", "held_yuan", "account", "source_file", "line_no")  # fmt: skip
HIDDEN = ("exception_key", "facts")
META_SHEET = "_recon"
REVIEWER_COLUMNS = ("resolution", "apply_contract", "apply_installment", "note", "reviewer", "reviewed_on")
FREE_TEXT = ("explanation_zh", "explanation_en", "suggested_action")
MONEY_COLUMNS = ("amount_yuan", "held_yuan")
MONEY_FORMAT = "#,##0.00"
AGE_BUCKETS = ((0, 1, "0–1"), (2, 3, "2–3"), (4, 7, "4–7"), (8, 30, "8–30"), (31, None, "> 30"))
_HEADER_FILL = PatternFill("solid", fgColor="DDEBF7")
_REVIEW_FILL = PatternFill("solid", fgColor="FFF2CC")


def column_letter(name: str) -> str:
    return get_column_letter(COLUMNS.index(name) + 1)


def short_id(exception_key: str) -> str:
    """A short name of an exception to read out on the phone (``E7KQ-2M4X``): from its key, so the
    same exception has the same id in every workbook."""
    digest = base64.b32encode(hashlib.sha256(exception_key.encode()).digest()).decode()[:8]
    return f"{digest[:4]}-{digest[4:]}"


def display_width(text: str) -> int:
    """Columns a text takes in a spreadsheet: East Asian wide characters count as two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def yuan(fen: int | None) -> Decimal | None:
    """Fen as an exact number of yuan for a cell (never through a float)."""
    return None if fen is None else Decimal(int(fen)).scaleb(-2)


#: Each workbook's cell looks, as openpyxl's style arrays: a look is registered once (fonts, fills
#: and formats are hashed to find their ids) and then copied to every cell that has it.
_LOOKS: weakref.WeakKeyDictionary[Any, dict[tuple[bool, bool, bool], Any]] = weakref.WeakKeyDictionary()


def _cell(sheet: Any, value: Any, bold: bool = False, money: bool = False) -> Any:
    cell = WriteOnlyCell(sheet, value=value)
    risky = _risky(value)
    if risky:
        cell.data_type = "s"
    if not (risky or bold or money):
        return cell
    looks = _LOOKS.setdefault(sheet.parent, {})
    look = (risky, bold, money)
    if look in looks:
        cell._style = copy.copy(looks[look])
        return cell
    if risky:
        cell.quotePrefix = True
    if bold:
        cell.font = Font(bold=True)
        cell.fill = _HEADER_FILL
    if money:
        cell.number_format = MONEY_FORMAT
    looks[look] = copy.copy(cell._style)
    return cell


def _print_setup(sheet: Any) -> None:
    """Landscape, as wide as the page, the header row on every page."""
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = "9"  # A4
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.sheet_properties.pageSetUpPr.fitToPage = True
    sheet.print_title_rows = "1:1"


def write_workbook(
    path: Path,
    summary: dict[str, Any],
    exceptions: pl.DataFrame,
    language: str = "zh",
    channel_names: dict[str, str] | None = None,
    current: bool = True,
    database_id: str = "",
    settlements: pl.DataFrame | None = None,
) -> Path:
    """Write the workbook for a run; returns the final path (complete only once it exists). With
    ``current``, the date's current workbook (``recon_YYYYMMDD.xlsx`` beside it) becomes this one.
    ``settlements``: the expected settlements to show on the funds sheet (资金对账), when funds
    reconciliation is on (``summary["funds"]``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    names = channel_names or {}
    # only what the sheets show is prepared whole; the informational bulk is counted, and listed in
    # the detail file a slice at a time
    actionable = prepared(exceptions.filter(pl.col("severity") != "LOW"))
    informational = exceptions.filter(pl.col("severity") == "LOW").select("outcome", "amount_fen", "held_fen")
    detail = path.with_name(path.stem + ".detail.csv")
    _write_detail_csv(detail, exceptions)
    partial = path.with_name(f".{path.name}.partial")
    book = Workbook(write_only=True)
    _summary_sheet(book, summary, language, actionable, informational, detail.name, names)
    sheets = []
    for code in Outcome:
        rows = actionable.filter(pl.col("outcome") == code.value)
        if rows.height:
            sheets.append(_exception_sheet(book, outcome_label(code, language), rows, language, names))
    funds = summary.get("funds") or {}
    if funds.get("enabled"):
        _funds_sheet(book, funds, settlements, language, names)
        for funds_code in FUNDS_OUTCOMES:
            rows = actionable.filter(pl.col("outcome") == funds_code)
            if rows.height:
                sheets.append(_exception_sheet(book, any_outcome_label(funds_code, language), rows, language, names))
    _instructions_sheet(book, language)
    _meta_sheet(book, summary, language, database_id)
    looks = _looks(book)
    book.save(partial)
    put_rows(partial, sheets, looks)
    checkpoint("workbook_saved")
    os.replace(partial, path)
    stable = path.with_name(f"recon_{str(summary['business_date']).replace('-', '')}.xlsx")
    if current and stable != path:
        shutil.copyfile(path, stable.with_name(f".{stable.name}.partial"))
        os.replace(stable.with_name(f".{stable.name}.partial"), stable)
    return path


def prepared(exceptions: pl.DataFrame) -> pl.DataFrame:
    """The exceptions as cells may hold them: a control character in any text (an id, a memo quoted
    in an explanation) is refused by a cell, and free text never shows a card, ID or phone number
    whole, whoever wrote it."""
    return exceptions.with_columns(
        [printable_text(c).alias(c) for c, t in exceptions.schema.items() if t == pl.String]
    ).pipe(lambda rows: rows.with_columns([mask_numbers_in_series(rows[c]) for c in FREE_TEXT if c in rows.columns]))


#: Rows of the detail file prepared and written at a time (a month-end day has millions).
DETAIL_SLICE_ROWS = 250_000


def _write_detail_csv(path: Path, exceptions: pl.DataFrame) -> None:
    """Every exception, accounts masked, amounts in yuan; UTF-8 with a byte-order mark (Excel on
    Chinese Windows reads a CSV without one as GBK); written in slices of
    :data:`DETAIL_SLICE_ROWS`, then renamed."""
    partial = path.with_name(f".{path.name}.partial")
    with open(partial, "wb") as out:
        for start in range(0, max(exceptions.height, 1), DETAIL_SLICE_ROWS):
            rows = prepared(exceptions.slice(start, DETAIL_SLICE_ROWS))
            rows.with_columns(account_masked=mask_account_expr("account_masked")).with_columns(
                # a spreadsheet opening the CSV would run a cell starting with = + - @: quote it
                pl.col(pl.String).str.replace(RISKY_START, "'$0"),
            ).select(
                "exception_key", "business_date", "age_days", "status", "outcome", "severity", "channel",
                "contract_no", "installment_no", "instruction_id", "channel_txn_id",
                fen_expr_to_yuan_text(pl.col("amount_fen").fill_null(0)).alias("amount_yuan"),
                fen_expr_to_yuan_text(pl.col("held_fen").fill_null(0)).alias("held_yuan"),
                "account_masked", "explanation_zh", "explanation_en", "suggested_action", "source_file", "line_no",
            ).write_csv(out, include_bom=start == 0, include_header=start == 0)  # fmt: skip
    os.replace(partial, path)


def _header(sheet: Any, titles: list[str]) -> None:
    sheet.append([_cell(sheet, title, bold=True) for title in titles])


def _summary_sheet(
    book: Workbook,
    summary: dict[str, Any],
    language: str,
    actionable: pl.DataFrame,
    informational: pl.DataFrame,
    detail_name: str,
    names: dict[str, str],
) -> None:
    def say(key: str) -> str:
        return label(key, language)

    sheet = book.create_sheet(say("summary"))
    _print_setup(sheet)
    for column, width in zip("ABCDEFGHI", (30, 16, 16, 16, 34, 34, 16, 16, 24), strict=True):
        sheet.column_dimensions[column].width = width
    _header(sheet, [say("item"), say("value")])
    sheet.append([say("business_date"), str(summary["business_date"])])
    sheet.append([say("run_id"), str(summary["run_id"])])
    sheet.append([say("balanced"), say("yes") if summary["balanced"] else say("no")])

    # the tie-out: per channel, then the day
    sheet.append([])
    _header(sheet, [say("tie_out"), say("received"), say("applied"), say("held"), say("check_received"),
                    say("reversed"), say("unapplied"), say("released"), say("check_reversed")])  # fmt: skip
    by_channel: dict[str, dict[str, int]] = summary.get("fen_by_channel") or {}
    for channel, fen in [*by_channel.items(), (say("day_total"), summary["fen"])]:
        shown = names.get(channel, channel)
        sheet.append([_cell(sheet, shown, bold=channel == say("day_total")), *_tie_out_cells(sheet, fen, say)])

    # held money: what the records held, less releases, is still held or was refunded or applied by hand
    held = summary.get("suspense")
    if held:
        sheet.append([])
        _header(sheet, [say("suspense"), say("held_net"), say("still_held"), say("refunded_by_hand"),
                        say("applied_by_hand"), say("check_suspense")])  # fmt: skip
        sheet.append([say("day_total"), *[_cell(sheet, yuan(held[k]), money=True) for k in
                      ("held_net", "still_held", "refunded_by_hand", "applied_by_hand")],
                      say("ok") if held["agrees"] else say("off")])  # fmt: skip

    # what the counts are: records and the other subjects add up to the outcomes
    sheet.append([])
    _header(sheet, [say("counts"), say("count")])
    subjects: dict[str, int] = summary.get("subjects") or {}
    for key, subject in (("records", "record"), ("instruction", "instruction"), ("file", "file"),
                         ("missing_channel", "channel")):  # fmt: skip
        sheet.append([say(key), int(subjects.get(subject, 0))])
    sheet.append([_cell(sheet, say("outcomes_total"), bold=True), _cell(sheet, sum(summary["outcomes"].values()),
                                                                          bold=True)])  # fmt: skip

    # the outcomes, with the money of the exceptions among them
    sheet.append([])
    _header(sheet, [say("outcome"), say("code"), say("count"), say("amount")])
    amounts = _amounts_by_outcome(pl.concat([actionable, informational], how="diagonal_relaxed"))
    for code, count in summary["outcomes"].items():
        fen = amounts.get(code)
        sheet.append([outcome_label(Outcome(code), language), code, int(count),
                      _cell(sheet, yuan(fen), money=True) if fen is not None else None])  # fmt: skip
    sheet.append([])
    _header(sheet, [say("low_detail"), say("code"), say("count"), say("amount"), detail_name])
    for row in informational.group_by("outcome").agg(pl.len(), pl.col("amount_fen").sum()).sort("outcome").rows():
        code, count, fen = row
        sheet.append([any_outcome_label(code, language), code, int(count), _cell(sheet, yuan(fen), money=True)])

    # the open exceptions by age
    sheet.append([])
    _header(sheet, [say("ageing"), say("count"), say("amount")])
    open_rows = actionable.filter(pl.col("status") == "OPEN")
    for low, high, name in AGE_BUCKETS:
        in_bucket = open_rows.filter(
            (pl.col("age_days") >= low) & ((pl.col("age_days") <= high) if high is not None else pl.lit(True))
        )
        fen = int(in_bucket["amount_fen"].fill_null(0).sum())
        sheet.append([name, in_bucket.height, _cell(sheet, yuan(fen), money=True)])

    # the files, with their control totals
    sheet.append([])
    _header(sheet, [say("file_name"), say("channel"), say("status"), say("rows"), say("stated"), say("counted"),
                    say("reason")])  # fmt: skip
    for item in summary["files"]:
        said = "; ".join(reason_in(text, language) for text in [item.get("reason"), *item.get("notes", [])] if text)
        totals = item.get("control_totals") or []
        kinds = [applies_to_label(t["applies_to"], language) for t in totals]
        stated = "; ".join(
            f"{k} {'—' if t['stated_count'] is None else t['stated_count']} / {yuan(t['stated_fen']):,.2f}"
            for k, t in zip(kinds, totals, strict=True)
        )
        counted = "; ".join(
            f"{k} {t['counted']} / {yuan(t['summed_fen']):,.2f}" for k, t in zip(kinds, totals, strict=True)
        )
        sheet.append([_cell(sheet, item["name"]), names.get(item.get("channel") or "", item.get("channel") or ""),
                      code_label(item["status"], language), int(item.get("rows") or 0), stated, counted,
                      _cell(sheet, said)])  # fmt: skip


def _tie_out_cells(sheet: Any, fen: dict[str, int], say: Any) -> list[Any]:
    agrees_in = fen["received"] == fen["applied"] + fen["held"]
    agrees_out = fen["reversed"] == fen["unapplied"] + fen["released"]
    money = [_cell(sheet, yuan(fen[key]), money=True) for key in ("received", "applied", "held")]
    back = [_cell(sheet, yuan(fen[key]), money=True) for key in ("reversed", "unapplied", "released")]
    return [*money, say("ok") if agrees_in else say("off"), *back, say("ok") if agrees_out else say("off")]


def _amounts_by_outcome(exceptions: pl.DataFrame) -> dict[str, int]:
    if exceptions.height == 0:
        return {}
    sums = exceptions.group_by("outcome").agg(pl.col("amount_fen").fill_null(0).sum())
    return {code: int(fen) for code, fen in sums.rows()}


def _status(r: dict[str, Any], language: str) -> str:
    """Open, resolved, or reopened after a reviewer's resolution (which it names)."""
    earlier = r.get("earlier_resolution")
    if earlier and r["status"] == "OPEN":
        return f"{label('reopened', language)} ({label('was', language)} {resolution_label(earlier, language)})"
    return code_label(r["status"], language)


def row_values(r: dict[str, Any], language: str, names: dict[str, str]) -> dict[str, Any]:
    """What an exception's row shows, by column (the import compares the protected ones with it)."""
    return {
        "short_id": short_id(r["exception_key"]),
        "business_date": str(r["business_date"]),
        "age_days": r.get("age_days"),
        "status": _status(r, language),
        "severity": code_label(r["severity"], language),
        "channel": names.get(r["channel"] or "", r["channel"] or ""),
        "contract_no": r["contract_no"] or "",
        "installment_no": r["installment_no"] if r["installment_no"] is not None else "",
        "instruction_id": r["instruction_id"] or "",
        "channel_txn_id": r["channel_txn_id"] or "",
        "amount_yuan": yuan(r["amount_fen"]),
        "held_yuan": yuan(r["held_fen"]),
        "account": mask_account(r["account_masked"]) if r.get("account_masked") else "",
        "explanation": explanation_in(r["explanation_zh"], "zh") if language == "zh" else r["explanation_en"],
        "action": in_language(r["suggested_action"], language),
        "source_file": r["source_file"] or "",
        "line_no": r["line_no"] if r["line_no"] is not None else "",
        "exception_key": r["exception_key"],
        "facts": r.get("facts") or "",
    }


def _exception_sheet(book: Workbook, title: str, rows: pl.DataFrame, language: str, names: dict[str, str]) -> SheetRows:
    """The sheet with its header row; returns its rows, which ``flows.sheetrows`` puts below the
    header once the workbook is saved."""
    sheet = book.create_sheet(title[:31])
    _print_setup(sheet)
    rows = rows.sort("exception_key")
    shown = [row_values(r, language, names) for r in rows.head(200).to_dicts()]
    headers = [label(name, language) for name in COLUMNS]
    for index, name in enumerate(COLUMNS):
        longest = max([display_width(str(v.get(name) or "")) for v in shown] + [display_width(headers[index])])
        width = min(max(longest + 4, 8), 120 if name == "explanation" else 40)
        widths = {"note": 40, "reviewer": 12, "reviewed_on": 14, "apply_contract": 18, "apply_installment": 10}
        if name in widths:
            width = widths[name]
        sheet.column_dimensions[get_column_letter(index + 1)].width = width
    for name in HIDDEN:
        sheet.column_dimensions[column_letter(name)].hidden = True
    for name in REVIEWER_COLUMNS:
        # the reviewer's columns are shaded as columns, not cell by cell: an empty cell is not
        # written at all (a quarter of a sheet's cells), and what a reviewer types is shaded too
        sheet.column_dimensions[column_letter(name)].fill = _REVIEW_FILL
    sheet.freeze_panes = "B2"
    last = rows.height + 1
    sheet.auto_filter.ref = f"A1:{column_letter('facts')}{last}"
    choices = DataValidation(
        type="list",
        formula1='"' + ",".join(resolution_labels(language)) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorStyle="stop",
        error=label("resolution_error", language),
        showInputMessage=True,
        prompt=label("resolution_prompt", language),
    )
    resolution = column_letter("resolution")
    choices.add(f"{resolution}2:{resolution}{max(last, 2)}")  # every row, and only the rows
    sheet.data_validations.append(choices)
    _header(sheet, headers)
    # explanations are not wrapped: a write-only sheet cannot size its rows, and wrapped text in a
    # row of one line's height prints over itself; the column is wide enough for most
    money = {COLUMNS.index(name) + 1: int(rows[name.replace("_yuan", "_fen")].fill_null(0).sum())
             for name in MONEY_COLUMNS}  # fmt: skip
    return SheetRows(
        columns=[(name, _KINDS.get(name, "text")) for name in COLUMNS],
        cells=sheet_cells(rows, language, names),
        total=total_xml(last + 1, f"{label('total', language)} {rows.height}", money, _looks(book)),
        sheet=sheet,
    )


#: How each column of an exception sheet is written (``flows.sheetrows.row_xml``); the rest is text.
_KINDS = {"age_days": "int", "installment_no": "int_or_empty", "line_no": "int_or_empty", "amount_yuan": "money",
          "held_yuan": "money", **{name: "none" for name in REVIEWER_COLUMNS}}  # fmt: skip


def sheet_cells(rows: pl.DataFrame, language: str, names: dict[str, str]) -> pl.DataFrame:
    """What :func:`row_values` shows for each of ``rows``, a column at a time (money in fen)."""

    def each(column: str, make: Any) -> pl.Series:
        values = rows[column].to_list() if column in rows.columns else [None] * rows.height
        return pl.Series([make(v) for v in values], dtype=pl.String)

    statuses = [
        _status(r, language)
        for r in rows.select([c for c in ("status", "earlier_resolution") if c in rows.columns]).iter_rows(named=True)
    ]
    text = {c: pl.col(c).fill_null("") for c in ("contract_no", "instruction_id", "channel_txn_id", "source_file",
                                                 "exception_key")}  # fmt: skip
    explanation = (
        each("explanation_zh", lambda v: explanation_in(v, "zh"))
        if language == "zh"
        else rows["explanation_en"].cast(pl.String)
    )
    return rows.select(
        pl.Series("short_id", [short_id(k) for k in rows["exception_key"].to_list()], dtype=pl.String),
        pl.col("business_date").cast(pl.String),
        (pl.col("age_days") if "age_days" in rows.columns else pl.lit(None, pl.Int64)).alias("age_days"),
        pl.Series("status", statuses, dtype=pl.String),
        each("severity", lambda v: code_label(v, language)).alias("severity"),
        each("channel", lambda v: names.get(v or "", v or "")).alias("channel"),
        *[e.alias(c) for c, e in text.items()],
        pl.col("installment_no"),
        pl.col("amount_fen").alias("amount_yuan"),
        pl.col("held_fen").alias("held_yuan"),
        each("account_masked", lambda v: mask_account(v) if v else "").alias("account"),
        explanation.alias("explanation"),
        each("suggested_action", lambda v: in_language(v, language)).alias("action"),
        pl.col("line_no"),
        (pl.col("facts").fill_null("") if "facts" in rows.columns else pl.lit("")).alias("facts"),
    )


def _looks(book: Workbook) -> Looks:
    """The style ids of the looks an exception sheet's rows take, registered in ``book``."""
    sheet = book.worksheets[0]
    return Looks(
        risky=_cell(sheet, "=", money=False).style_id,
        money=_cell(sheet, 0, money=True).style_id,
        bold=_cell(sheet, "", bold=True).style_id,
        bold_money=_cell(sheet, 0, bold=True, money=True).style_id,
    )


#: What is owed past its window, by age in working days (``reconcile/funds/clearing.py::AGES``).
AGE_BUCKETS_FUNDS = tuple(name for name, _, _ in AGES)
#: The clearing balance's columns on the funds sheet, in order (summary["funds"]["clearing"]).
CLEARING_COLUMNS = ("closing_fen", "pending_fen", "overdue_fen", "surplus_fen", "unexplained_fen")
SETTLEMENT_MONEY = ("gross_fen", "refunds_fen", "fee_expected_fen", "fee_reported_fen", "net_fen", "allocated_fen",
                    "remaining_fen", "gross_stated_fen", "net_stated_fen", "payout_stated_fen")  # fmt: skip


def _funds_sheet(
    book: Workbook, funds: dict[str, Any], settlements: pl.DataFrame | None, language: str, names: dict[str, str]
) -> None:
    """资金对账: each channel's clearing balance item by item, then the expected settlements."""

    def say(key: str) -> str:
        return label(key, language)

    sheet = book.create_sheet(say("funds")[:31])
    _print_setup(sheet)
    # the clearing table and the settlements share the columns: each as wide as the wider of the two
    for index, width in enumerate((14, 14, 16, 16, 16, 16, 16, 16, 25, 18, 13, 16, 16, 10, 16, 16, 16), start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.append([_cell(sheet, f"{say('funds')} — {say('funds_as_of')} {funds.get('as_of', '')}", bold=True)])
    sheet.append([say("balanced"), say("yes") if funds.get("balanced") else say("no")])
    sheet.append([])
    _header(sheet, [say("clearing"), say("closing"), say("pending"), say("overdue"), say("surplus"),
                    say("unexplained"), say("drained"), say("oldest_overdue"),
                    *[say(f"overdue_{name}") for name in AGE_BUCKETS_FUNDS]])  # fmt: skip
    for channel, proof in sorted((funds.get("clearing") or {}).items()):
        money = [_cell(sheet, yuan(proof[c]), money=True) for c in CLEARING_COLUMNS]
        aged = [_cell(sheet, yuan(proof.get(f"overdue_{name}_fen", 0)), money=True) for name in AGE_BUCKETS_FUNDS]
        sheet.append([names.get(channel, channel), *money, say("yes") if proof["drained"] else say("no"),
                      proof.get("oldest_overdue_days"), *aged])  # fmt: skip
    sheet.append([])
    _header(sheet, [say("business_date"), say("channel"), say("merchant"), say("gross"), say("refunds"),
                    say("fee_expected"), say("fee_stated"), say("net"), say("window"), say("outcome"),
                    say("paid_on"), say("allocated"), say("remaining"), say("age_days"), say("gross_stated"),
                    say("net_stated"), say("payout_stated")])  # fmt: skip
    rows = settlements.sort("business_date", "channel").to_dicts() if settlements is not None else []
    for r in rows:
        money = [_cell(sheet, yuan(r[c]), money=True) if r[c] is not None else None for c in SETTLEMENT_MONEY]
        sheet.append([
            str(r["business_date"]), names.get(r["channel"], r["channel"]), r["merchant_id"], *money[:5],
            f"{r['window_from']}–{r['window_to']}", any_outcome_label(r["outcome"], language),
            str(r["paid_on"]) if r["paid_on"] else "", *money[5:7], r["age_days"], *money[7:],
        ])  # fmt: skip


def _meta_sheet(book: Workbook, summary: dict[str, Any], language: str, database_id: str) -> None:
    """A hidden sheet saying whose workbook this is, for ``recon review-import``."""
    sheet = book.create_sheet(META_SHEET)
    sheet.sheet_state = "hidden"
    for key, value in (("format", "recon-review-1"), ("database_id", database_id),
                       ("business_date", str(summary["business_date"])), ("run_id", str(summary["run_id"])),
                       ("language", language)):  # fmt: skip
        sheet.append([key, value])


def _instructions_sheet(book: Workbook, language: str) -> None:
    sheet = book.create_sheet(label("instructions", language))
    _print_setup(sheet)
    sheet.column_dimensions["A"].width = 110
    _header(sheet, [label("instructions", language)])
    wrap = Alignment(wrap_text=True, vertical="top")
    for line in INSTRUCTIONS[language]:
        cell = _cell(sheet, line)
        cell.alignment = wrap
        sheet.append([cell])


def _risky(value: Any) -> bool:
    """Text a spreadsheet would read as a formula: it gets a cell of its own marked as text (plain
    values are written as they are, which costs a third of making a cell for each)."""
    return isinstance(value, str) and value.startswith(RISKY_PREFIXES)
