"""Two transactions that derive the state of the same installment at once — runs of two dates, or a
run and a review — must not lose either one's payment (``flows/stages/write.py::
write_installment_state`` holds ``flows/locks.py::STATE_LOCK`` until the commit)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import polars as pl
from sqlalchemy import select

from flows.db import Installment, LedgerEntry, Loan, table_of
from flows.stages.write import write_installment_state
from flows.store import connect, insert_frame

UTC = dt.UTC
PARTS = ("principal", "interest", "fee", "penalty")
KEY = pl.DataFrame({"contract_no": ["C1"], "installment_no": [1]})


def _book(url: str) -> None:
    engine = connect(url)
    with engine.begin() as conn:
        insert_frame(conn, table_of(Loan), pl.DataFrame({
            "contract_no": ["C1"], "borrower_name": ["甲"], "id_number": ["110101199001011234"],
            "phone": ["13800000000"], "principal_fen": [100_000], "annual_rate": [0.18], "term_months": [1],
            "repayment_method": ["EQUAL_PRINCIPAL"], "start_date": [dt.date(2026, 11, 1)], "grace_days": [3],
            "bound_channel": ["alipay"], "bound_account": ["6222000011112222"], "status": ["ACTIVE"],
        }))  # fmt: skip
        insert_frame(conn, table_of(Installment), pl.DataFrame({
            "contract_no": ["C1"], "installment_no": [1], "due_date": [dt.date(2026, 12, 1)],
            "overdue_after": [dt.date(2026, 12, 4)], "principal_due_fen": [100_000],
            **{f"{p}_due_fen": [0] for p in PARTS[1:]}, "status": ["DUE"],
            "paid_at": pl.Series([None], dtype=pl.Datetime("us", "UTC")),
            **{f"{p}_paid_fen": [0] for p in PARTS}, **{f"opening_{p}_paid_fen": [0] for p in PARTS},
        }))  # fmt: skip
    engine.dispose()


def _payment(txn: str, day: dt.date, principal: int) -> pl.DataFrame:
    return pl.DataFrame({
        "channel": ["alipay"], "channel_txn_id": [txn], "kind": ["payment"], "seq": [1], "business_date": [day],
        "reference": [f"I-{txn}"], "contract_no": ["C1"], "installment_no": [1], "amount_fen": [principal],
        "principal_fen": [principal], **{f"{p}_fen": [0] for p in PARTS[1:]}, "held_fen": [0],
        "settled_at": [dt.datetime.combine(day, dt.time(2), tzinfo=UTC)], "outcome": ["MATCHED_PARTIAL"],
        "run_id": [f"run-{txn}"],
    })  # fmt: skip


def test_two_dates_paying_one_installment_at_once_keep_both_payments(db_url: str) -> None:
    _book(db_url)
    engine = connect(db_url)
    first, second = dt.date(2026, 11, 27), dt.date(2026, 11, 28)
    failures: list[BaseException] = []

    def second_date() -> None:
        try:
            with engine.begin() as conn:
                insert_frame(conn, table_of(LedgerEntry), _payment("T2", second, 40_000))
                write_installment_state(conn, KEY, second)
        except BaseException as error:  # pragma: no cover - reported below
            failures.append(error)

    with engine.begin() as conn:
        insert_frame(conn, table_of(LedgerEntry), _payment("T1", first, 60_000))
        write_installment_state(conn, KEY, first)  # 60,000 of 100,000: partially paid, not committed yet
        other = threading.Thread(target=second_date)
        other.start()
        time.sleep(1.5)  # the other date has written its entry and reached its own derivation
    other.join(timeout=120)
    assert not other.is_alive() and not failures, failures
    with engine.connect() as conn:
        row = conn.execute(
            select(Installment.principal_paid_fen, Installment.status).where(Installment.contract_no == "C1")
        ).one()
    engine.dispose()
    assert tuple(row) == (100_000, "PAID")
