"""Resolutions that move the books, through a reviewed workbook: a refund by hand takes held money
out of suspense, an application by hand pays an installment with it; the summary still balances to
the fen, a rerun keeps them, a rerun that no longer holds the money voids them, and what cannot move
is refused. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, func, select
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from flows.db import ChannelRecord, DebitInstruction, ExceptionItem, ExceptionReview, Installment, LedgerEntry
from flows.runner import reconcile_dates
from flows.workbook import COLUMNS, column_letter
from reconcile.books import PARTS
from tests.books import deliver, imported_book

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)
PAID = sum(getattr(Installment, f"{p}_paid_fen") for p in PARTS)
OWED = sum(getattr(Installment, f"{p}_due_fen") for p in PARTS) - PAID


def _rows(path: Path) -> dict[str, tuple[str, int, dict[str, Any]]]:
    """Every exception row of a workbook: key → (sheet, row number, cells)."""
    found = {}
    for sheet in load_workbook(path, read_only=True).worksheets:
        for number, values in enumerate(sheet.iter_rows(min_row=2, values_only=True), start=2):
            if len(values) == len(COLUMNS) and values[COLUMNS.index("exception_key")]:
                cells = dict(zip(COLUMNS, values, strict=True))
                found[str(cells["exception_key"])] = (sheet.title, number, cells)
    return found


def _fill(source: Path, target: Path, edits: dict[tuple[str, int], dict[str, Any]]) -> Path:
    book = load_workbook(source)
    for (sheet, number), values in edits.items():
        for name, value in values.items():
            book[sheet][f"{column_letter(name)}{number}"] = value
    book.save(target)
    return target


def _import(path: Path) -> Any:
    return CliRunner().invoke(app, ["review-import", str(path), "--reviewer", "李出纳"])


def test_refunds_and_applications_by_hand_move_the_books(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 300, seed=61)
    deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])
    config = load_config({**os.environ, **recon_env})
    summary = reconcile_dates(config, [DAY])[0]
    assert summary["balanced"] and summary["suspense"]["agrees"]
    assert summary["suspense"]["refunded_by_hand"] == summary["suspense"]["applied_by_hand"] == 0
    rows = _rows(Path(summary["workbook"]))
    engine = create_engine(url)
    with engine.connect() as conn:
        held = conn.execute(
            select(ExceptionItem.exception_key, ExceptionItem.outcome, ExceptionItem.held_fen, ExceptionItem.channel,
                   ExceptionItem.channel_txn_id)
            .where(ExceptionItem.held_fen > 0, ExceptionItem.status == "OPEN")
            .order_by(ExceptionItem.exception_key)
        ).all()  # fmt: skip
        nothing_held = conn.execute(
            select(ExceptionItem.exception_key).where(ExceptionItem.held_fen == 0, ExceptionItem.severity != "LOW")
        ).scalars().first()  # fmt: skip
    unmatched = next(r for r in held if r.outcome == "UNMATCHED_DEBIT")
    refunded = next(r for r in held if r.outcome in ("OVERPAYMENT", "DUPLICATE_DEBIT"))
    with engine.connect() as conn:  # an installment owing at least the unmatched money, and one owing less
        target = conn.execute(
            select(Installment.contract_no, Installment.installment_no, PAID)
            .where(Installment.status == "DUE", OWED >= unmatched.held_fen)
            .order_by(Installment.contract_no, Installment.installment_no)
        ).first()
        small = conn.execute(
            select(Installment.contract_no, Installment.installment_no)
            .where(OWED > 0, OWED < unmatched.held_fen)
            .order_by(Installment.contract_no)
        ).first()
    assert target is not None and small is not None and nothing_held is not None
    where = {key: rows[key][:2] for key in (unmatched.exception_key, refunded.exception_key, nothing_held)}

    # what cannot move is refused, naming the cell, and nothing changes
    refusals = {
        "nothing held": ({where[nothing_held]: {"resolution": "已退款给借款人", "note": "已退"}}, "nothing is held"),
        "owes less": ({where[unmatched.exception_key]: {"resolution": "已手工入账", "note": "借款人来电确认",
                                                       "apply_contract": small[0], "apply_installment": small[1]}},
                      "less than the"),
        "no contract": ({where[unmatched.exception_key]: {"resolution": "已手工入账", "note": "?"}},
                        "name the contract"),
        "not an installment": ({where[unmatched.exception_key]: {"resolution": "已手工入账", "note": "?",
                                                                "apply_contract": target[0],
                                                                "apply_installment": "第二期"}},
                               "is not an installment number"),
        "target without application": ({where[refunded.exception_key]: {"resolution": "已退款给借款人", "note": "?",
                                                                       "apply_contract": target[0]}},
                                       "goes only with"),
    }  # fmt: skip
    ledger_before = _ledger(url)
    for case, (edits, said) in refusals.items():
        done = _import(_fill(Path(summary["workbook"]), tmp_path / f"{case}.xlsx", edits))
        assert done.exit_code == 2 and said in done.output, (case, done.output)
        sheet, number = next(iter(edits))
        assert f"{sheet}!" in done.output and f"{number}:" in done.output, (case, done.output)
        assert _ledger(url) == ledger_before, case

    # a good review: the unmatched money applied to the target installment (typed in lower case with
    # spaces), the overpaid or duplicate money refunded
    reviewed = _fill(
        Path(summary["workbook"]),
        tmp_path / "reviewed.xlsx",
        {
            where[unmatched.exception_key]: {"resolution": "已手工入账", "note": "借款人来电,款项为其还款",
                                             "apply_contract": f" {target[0].lower()} ",
                                             "apply_installment": target[1]},
            where[refunded.exception_key]: {"resolution": "已退款给借款人", "note": "已通过银行转账退回"},
        },
    )  # fmt: skip
    done = _import(reviewed)
    assert done.exit_code == 0, done.output
    assert "2 resolution(s) applied" in done.output
    assert f"APPLIED_MANUALLY: {Decimal(unmatched.held_fen).scaleb(-2)} yuan moved out of suspense" in done.output
    entries = _reviewers_entries(url)
    assert sorted((e[0], e[1]) for e in entries) == sorted(
        [(unmatched.channel_txn_id, "manual"), (unmatched.channel_txn_id, "manual"),
         *[(refunded.channel_txn_id, "release")] * sum(1 for e in entries if e[1] == "release")]
    )  # fmt: skip
    assert sum(e[2] for e in entries if e[1] == "release") == -refunded.held_fen
    manual = [e for e in entries if e[1] == "manual"]
    assert sum(e[2] for e in manual) == 0 and sum(e[3] for e in manual) == -unmatched.held_fen
    assert {(e[4], e[5]) for e in manual if e[3] == 0} == {(target[0], target[1])}
    paid_now = _paid(url, target[0], target[1])
    assert paid_now == target[2] + unmatched.held_fen
    with engine.connect() as conn:
        audit = conn.execute(
            select(ExceptionReview.exception_key, ExceptionReview.moved_fen, ExceptionReview.applied_to)
        ).all()
    assert sorted(audit) == sorted(
        [(unmatched.exception_key, unmatched.held_fen, f"{target[0]} #{target[1]}"),
         (refunded.exception_key, refunded.held_fen, None)]
    )  # fmt: skip

    # customer service sees the money applied by hand on the contract's trail
    trail = CliRunner().invoke(app, ["status", target[0]])
    assert trail.exit_code == 0 and "手工入账" in trail.output, trail.output

    # the summary, written again, still balances: what was held is still held or moved by hand
    report = CliRunner().invoke(app, ["report", "--date", DAY.isoformat(), "--out", str(tmp_path / "after.xlsx")])
    assert report.exit_code == 0, report.output
    suspense = _suspense_rows(tmp_path / "after.xlsx")
    net = summary["suspense"]["held_net"]
    moved = refunded.held_fen + unmatched.held_fen
    expected = [net, net - moved, refunded.held_fen, unmatched.held_fen]
    assert suspense == [*(Decimal(fen).scaleb(-2) for fen in expected), "相符"]

    # the same workbook again moves nothing more; a rerun of the date keeps the entries
    again = _import(reviewed)
    assert again.exit_code == 0 and "0 resolution(s) applied" in again.output
    assert _reviewers_entries(url) == entries
    rerun = reconcile_dates(config, [DAY])[0]
    assert rerun["balanced"] and rerun["suspense"]["refunded_by_hand"] == refunded.held_fen
    assert rerun["suspense"]["applied_by_hand"] == unmatched.held_fen
    assert _reviewers_entries(url) == entries and _paid(url, target[0], target[1]) == paid_now

    # the instruction behind the unmatched money turns up: the rerun places it, so the application
    # by hand no longer stands: undone, its audit voided by the run, the books still balanced
    with engine.begin() as conn:
        record = conn.execute(
            select(ChannelRecord.reference, ChannelRecord.amount_fen, ChannelRecord.settled_at, ChannelRecord.channel)
            .where(ChannelRecord.channel_txn_id == unmatched.channel_txn_id)
        ).one()  # fmt: skip
        conn.execute(
            DebitInstruction.__table__.insert(),
            [{"instruction_id": record.reference, "contract_no": target[0], "installment_no": target[1],
              "channel": record.channel, "account": "6222020000000000", "amount_fen": record.amount_fen,
              "requested_at": record.settled_at - dt.timedelta(hours=1), "platform_status": "SENT",
              "platform_code": None}],
        )  # fmt: skip
    placed = reconcile_dates(config, [DAY])[0]
    assert placed["balanced"]
    assert placed["suspense"]["applied_by_hand"] == 0 and placed["suspense"]["refunded_by_hand"] == refunded.held_fen
    assert [e for e in _reviewers_entries(url) if e[1] == "manual"] == []
    with engine.connect() as conn:
        voided = conn.execute(
            select(ExceptionReview.voided_by_run).where(ExceptionReview.exception_key == unmatched.exception_key)
        ).scalar_one()
        kept = conn.execute(
            select(ExceptionReview.voided_by_run).where(ExceptionReview.exception_key == refunded.exception_key)
        ).scalar_one()
    assert voided == placed["run_id"] and kept is None

    # a later review changes the refund into a decision that moves nothing: its entries are undone first
    no_action = {"resolution": "无需处理", "note": "渠道已原路退回,非手工退款"}
    cleared = {"resolution": None, "apply_contract": None, "apply_installment": None, "note": None}
    changed = _fill(reviewed, tmp_path / "changed.xlsx",
                    {where[refunded.exception_key]: no_action, where[unmatched.exception_key]: cleared})  # fmt: skip
    done = _import(changed)
    assert done.exit_code == 0, done.output
    assert [e for e in _reviewers_entries(url) if e[1] == "release"] == []
    with engine.connect() as conn:
        undone = conn.execute(
            select(ExceptionReview.voided_by_run).where(ExceptionReview.exception_key == refunded.exception_key,
                                                        ExceptionReview.moved_fen.is_not(None))
        ).scalar_one()  # fmt: skip
    assert undone is not None and undone.startswith("review ")
    engine.dispose()


def _ledger(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(select(LedgerEntry.channel_txn_id, LedgerEntry.kind, LedgerEntry.seq,
                                   LedgerEntry.amount_fen, LedgerEntry.held_fen)).all()  # fmt: skip
    engine.dispose()
    return sorted(tuple(r) for r in rows)


def _reviewers_entries(url: str) -> list[tuple[Any, ...]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(LedgerEntry.channel_txn_id, LedgerEntry.kind, LedgerEntry.amount_fen, LedgerEntry.held_fen,
                   LedgerEntry.contract_no, LedgerEntry.installment_no, LedgerEntry.seq)
            .where(LedgerEntry.kind.not_in(["payment", "reversal"]))
        ).all()  # fmt: skip
    engine.dispose()
    return sorted(tuple(r) for r in rows)


def _paid(url: str, contract: str, number: int) -> int:
    engine = create_engine(url)
    with engine.connect() as conn:
        paid = conn.execute(
            select(func.sum(PAID)).where(Installment.contract_no == contract, Installment.installment_no == number)
        ).scalar_one()
    engine.dispose()
    return int(paid)


def _suspense_rows(path: Path) -> list[Any]:
    """The values of the summary's held-money line (after its label)."""
    sheet = load_workbook(path, read_only=True).worksheets[0]
    lines = list(sheet.iter_rows(values_only=True))
    header = next(i for i, r in enumerate(lines) if r and r[0] == "挂账(元)")
    return [Decimal(str(v)) if isinstance(v, int | float) else v for v in lines[header + 1][1:6]]
