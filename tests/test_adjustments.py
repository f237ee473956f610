"""Resolutions that move the books, as pure rules over literal tables (no database)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from reconcile.adjustments import DECISION_SCHEMA, HELD_SCHEMA, TARGET_SCHEMA, plan_adjustments, voided

ORDER = ("penalty", "fee", "interest", "principal")
PAID_AT = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)


def _decisions(*rows: tuple[str, str, str, str | None, str | None, int | None]) -> pl.DataFrame:
    """(key, resolution, txn, exception's contract, target contract, target installment); channel alipay"""
    return pl.DataFrame(
        [(k, code, "alipay", txn, c, tc, ti) for k, code, txn, c, tc, ti in rows],
        schema=DECISION_SCHEMA,
        orient="row",
    )


def _ledger(*rows: tuple[str, str, int, str | None, int | None, int]) -> pl.DataFrame:
    """(txn, kind, seq, contract, installment, held fen); channel alipay, reference R-<txn>"""
    return pl.DataFrame(
        [("alipay", txn, kind, seq, f"R-{txn}", c, n, held, PAID_AT) for txn, kind, seq, c, n, held in rows],
        schema=HELD_SCHEMA,
        orient="row",
    )


def _targets(*rows: tuple[str, int, int, int, int, int]) -> pl.DataFrame:
    """(contract, installment, interest due, principal due, interest paid, principal paid)"""
    return pl.DataFrame(
        [(c, n, 0, 0, i, p, 0, 0, ip, pp) for c, n, i, p, ip, pp in rows],
        schema=TARGET_SCHEMA,
        orient="row",
    )


def _entries(frame: pl.DataFrame) -> list[tuple[object, ...]]:
    return [
        (r["channel_txn_id"], r["kind"], r["seq"], r["contract_no"], r["installment_no"], r["amount_fen"],
         r["interest_fen"], r["principal_fen"], r["held_fen"], r["outcome"])
        for r in frame.iter_rows(named=True)
    ]  # fmt: skip


def test_a_refund_by_hand_takes_the_held_money_out_of_suspense_where_it_is_held() -> None:
    entries, problems = plan_adjustments(
        _decisions(("E1", "REFUNDED", "T1", "C1", None, None), ("E2", "NO_ACTION", "T2", "C2", None, None)),
        _ledger(("T1", "payment", 1, "C1", 3, 5_000), ("T2", "payment", 1, None, None, 10_000)),
        _targets(),
        ORDER,
    )
    assert problems == {}
    assert _entries(entries) == [("T1", "release", 1, "C1", 3, -5_000, 0, 0, -5_000, "REFUNDED")]


def test_an_application_by_hand_moves_the_money_from_suspense_onto_the_installment() -> None:
    entries, problems = plan_adjustments(
        _decisions(("E1", "APPLIED_MANUALLY", "T1", "C1", None, None), ("E2", "APPLIED_MANUALLY", "T2", None, "C9", 2)),
        _ledger(("T1", "payment", 1, "C1", 3, 5_000), ("T2", "payment", 1, None, None, 12_000)),
        # C1: #3 paid off, #4 owes 100.00 interest + 833.33 principal; C9 #2 owes 150.00
        _targets(
            ("C1", 3, 10_000, 83_333, 10_000, 83_333),
            ("C1", 4, 10_000, 83_333, 0, 0),
            ("C9", 1, 0, 5_000, 0, 0),
            ("C9", 2, 2_000, 13_000, 0, 0),
        ),
        ORDER,
    )
    assert problems == {}
    assert _entries(entries) == [
        ("T1", "manual", 1, "C1", 3, -5_000, 0, 0, -5_000, "APPLIED_MANUALLY"),
        ("T1", "manual", 2, "C1", 4, 5_000, 5_000, 0, 0, "APPLIED_MANUALLY"),  # the first owing, interest first
        ("T2", "manual", 1, None, None, -12_000, 0, 0, -12_000, "APPLIED_MANUALLY"),
        ("T2", "manual", 2, "C9", 2, 12_000, 2_000, 10_000, 0, "APPLIED_MANUALLY"),
    ]
    for txn in ("T1", "T2"):  # money neither made nor lost: the entries net to zero, parts + held = amount
        rows = entries.filter(pl.col("channel_txn_id") == txn)
        assert rows["amount_fen"].sum() == 0
        assert (rows["amount_fen"] == rows["interest_fen"] + rows["principal_fen"] + rows["held_fen"]).all()
    assert entries["settled_at"].unique().to_list() == [PAID_AT]  # dated as the borrower paid


def test_what_cannot_move_is_refused_with_its_reason() -> None:
    _, problems = plan_adjustments(
        _decisions(
            ("NOTHING", "REFUNDED", "T1", "C1", None, None),  # already released by an earlier refund
            ("NO-CONTRACT", "APPLIED_MANUALLY", "T2", None, None, None),
            ("UNKNOWN", "APPLIED_MANUALLY", "T3", None, "C404", None),
            ("NO-SUCH-NO", "APPLIED_MANUALLY", "T4", None, "C1", 9),
            ("TOO-MUCH", "APPLIED_MANUALLY", "T5", None, "C1", 4),
        ),
        _ledger(
            ("T1", "payment", 1, "C1", 3, 5_000),
            ("T1", "release", 1, "C1", 3, -5_000),
            *[(t, "payment", 1, None, None, 100_000) for t in ("T2", "T3", "T4", "T5")],
        ),
        _targets(("C1", 4, 10_000, 83_333, 0, 0)),
        ORDER,
    )
    assert problems.keys() == {"NOTHING", "NO-CONTRACT", "UNKNOWN", "NO-SUCH-NO", "TOO-MUCH"}
    assert problems["NOTHING"].startswith("nothing is held for this exception")
    assert problems["UNKNOWN"] == "contract 'C404' is not in the books"
    assert problems["NO-SUCH-NO"] == "contract C1 has no installment 9"
    assert "owes 933.33 yuan" in problems["TOO-MUCH"] and "less than the 1000.00 yuan held" in problems["TOO-MUCH"]


def test_a_second_refund_after_a_reopening_numbers_its_entries_after_the_first() -> None:
    entries, problems = plan_adjustments(
        _decisions(("E1", "REFUNDED", "T1", "C1", None, None)),
        # held 80.00, 50.00 refunded earlier: 30.00 is still held
        _ledger(("T1", "payment", 1, "C1", 3, 8_000), ("T1", "release", 1, "C1", 3, -5_000)),
        _targets(),
        ORDER,
    )
    assert problems == {}
    assert _entries(entries) == [("T1", "release", 2, "C1", 3, -3_000, 0, 0, -3_000, "REFUNDED")]


def test_a_rerun_that_no_longer_holds_the_money_voids_the_reviewers_entries() -> None:
    ledger = _ledger(
        ("KEPT", "payment", 1, "C1", 3, 5_000), ("KEPT", "release", 1, "C1", 3, -5_000),
        ("GONE", "payment", 1, "C2", 1, 0), ("GONE", "manual", 1, "C2", 1, -7_000), ("GONE", "manual", 2, "C3", 1, 0),
        ("RUN-ONLY", "payment", 1, None, None, 9_000),
    )  # fmt: skip
    assert voided(ledger).rows() == [("alipay", "GONE", 0)]
