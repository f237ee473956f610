"""A reviewed workbook read back (``recon review-import``): each resolution a reviewer chose is
applied to its exception, with an audit row (who, when, which workbook by SHA-256, what changed).

All or nothing. The workbook is refused whole, naming the sheet and cell of every problem, when:
- it belongs to another database;
- an exception id is unknown;
- a resolution is not one of the allowed ones;
- a resolution has no note (every one needs a note);
- a protected cell (ids, amounts, accounts, contract, file and line) was changed;
- an exception changed in the books since the workbook was written (the row then says from what
  to what).
Importing the same workbook twice changes nothing. A resolution stands until the exception's facts
change, when it reopens (``reconcile/lifecycle.py``) and comes back in the next workbook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from sqlalchemy import Connection, Engine, select

from flows.db import ExceptionItem, ExceptionReview, table_of
from flows.runs import WORKBOOK_SCHEMA, database_id
from flows.store import insert_frame, read_frame, update_from_frame
from flows.words import label, resolution_code
from flows.workbook import COLUMNS, META_SHEET, PROTECTED, prepared, row_values


class ReviewRefused(ValueError):
    """The workbook cannot be imported; ``problems`` name each sheet and cell."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s); nothing was imported")


@dataclass(frozen=True)
class Decision:
    """One row's resolution, checked."""

    exception_key: str
    sheet: str
    row_no: int
    resolution_code: str
    note: str | None
    reviewer: str | None
    reviewed_on: str | None


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def _same(shown: Any, expected: Any) -> bool:
    """A cell as read back against the value written (numbers compared as exact decimals)."""
    if isinstance(expected, Decimal) or (isinstance(shown, int | float | Decimal) and not isinstance(shown, bool)):
        try:
            return Decimal(str(shown)).quantize(Decimal("0.01")) == Decimal(str(expected)).quantize(Decimal("0.01"))
        except ArithmeticError:
            return False
    return _text(shown) == _text(expected)


def read_decisions(
    path: Path, engine: Engine, channel_names: dict[str, dict[str, str]]
) -> tuple[str, dt.date, list[Decision]]:
    """The workbook's SHA-256, its business date and its checked decisions; raises
    :class:`ReviewRefused`."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # not a workbook at all
        raise ReviewRefused([f"{path.name}: not a workbook this product wrote ({type(error).__name__})"]) from None
    if META_SHEET not in book.sheetnames:
        raise ReviewRefused([f"{path.name}: not a workbook this product wrote (no sheet {META_SHEET})"])
    meta = {str(k): _text(v) for k, v, *_ in book[META_SHEET].iter_rows(values_only=True)}
    ours = database_id(engine)
    if meta.get("database_id") != ours:
        theirs = meta.get("database_id")
        raise ReviewRefused(
            [f"{path.name}: the workbook belongs to another database (its id {theirs}, this one's {ours})"]
        )
    language = meta.get("language", "zh")
    names = channel_names.get(language, {})
    headers = [label(name, language) for name in COLUMNS]
    rows: list[tuple[str, int, dict[str, Any]]] = []
    problems: list[str] = []
    for sheet in book.worksheets:
        first = next(sheet.iter_rows(min_row=1, max_row=1, values_only=True), ())
        if [_text(v) for v in first[: len(headers)]] != headers:
            continue  # the summary, the instructions
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            cells = dict(zip(COLUMNS, list(values) + [None] * (len(COLUMNS) - len(values)), strict=True))
            if not cells["exception_key"] and _text(cells["short_id"]).startswith(label("total", language)):
                continue  # the total row
            rows.append((sheet.title, number, cells))
    keys = [str(cells["exception_key"]) for _, _, cells in rows if cells["exception_key"]]
    now = _exceptions(engine, keys)
    decisions = []
    for title, number, cells in rows:
        decision = _check_row(title, number, cells, now, language, names, problems)
        if decision is not None:
            decisions.append(decision)
    if problems:
        raise ReviewRefused(problems)
    return sha, dt.date.fromisoformat(meta["business_date"]), decisions


def _by_key(conn: Connection, schema: dict[str, Any], keys: list[str]) -> pl.DataFrame:
    """The exceptions with these keys (columns ``schema``), read in batches a statement can hold."""
    table = table_of(ExceptionItem)
    columns = [table.c[c] for c in schema]
    found = [
        read_frame(conn, select(*columns).where(table.c.exception_key.in_(keys[i : i + 5000])), schema)
        for i in range(0, len(keys), 5000)
    ]
    return pl.concat(found) if found else pl.DataFrame(schema=schema)


def _exceptions(engine: Engine, keys: list[str]) -> dict[str, dict[str, Any]]:
    schema = {**WORKBOOK_SCHEMA, "resolution_code": pl.String, "resolution_note": pl.String}
    with engine.connect() as conn:
        frame = prepared(_by_key(conn, schema, keys))
    return {row["exception_key"]: row for row in frame.to_dicts()}


def _check_row(
    title: str,
    number: int,
    cells: dict[str, Any],
    now: dict[str, dict[str, Any]],
    language: str,
    names: dict[str, str],
    problems: list[str],
) -> Decision | None:
    def cell(name: str) -> str:
        return f"{title}!{get_column_letter(COLUMNS.index(name) + 1)}{number}"

    key = _text(cells["exception_key"])
    current = now.get(key)
    if current is None:
        problems.append(
            f"{cell('short_id')}: exception {_text(cells['short_id']) or key!r} is unknown to this database"
        )
        return None
    expected = row_values(current, language, names)
    for name in PROTECTED:
        if not _same(cells[name], expected[name]) and _text(cells["facts"]) == _text(current["facts"]):
            problems.append(f"{cell(name)}: a protected cell was changed (written {_text(expected[name])!r}, "
                            f"now {_text(cells[name])!r})")  # fmt: skip
    chosen = _text(cells["resolution"])
    if not chosen:
        return None
    if _text(cells["facts"]) != _text(current["facts"]):
        then, since = _text(cells["facts"]), _text(current["facts"])
        problems.append(f"{cell('resolution')}: the exception changed since the workbook was written: {then} → {since}")
        return None
    code = resolution_code(chosen)
    if code is None:
        problems.append(f"{cell('resolution')}: {chosen!r} is not an allowed resolution")
        return None
    note = _text(cells["note"]) or None
    if note is None:  # every resolution needs a note
        problems.append(f"{cell('note')}: a note is required for {chosen!r}")
        return None
    return Decision(key, title, number, code, note, _text(cells["reviewer"]) or None,
                    _text(cells["reviewed_on"]) or None)  # fmt: skip


@dataclass(frozen=True)
class Imported:
    """What an import did: resolutions applied, unchanged (already so), and rows left blank."""

    sha256: str
    applied: int
    unchanged: int
    decided: int


def apply_decisions(engine: Engine, sha: str, day: dt.date, decisions: list[Decision], imported_by: str) -> Imported:
    """Each decision applied to its exception with an audit row, in one transaction and in bulk; a
    decision the exception already carries (the same workbook imported again) changes nothing."""
    table = table_of(ExceptionItem)
    now = dt.datetime.now(dt.UTC)
    chosen = pl.DataFrame(
        [(d.exception_key, d.sheet, d.row_no, d.resolution_code, d.note, d.reviewer or imported_by, d.reviewed_on)
         for d in decisions],
        schema={"exception_key": pl.String, "sheet": pl.String, "row_no": pl.Int64, "resolution_code": pl.String,
                "note": pl.String, "reviewer": pl.String, "reviewed_on": pl.String},
        orient="row",
    )  # fmt: skip
    schema = {"exception_key": pl.String, "status": pl.String, "resolution_code": pl.String,
              "resolution_note": pl.String}  # fmt: skip
    with engine.begin() as conn:
        before = _by_key(conn, schema, chosen["exception_key"].to_list())
        both = chosen.join(before.rename({"resolution_code": "code_before", "resolution_note": "note_before",
                                          "status": "status_before"}), on="exception_key")  # fmt: skip
        same = (
            (pl.col("status_before") == "RESOLVED")
            & pl.col("code_before").eq_missing(pl.col("resolution_code"))
            & pl.col("note_before").eq_missing(pl.col("note"))
        )
        changing = both.filter(~same)
        update_from_frame(
            conn,
            table,
            changing.select("exception_key", pl.lit("RESOLVED").alias("status"), "resolution_code",
                            pl.col("note").alias("resolution_note")),
            ["exception_key"],
        )  # fmt: skip
        insert_frame(
            conn,
            table_of(ExceptionReview),
            changing.select(
                "exception_key", pl.lit(sha).alias("workbook_sha256"), pl.lit(day).alias("workbook_date"), "sheet",
                "row_no", "resolution_code", "note", "reviewer", "reviewed_on",
                pl.lit(imported_by).alias("imported_by"), pl.lit(now).alias("imported_at"), "status_before",
                pl.col("code_before").alias("resolution_before"), "note_before",
            ),
        )  # fmt: skip
    return Imported(sha, changing.height, both.height - changing.height, len(decisions))
