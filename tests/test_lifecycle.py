"""The exception lifecycle and what later files settle, as pure rules over literal tables."""

from __future__ import annotations

import datetime as dt

import polars as pl

from reconcile.lifecycle import (
    EXCEPTION_COLUMNS,
    EXISTING_SCHEMA,
    ledger_changes,
    plan_exceptions,
    settled_by_later_files,
    settling_records,
)

DAY = dt.date(2026, 11, 27)
NOW = dt.datetime(2026, 11, 28, 1, 30, tzinfo=dt.UTC)


def _found(*rows: tuple[str, str]) -> pl.DataFrame:
    """(exception key, facts) found by this run"""
    base = dict.fromkeys(EXCEPTION_COLUMNS)
    return pl.DataFrame(
        [{**base, "exception_key": key, "facts": facts, "business_date": DAY, "held_fen": 0} for key, facts in rows],
        schema_overrides={c: pl.String for c in EXCEPTION_COLUMNS if c not in ("business_date", "held_fen")}
        | {"installment_no": pl.Int64, "amount_fen": pl.Int64, "line_no": pl.Int64},
    )


def _existing(*rows: tuple[str, str, int, str, str | None]) -> pl.DataFrame:
    """(key, status, occurrences, facts, resolution code) already stored for the date"""
    return pl.DataFrame(rows, schema=EXISTING_SCHEMA, orient="row")


def test_each_exception_moves_along_its_lifecycle() -> None:
    found = _found(("NEW|a", "1"), ("SEEN|b", "1"), ("REVIEWED|c", "1"), ("REVIEWED|d", "2"), ("AUTO|e", "1"))
    existing = _existing(
        ("SEEN|b", "OPEN", 1, "1", None),
        ("REVIEWED|c", "RESOLVED", 2, "1", "REFUNDED"),  # facts unchanged: the resolution stands
        ("REVIEWED|d", "RESOLVED", 1, "1", "WRITTEN_OFF"),  # facts changed 1 → 2: reopens
        ("AUTO|e", "RESOLVED", 1, "1", "AUTO"),  # resolved automatically, found again: reopens
        ("GONE|f", "OPEN", 3, "1", None),  # not found any more: resolved AUTO
        ("GONE|g", "RESOLVED", 1, "1", "REFUNDED"),  # not found, already resolved: untouched
    )
    plan = plan_exceptions(found, existing, DAY, "r9", NOW)
    assert plan.counts == {"new": 1, "seen_again": 4, "reopened": 2, "auto_resolved": 1}
    assert plan.insert.select("exception_key", "status", "occurrences", "first_seen_run").rows() == [
        ("NEW|a", "OPEN", 1, "r9")
    ]
    reopened = {row["exception_key"]: row for row in plan.reopened.iter_rows(named=True)}
    assert set(reopened) == {"REVIEWED|d", "AUTO|e"}
    assert reopened["REVIEWED|d"]["resolution_note"] == "reopened by run r9: facts changed from 1 to 2"
    assert reopened["AUTO|e"]["resolution_note"] == "reopened by run r9: found again"
    assert {r["status"] for r in reopened.values()} == {"OPEN"}
    assert all(r["resolution_code"] is None for r in reopened.values())
    seen = plan.seen_again.sort("exception_key").select("exception_key", "occurrences", "last_seen_run").rows()
    assert seen == [("REVIEWED|c", 3, "r9"), ("SEEN|b", 2, "r9")]
    assert "status" not in plan.seen_again.columns  # a standing resolution is not touched
    assert plan.resolve.rows() == [
        ("GONE|f", "RESOLVED", "AUTO", "no longer found when run r9 reconciled 2026-11-27 again")
    ]


def test_the_same_run_twice_changes_only_bookkeeping() -> None:
    found = _found(("A|1", "x"))
    first = plan_exceptions(found, _existing(), DAY, "r1", NOW)
    stored = first.insert.with_columns(resolution_code=pl.lit(None, pl.String)).select(list(EXISTING_SCHEMA))
    second = plan_exceptions(found, stored, DAY, "r2", NOW)
    assert second.counts == {"new": 0, "seen_again": 1, "reopened": 0, "auto_resolved": 0}
    assert second.seen_again["occurrences"].to_list() == [2]


def _records(*rows: tuple[str, str, str, str, int]) -> pl.DataFrame:
    """(kind, outcome, channel, reference, held) of the date's records"""
    return pl.DataFrame(
        [
            {"subject": "record", "record_kind": k, "outcome": o, "channel": c, "reference": r, "held_fen": h,
             "source_file": "bill.csv", "line_no": i + 2}
            for i, (k, o, c, r, h) in enumerate(rows)
        ]
    )  # fmt: skip


def test_later_files_settle_older_exceptions() -> None:
    records = _records(
        ("debit", "MATCHED", "icbc", "P1", 0),  # the result of P1 arrives
        ("refund", "REVERSAL", "alipay", "P2", -500),  # held money of P2 refunded
        ("refund", "REVERSAL", "alipay", "P3", 0),  # a refund of applied money settles nothing held
    )
    settling = settling_records(records)
    assert settling.select("outcome", "instruction_id").rows() == [
        ("MISSING_RESULT", "P1"),
        ("DUPLICATE_DEBIT", "P2"),
        ("OVERPAYMENT", "P2"),
    ]
    older = pl.DataFrame(
        {
            "exception_key": ["MISSING_RESULT|instruction|P1", "OVERPAYMENT|alipay|debit|T2|", "MISSING_RESULT|x"],
            "outcome": ["MISSING_RESULT", "OVERPAYMENT", "MISSING_RESULT"],
            "channel": ["icbc", "alipay", "ccb"],
            "instruction_id": ["P1", "P2", "P1"],  # the third is another channel's: not settled
        }
    )
    resolved = settled_by_later_files(older, settling, DAY, "r5").sort("exception_key")
    assert resolved.select("exception_key", "resolution_note").rows() == [
        ("MISSING_RESULT|instruction|P1", "settled by bill.csv line 2 (business date 2026-11-27, run r5)"),
        ("OVERPAYMENT|alipay|debit|T2|", "settled by bill.csv line 3 (business date 2026-11-27, run r5)"),
    ]


def test_ledger_changes_between_runs() -> None:
    columns = {
        "channel": pl.String,
        "channel_txn_id": pl.String,
        "kind": pl.String,
        "seq": pl.Int64,
        "amount_fen": pl.Int64,
    }
    before = pl.DataFrame(
        [("a", "T1", "payment", 1, 100), ("a", "T2", "payment", 1, 200)], schema=columns, orient="row"
    )
    after = pl.DataFrame([("a", "T1", "payment", 1, 150), ("a", "T3", "payment", 1, 300)], schema=columns, orient="row")
    assert ledger_changes(before, after) == {"entries_added": 1, "entries_removed": 1, "entries_changed": 1}
    assert ledger_changes(after, after) == {"entries_added": 0, "entries_removed": 0, "entries_changed": 0}
