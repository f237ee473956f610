"""A reviewed workbook read back (``recon review-import``): each resolution a reviewer chose is
applied to its exception, with an audit row (who, when, which workbook by SHA-256, what changed).

All or nothing. The workbook is refused whole, naming the sheet and cell of every problem, when:
- it belongs to another database;
- an exception id is unknown;
- a resolution is not one of the allowed ones;
- a resolution has no note (every one needs a note);
- a protected cell (ids, amounts, accounts, contract, file and line) was changed;
- an exception changed in the books since the workbook was written (the row then says from what
  to what);
- a resolution that moves money cannot: ``REFUNDED`` or ``APPLIED_MANUALLY`` of an exception with
  nothing held, or an application to a contract or installment that is not in the books or owes
  less than the money held (``reconcile/adjustments.py``).

Those two move the books through the ledger, dated on the exception's business date: the held money
leaves suspense (refunded outside the channel's files) or pays the installment named in the row's
入账合同号 / 入账期次 columns; installment and loan state follow, and the audit row says how much moved
and where. Changing such a resolution in a later workbook undoes its entries first.
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
from sqlalchemy import Connection, Engine, and_, select

from flows.contract import normalise_contract
from flows.db import ExceptionItem, ExceptionReview, Installment, LedgerEntry, table_of
from flows.runs import WORKBOOK_SCHEMA, database_id
from flows.stages.write import undo_reviewers_entries, write_installment_state, write_loan_status
from flows.store import insert_frame, read_frame, stage_frame, update_from_frame
from flows.words import label, resolution_code, resolution_label
from flows.workbook import COLUMNS, META_SHEET, PROTECTED, prepared, row_values
from reconcile.adjustments import (
    DECISION_SCHEMA,
    HELD_SCHEMA,
    MOVES_BOOKS,
    TARGET_SCHEMA,
    TXN,
    plan_adjustments,
)
from reconcile.books import INSTALLMENT_KEY


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
    apply_contract: str | None = None
    apply_installment: int | None = None


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
    path: Path, engine: Engine, channel_names: dict[str, dict[str, str]], order: tuple[str, ...]
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
    if not problems:
        fresh = [d for d in decisions if not _already(d, now[d.exception_key])]
        with engine.connect() as conn:
            _, moving_problems = plan_moves(conn, fresh, order)
        problems.extend(_where(decisions, moving_problems, language))
    if problems:
        raise ReviewRefused(problems)
    return sha, dt.date.fromisoformat(meta["business_date"]), decisions


def _already(decision: Decision, current: dict[str, Any]) -> bool:
    """The exception carries this decision already (the same workbook imported again)."""
    return (
        current["status"] == "RESOLVED"
        and current["resolution_code"] == decision.resolution_code
        and current["resolution_note"] == decision.note
    )


def _where(decisions: list[Decision], problems: dict[str, str], language: str) -> list[str]:
    """Each moving resolution's problem, named by its row's cell."""
    said = []
    for d in decisions:
        if d.exception_key in problems:
            name = "resolution" if problems[d.exception_key].startswith("nothing is held") else "apply_contract"
            where = f"{d.sheet}!{get_column_letter(COLUMNS.index(name) + 1)}{d.row_no}"
            said.append(f"{where}: {resolution_label(d.resolution_code, language)!r}: {problems[d.exception_key]}")
    return said


def plan_moves(
    conn: Connection, decisions: list[Decision], order: tuple[str, ...]
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The ledger entries the moving resolutions among ``decisions`` make (with their
    ``business_date`` and ``exception_key``), and a problem per one that cannot move."""
    moving = [d for d in decisions if d.resolution_code in MOVES_BOOKS]
    if not moving:
        return pl.DataFrame(), {}
    facts = _by_key(conn, {"exception_key": pl.String, "business_date": pl.Date, "channel": pl.String,
                           "channel_txn_id": pl.String, "contract_no": pl.String},
                    [d.exception_key for d in moving])  # fmt: skip
    typed = {d.apply_contract for d in moving if d.apply_contract}
    wanted = sorted(typed | {normalise_contract(c) for c in typed} | set(facts["contract_no"].drop_nulls().to_list()))
    targets = _installments_of(conn, wanted)
    known = set(targets["contract_no"].to_list())

    def target(d: Decision) -> str | None:
        if not d.apply_contract:
            return None
        return d.apply_contract if d.apply_contract in known else normalise_contract(d.apply_contract)

    chosen = pl.DataFrame(
        [(d.exception_key, d.resolution_code, target(d), d.apply_installment) for d in moving],
        schema={"exception_key": pl.String, "resolution_code": pl.String, "target_contract_no": pl.String,
                "target_installment_no": pl.Int64},
        orient="row",
    ).join(facts, on="exception_key")  # fmt: skip
    table = table_of(LedgerEntry)
    txns = chosen.select(TXN).drop_nulls().unique()
    staged = stage_frame(conn, "stage_moving", txns, table)
    ledger = read_frame(
        conn,
        select(*[table.c[c] for c in HELD_SCHEMA]).join(
            staged, and_(staged.c.channel == table.c.channel, staged.c.channel_txn_id == table.c.channel_txn_id)
        ),
        HELD_SCHEMA,
    )
    staged.drop(conn)
    entries, problems = plan_adjustments(chosen.select(list(DECISION_SCHEMA)), ledger, targets, order)
    dated = chosen.select(*TXN, "exception_key", "business_date").unique(TXN, keep="first")
    return entries.join(dated, on=TXN, how="left"), problems


def _installments_of(conn: Connection, contracts: list[str]) -> pl.DataFrame:
    table = table_of(Installment)
    found = [
        read_frame(
            conn,
            select(*[table.c[c] for c in TARGET_SCHEMA]).where(table.c.contract_no.in_(contracts[i : i + 5000])),
            TARGET_SCHEMA,
        )
        for i in range(0, len(contracts), 5000)
    ]
    return pl.concat(found) if found else pl.DataFrame(schema=TARGET_SCHEMA)


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
    contract = _text(cells.get("apply_contract")) or None
    installment_text = _text(cells.get("apply_installment"))
    installment = None
    if installment_text:
        try:
            installment = int(Decimal(installment_text))
        except ArithmeticError:
            installment = None
        if installment is None or installment < 1 or Decimal(installment_text) != installment:
            problems.append(f"{cell('apply_installment')}: {installment_text!r} is not an installment number")
            return None
    if (contract or installment) and code != "APPLIED_MANUALLY":
        problems.append(f"{cell('apply_contract')}: a contract or installment to apply to goes only with "
                        f"{resolution_label('APPLIED_MANUALLY', language)!r}")  # fmt: skip
        return None
    return Decision(key, title, number, code, note, _text(cells["reviewer"]) or None,
                    _text(cells["reviewed_on"]) or None, contract, installment)  # fmt: skip


@dataclass(frozen=True)
class Imported:
    """What an import did: resolutions applied, unchanged (already so), rows decided, and the money
    the moving ones took out of suspense (fen, by resolution code)."""

    sha256: str
    applied: int
    unchanged: int
    decided: int
    moved_fen: dict[str, int]


def apply_decisions(
    engine: Engine, sha: str, day: dt.date, decisions: list[Decision], imported_by: str, order: tuple[str, ...]
) -> Imported:
    """Each decision applied to its exception with an audit row, in one transaction and in bulk; a
    decision the exception already carries (the same workbook imported again) changes nothing. The
    moving resolutions' ledger entries are written (an earlier moving resolution's undone first), and
    installment and loan state follow."""
    table = table_of(ExceptionItem)
    now = dt.datetime.now(dt.UTC)
    by_key = {d.exception_key: d for d in decisions}
    chosen = pl.DataFrame(
        [(d.exception_key, d.sheet, d.row_no, d.resolution_code, d.note, d.reviewer or imported_by, d.reviewed_on)
         for d in decisions],
        schema={"exception_key": pl.String, "sheet": pl.String, "row_no": pl.Int64, "resolution_code": pl.String,
                "note": pl.String, "reviewer": pl.String, "reviewed_on": pl.String},
        orient="row",
    )  # fmt: skip
    schema = {"exception_key": pl.String, "status": pl.String, "resolution_code": pl.String,
              "resolution_note": pl.String}  # fmt: skip
    review_run = f"review {sha[:12]}"
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
        undone = _undo_earlier_moves(conn, changing, now, review_run)
        entries, problems = plan_moves(conn, [by_key[k] for k in changing["exception_key"]], order)
        if problems:  # the books changed between the check and now
            raise ReviewRefused(_where(decisions, problems, "en"))
        moved = _moved(entries)
        if entries.height:
            insert_frame(
                conn, table_of(LedgerEntry), entries.drop("exception_key").with_columns(run_id=pl.lit(review_run))
            )
            touched = pl.concat([undone, entries.select(INSTALLMENT_KEY)]).drop_nulls().unique()
        else:
            touched = undone.drop_nulls().unique()
        if touched.height:
            write_installment_state(conn, touched, day)
            write_loan_status(conn, touched.select("contract_no").unique())
        update_from_frame(
            conn,
            table,
            changing.select("exception_key", pl.lit("RESOLVED").alias("status"), "resolution_code",
                            pl.col("note").alias("resolution_note")),
            ["exception_key"],
        )  # fmt: skip
        audit = changing.join(moved, on="exception_key", how="left")
        insert_frame(
            conn,
            table_of(ExceptionReview),
            audit.select(
                "exception_key", pl.lit(sha).alias("workbook_sha256"), pl.lit(day).alias("workbook_date"), "sheet",
                "row_no", "resolution_code", "note", "reviewer", "reviewed_on",
                pl.lit(imported_by).alias("imported_by"), pl.lit(now).alias("imported_at"), "status_before",
                pl.col("code_before").alias("resolution_before"), "note_before", "moved_fen", "applied_to",
            ),
        )  # fmt: skip
    totals = audit.filter(pl.col("moved_fen").is_not_null()).group_by("resolution_code").agg(pl.col("moved_fen").sum())
    return Imported(sha, changing.height, both.height - changing.height, len(decisions),
                    {code: int(fen) for code, fen in totals.rows()})  # fmt: skip


def _moved(entries: pl.DataFrame) -> pl.DataFrame:
    """Per exception: the fen its entries took out of suspense, and the installment it paid."""
    schema = {"exception_key": pl.String, "moved_fen": pl.Int64, "applied_to": pl.String}
    if entries.height == 0:
        return pl.DataFrame(schema=schema)
    paid = entries.filter((pl.col("kind") == "manual") & (pl.col("held_fen") == 0))
    return (
        entries.group_by("exception_key")
        .agg((-pl.col("held_fen").sum()).alias("moved_fen"))
        .join(
            paid.select(
                "exception_key",
                pl.format("{} #{}", "contract_no", "installment_no").alias("applied_to"),
            ),
            on="exception_key",
            how="left",
        )
        .select(list(schema))
    )


def _undo_earlier_moves(conn: Connection, changing: pl.DataFrame, now: dt.datetime, review_run: str) -> pl.DataFrame:
    """A resolution that moved money and is being changed: its ledger entries are removed and its
    audit rows marked voided by this review; returns the installments they had touched."""
    earlier = changing.filter((pl.col("status_before") == "RESOLVED") & pl.col("code_before").is_in(list(MOVES_BOOKS)))
    keys = earlier["exception_key"].to_list()
    empty = pl.DataFrame(schema={"contract_no": pl.String, "installment_no": pl.Int64})
    if not keys:
        return empty
    facts = _by_key(conn, {"exception_key": pl.String, "business_date": pl.Date, "channel": pl.String,
                           "channel_txn_id": pl.String}, keys).drop_nulls()  # fmt: skip
    return undo_reviewers_entries(conn, facts, keys, now, review_run)
