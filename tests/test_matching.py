"""Business scenarios as small literal tables: installments, instructions, channel records → outcomes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.config import load_channel_config
from reconcile.explain import explain
from reconcile.matching import MatchInput, match_day
from reconcile.settings import settings_from_mapping
from reconcile.summary import is_balanced, money_totals
from schemas.frames import INSTRUCTION_DTYPES, PRIOR_PAYMENT_DTYPES

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, 11, 26, 18 + hour, minute, tzinfo=dt.UTC)  # 02:00 Shanghai is 18:00 UTC the day before


def day_of(
    records: list[dict[str, Any]],
    instructions: list[dict[str, Any]],
    owed: dict[tuple[str, int], int] | None = None,
    due: dt.date = DAY,
) -> MatchInput:
    owed = owed or {("C1", 1): 100_000}
    installments = pl.DataFrame(
        [
            {
                "contract_no": c,
                "installment_no": n,
                "due_date": due,
                "grace_days": 3,
                "penalty_due_fen": 0,
                "fee_due_fen": 0,
                "interest_due_fen": amount // 10,
                "principal_due_fen": amount - amount // 10,
                "penalty_paid_fen": 0,
                "fee_paid_fen": 0,
                "interest_paid_fen": 0,
                "principal_paid_fen": 0,
            }
            for (c, n), amount in owed.items()
        ]
    )
    loans = pl.DataFrame(
        [{"contract_no": c, "bound_channel": "icbc", "bound_account": "6222021234561234"} for c, _ in owed]
    ).unique()
    instruction_frame = pl.DataFrame(
        [
            {
                "contract_no": "C1",
                "installment_no": 1,
                "channel": "icbc",
                "account": "6222021234561234",
                "requested_at": at(0),
                "platform_status": "success",
                "platform_code": None,
                **row,
            }
            for row in instructions
        ],
        schema=INSTRUCTION_DTYPES,
    )
    record_frame = pl.DataFrame(
        [
            {
                "source_file": "f.txt",
                "file_sha256": "0" * 64,
                "line_no": i + 2,
                "raw_line": "",
                "channel": "icbc",
                "record_kind": "debit",
                "status": "SUCCESS",
                "settled_at": at(1, i),
                "account_shown": "6222021234561234",
                "memo": None,
                "failure_code": None,
                "failure_text": None,
                "failure_reason": None,
                "refund_request_no": None,
                "channel_txn_id": f"T{i}",
                **row,
            }
            for i, row in enumerate(records)
        ],
        schema_overrides={
            "settled_at": pl.Datetime("us", "UTC"),
            "memo": pl.String,
            "failure_code": pl.String,
            "failure_text": pl.String,
            "failure_reason": pl.String,
            "refund_request_no": pl.String,
            "reference": pl.String,
        },
    )
    prior = pl.DataFrame(schema=PRIOR_PAYMENT_DTYPES)
    return MatchInput(DAY, record_frame, instruction_frame, installments, loans, prior, frozenset({"icbc"}))


def outcomes(data: MatchInput) -> list[tuple[str, str, int, int]]:
    result = match_day(data, SETTINGS).outcomes.sort("subject", "line_no", "subject_key")
    return [(r["outcome"], r["flags"], r["applied_fen"], r["held_fen"]) for r in result.iter_rows(named=True)]


def test_exact_reference_and_amount_is_matched() -> None:
    data = day_of([{"reference": "I1", "amount_fen": 100_000}], [{"instruction_id": "I1", "amount_fen": 100_000}])
    assert outcomes(data) == [("MATCHED", "", 100_000, 0)]


def test_second_success_for_a_paid_installment_is_a_duplicate_held_for_refund() -> None:
    data = day_of(
        [{"reference": "I1", "amount_fen": 100_000}, {"reference": "I2", "amount_fen": 100_000}],
        [{"instruction_id": "I1", "amount_fen": 100_000}, {"instruction_id": "I2", "amount_fen": 100_000}],
    )
    assert outcomes(data) == [("MATCHED", "", 100_000, 0), ("DUPLICATE_DEBIT", "", 0, 100_000)]


def test_overpayment_pays_the_installment_and_holds_the_excess() -> None:
    data = day_of([{"reference": "I1", "amount_fen": 100_050}], [{"instruction_id": "I1", "amount_fen": 100_050}])
    assert outcomes(data) == [("OVERPAYMENT", "", 100_000, 50)]


def test_one_fen_short_is_partial_and_exact_is_not() -> None:
    short = day_of([{"reference": "I1", "amount_fen": 99_999}], [{"instruction_id": "I1", "amount_fen": 99_999}])
    assert outcomes(short) == [("PARTIAL_PAYMENT", "", 99_999, 0)]


def test_split_debits_that_add_up_are_both_matched() -> None:
    data = day_of(
        [{"reference": "I1", "amount_fen": 40_000}, {"reference": "I2", "amount_fen": 60_000}],
        [{"instruction_id": "I1", "amount_fen": 40_000}, {"instruction_id": "I2", "amount_fen": 60_000}],
    )
    assert outcomes(data) == [("MATCHED", "", 40_000, 0), ("MATCHED", "", 60_000, 0)]


def test_amount_differing_by_one_fen_is_flagged_and_applied_as_received() -> None:
    data = day_of([{"reference": "I1", "amount_fen": 99_999}], [{"instruction_id": "I1", "amount_fen": 100_000}])
    assert outcomes(data) == [("AMOUNT_MISMATCH", "PARTIAL_PAYMENT", 99_999, 0)]


def test_failed_debit_keeps_its_reason_and_a_missing_line_is_missing_result() -> None:
    data = day_of(
        [{"reference": "I1", "amount_fen": 100_000, "status": "FAILED", "failure_reason": "INSUFFICIENT_FUNDS"}],
        [
            {"instruction_id": "I1", "amount_fen": 100_000, "platform_status": "failed"},
            {"instruction_id": "I2", "amount_fen": 100_000, "platform_status": "unknown"},
        ],
    )
    assert outcomes(data) == [("MISSING_RESULT", "", 0, 0), ("DEBIT_FAILED", "", 0, 0)]


def test_platform_failed_but_channel_paid_is_a_status_mismatch_and_money_counts() -> None:
    data = day_of(
        [{"reference": "I1", "amount_fen": 100_000}],
        [{"instruction_id": "I1", "amount_fen": 100_000, "platform_status": "failed"}],
    )
    assert outcomes(data) == [("STATUS_MISMATCH", "", 100_000, 0)]


def test_debit_from_another_account_is_flagged_high() -> None:
    data = day_of(
        [{"reference": "I1", "amount_fen": 100_000, "account_shown": "6217009999991234"}],
        [{"instruction_id": "I1", "amount_fen": 100_000}],
    )
    assert outcomes(data) == [("ACCOUNT_MISMATCH", "", 100_000, 0)]
    # the same when the caller joined the bound account onto the installments (loans unused)
    joined = data.installments.join(data.loans.select("contract_no", "bound_account"), on="contract_no")
    denormalised = replace(data, installments=joined, loans=data.loans.clear())
    assert outcomes(denormalised) == [("ACCOUNT_MISMATCH", "", 100_000, 0)]
    masked = replace(denormalised, records=data.records.with_columns(account_shown=pl.lit("6222****1234")))
    assert outcomes(masked) == [("MATCHED", "", 100_000, 0)]


def test_paid_after_grace_is_late() -> None:
    inside = day_of(
        [{"reference": "I1", "amount_fen": 100_000}],
        [{"instruction_id": "I1", "amount_fen": 100_000}],
        due=DAY - dt.timedelta(days=3),
    )
    outside = day_of(
        [{"reference": "I1", "amount_fen": 100_000}],
        [{"instruction_id": "I1", "amount_fen": 100_000}],
        due=DAY - dt.timedelta(days=4),
    )
    assert outcomes(inside)[0][0] == "MATCHED"
    assert outcomes(outside)[0][0] == "LATE_PAYMENT"
    # the last day of grace ends at midnight Shanghai time (16:00 UTC): a second either side
    last_second = dt.datetime(2026, 11, 27, 15, 59, 59, tzinfo=dt.UTC)
    for settled, expected in ((last_second, "MATCHED"), (last_second + dt.timedelta(seconds=1), "LATE_PAYMENT")):
        data = day_of(
            [{"reference": "I1", "amount_fen": 100_000, "settled_at": settled}],
            [{"instruction_id": "I1", "amount_fen": 100_000}],
            due=DAY - dt.timedelta(days=3),
        )
        assert outcomes(data)[0][0] == expected


def test_unknown_reference_is_unmatched_and_held() -> None:
    data = day_of([{"reference": "X9", "amount_fen": 100_000}], [])
    assert outcomes(data) == [("UNMATCHED_DEBIT", "", 0, 100_000)]


def test_fallback_with_two_equal_candidates_is_ambiguous_never_a_guess() -> None:
    one = day_of([{"reference": None, "amount_fen": 100_000}], [{"instruction_id": "I1", "amount_fen": 100_000}])
    two = day_of(
        [{"reference": None, "amount_fen": 100_000}],
        [{"instruction_id": "I1", "amount_fen": 100_000}, {"instruction_id": "I2", "amount_fen": 100_000}],
    )
    assert outcomes(one) == [("MATCHED", "", 100_000, 0)]
    assert outcomes(two)[0][0:1] == ("AMBIGUOUS_MATCH",)
    assert outcomes(two)[0][3] == 100_000


def test_refund_undoes_the_payment_and_reopens_the_installment() -> None:
    data = day_of(
        [
            {"reference": "I1", "amount_fen": 100_000},
            {"reference": "I1", "amount_fen": 100_000, "record_kind": "refund", "refund_request_no": "R1"},
        ],
        [{"instruction_id": "I1", "amount_fen": 100_000}],
    )
    result = match_day(data, SETTINGS)
    assert sorted(result.outcomes["outcome"].to_list()) == ["MATCHED", "REVERSAL"]
    ledger = result.ledger
    assert ledger.select(pl.sum_horizontal("penalty_fen", "fee_fen", "interest_fen", "principal_fen")).sum().item() == 0
    reversal = ledger.filter(pl.col("kind") == "reversal").row(0, named=True)
    assert (reversal["principal_fen"], reversal["interest_fen"]) == (-90_000, -10_000)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 3), st.integers(1, 150_000), st.booleans(), st.sampled_from(["I", "X", "M"])),
        min_size=1,
        max_size=12,
    ),
    st.randoms(use_true_random=False),
)
def test_money_is_never_lost_and_row_order_does_not_matter(rows: list[tuple[int, int, bool, str]], rng: Any) -> None:
    records = [
        {
            "reference": None if kind == "M" else f"{kind}{target}",  # M: the borrower's own, naming C1
            "memo": "C1 还款" if kind == "M" else None,
            "amount_fen": amount,
            "status": "SUCCESS" if ok else "FAILED",
            "channel_txn_id": f"T{i}",
        }
        for i, (target, amount, ok, kind) in enumerate(rows)
    ]
    instructions = [{"instruction_id": f"I{n}", "amount_fen": 50_000, "installment_no": n} for n in (1, 2, 3)]
    owed = {("C1", 1): 50_000, ("C1", 2): 70_000, ("C1", 3): 30_000}
    data = day_of(records, instructions, owed)
    first = match_day(data, SETTINGS).outcomes
    fen = money_totals(first)
    assert is_balanced(fen)
    assert fen["received"] == sum(r["amount_fen"] for r in records if r["status"] == "SUCCESS")
    assert first.filter(pl.col("subject") == "record").height == len(records)
    shuffled = data.records.sample(fraction=1.0, shuffle=True, seed=rng.randrange(1000))
    second = match_day(
        MatchInput(
            DAY,
            shuffled,
            data.instructions,
            data.installments,
            data.loans,
            data.prior_payments,
            data.answering_channels,
        ),
        SETTINGS,
    ).outcomes
    assert first.sort("subject_key").equals(second.sort("subject_key"))


def _memo_day(amount: int, *others: dict[str, Any], owed: dict[tuple[str, int], int] | None = None) -> MatchInput:
    """A repayment naming contract C1 in its memo (reference M1: an app order no, not ours)."""
    memo = {"reference": "M1", "memo": "C1 主动还款", "amount_fen": amount, "channel": "alipay", "settled_at": at(1, 5)}
    return day_of([memo, *others], [{"instruction_id": "I2", "installment_no": 2, "amount_fen": 100_000}],
                  owed or {("C1", 1): 100_000, ("C1", 2): 100_000})  # fmt: skip


def paid(data: MatchInput) -> list[tuple[str, str, int, int]]:
    """Outcomes of the records only (the instruction left without a line is not the point here)."""
    return [row for row, subject in zip(outcomes(data), _subjects(data), strict=True) if subject == "record"]


def _subjects(data: MatchInput) -> list[str]:
    return match_day(data, SETTINGS).outcomes.sort("subject", "line_no", "subject_key")["subject"].to_list()


def _ledger(data: MatchInput) -> list[tuple[str, str, int, int, int, int]]:
    """(kind, transaction, seq, installment, fen onto its parts, held) of each ledger row."""
    ledger = match_day(data, SETTINGS).ledger.sort("kind", "channel_txn_id", "seq")
    applied = pl.sum_horizontal("penalty_fen", "fee_fen", "interest_fen", "principal_fen")
    ledger = ledger.with_columns(_applied=applied)
    return [
        (r["kind"], r["channel_txn_id"], r["seq"], r["installment_no"], r["_applied"], r["held_fen"])
        for r in ledger.iter_rows(named=True)
    ]


def test_a_memo_repayment_pays_the_oldest_installment_and_spills_to_the_next() -> None:
    exact = _memo_day(200_000)
    assert paid(exact) == [("MATCHED", "", 200_000, 0)]
    assert _ledger(exact) == [("payment", "T0", 1, 1, 100_000, 0), ("payment", "T0", 2, 2, 100_000, 0)]
    # one fen more than the contract owes is held on the last installment; one fen less leaves it open
    assert paid(_memo_day(200_001)) == [("OVERPAYMENT", "", 200_000, 1)]
    assert _ledger(_memo_day(200_001))[-1] == ("payment", "T0", 2, 2, 100_000, 1)
    assert paid(_memo_day(199_999)) == [("PARTIAL_PAYMENT", "", 199_999, 0)]
    # the explanation names every installment the money reached
    explained = explain(match_day(_memo_day(199_999), SETTINGS).outcomes).filter(pl.col("subject") == "record")
    assert explained["explanation_zh"][0].startswith("C1 第1–2期 收到 1999.99 元")
    assert explained["explanation_en"][0].startswith("C1 installments 1–2: received 1999.99 yuan")
    # what the first installment takes is settled first: no spill when it takes everything
    assert _ledger(_memo_day(100_000)) == [("payment", "T0", 1, 1, 100_000, 0)]


def test_a_spilling_repayment_meets_other_payments_in_settled_time_order() -> None:
    # instruction I2 paid installment 2 at 01:00, before the memo repayment (01:05) spilled there
    direct = {"reference": "I2", "amount_fen": 100_000, "settled_at": at(1, 0), "channel_txn_id": "D1"}
    data = _memo_day(150_000, direct)
    assert sorted(paid(data)) == [("MATCHED", "", 100_000, 0), ("OVERPAYMENT", "", 100_000, 50_000)]
    assert _ledger(data) == [
        ("payment", "D1", 1, 2, 100_000, 0),
        ("payment", "T0", 1, 1, 100_000, 0),
        ("payment", "T0", 2, 2, 0, 50_000),
    ]
    # paid at 01:10 instead, the direct debit finds installment 2 already half paid by the spill
    later = _memo_day(150_000, {**direct, "settled_at": at(1, 10)})
    assert sorted(paid(later)) == [("MATCHED", "", 150_000, 0), ("OVERPAYMENT", "", 50_000, 50_000)]


def test_a_store_repayment_after_the_auto_debit_paid_the_installment_is_a_duplicate_not_a_prepayment() -> None:
    debit = {"reference": "I1", "amount_fen": 100_000, "settled_at": at(1, 0), "channel_txn_id": "D1"}
    store = {"reference": None, "memo": "C1 门店还款", "amount_fen": 100_000, "channel": "offline",
             "settled_at": at(1, 30), "channel_txn_id": "S1"}  # fmt: skip
    data = day_of([debit, store], [{"instruction_id": "I1", "amount_fen": 100_000}],
                  {("C1", 1): 100_000, ("C1", 2): 100_000})  # fmt: skip
    assert paid(data) == [("MATCHED", "", 100_000, 0), ("DUPLICATE_DEBIT", "", 0, 100_000)]
    assert _ledger(data) == [("payment", "D1", 1, 1, 100_000, 0), ("payment", "S1", 1, 1, 0, 100_000)]


def test_refund_of_a_spilled_repayment_undoes_every_installment_it_reached_latest_first() -> None:
    refund = {"reference": "M1", "amount_fen": 120_000, "record_kind": "refund", "refund_request_no": "R1",
              "channel": "alipay", "settled_at": at(2)}  # fmt: skip
    data = _memo_day(150_000, refund)
    result = match_day(data, SETTINGS)
    reversal = result.outcomes.filter(pl.col("outcome") == "REVERSAL").row(0, named=True)
    assert (reversal["applied_fen"], reversal["held_fen"], reversal["installment_no"]) == (-120_000, 0, 1)
    assert _ledger(data)[-2:] == [("reversal", "R1", 1, 1, -70_000, 0), ("reversal", "R1", 2, 2, -50_000, 0)]
    assert is_balanced(money_totals(result.outcomes))


def _fallback(record_amount: int, instructions: list[dict[str, Any]], **knobs: Any) -> tuple[str, str]:
    data = day_of([{"reference": None, "amount_fen": record_amount}], instructions)
    result = match_day(data, replace(SETTINGS, **knobs)).outcomes.filter(pl.col("subject") == "record")
    row = result.row(0, named=True)
    return row["outcome"], row["instruction_id"] or ""


def test_fallback_amount_tolerance_just_inside_and_just_outside() -> None:
    instruction = [{"instruction_id": "I1", "amount_fen": 100_000}]
    assert _fallback(99_900, instruction, amount_tolerance_fen=100)[0] == "AMOUNT_MISMATCH"
    assert _fallback(99_899, instruction, amount_tolerance_fen=100)[0] == "UNMATCHED_DEBIT"


def test_fallback_window_just_inside_and_just_outside() -> None:
    settled = at(1, 0)  # the first record settles at 01:00 after the base time
    inside = [{"instruction_id": "I1", "amount_fen": 100_000, "requested_at": settled - dt.timedelta(days=3)}]
    outside = [{"instruction_id": "I1", "amount_fen": 100_000,
                "requested_at": settled - dt.timedelta(days=3, microseconds=1)}]  # fmt: skip
    assert _fallback(100_000, inside, fallback_threshold=0) == ("MATCHED", "I1")
    assert _fallback(100_000, outside, fallback_threshold=0)[0] == "UNMATCHED_DEBIT"


def test_fallback_margin_decides_between_a_clear_best_and_an_ambiguity() -> None:
    settled = at(1, 0)
    two = [
        {"instruction_id": "I1", "amount_fen": 100_000, "requested_at": settled - dt.timedelta(minutes=1)},
        {"instruction_id": "I2", "amount_fen": 100_000, "requested_at": settled - dt.timedelta(days=2)},
    ]
    # scores: I1 = 40 + 40 + 19, I2 = 40 + 40 + 6: 13 apart
    assert _fallback(100_000, two, ambiguity_margin=12) == ("MATCHED", "I1")
    assert _fallback(100_000, two, ambiguity_margin=13)[0] == "AMBIGUOUS_MATCH"


def test_fallback_threshold_just_inside_and_just_outside() -> None:
    settled = at(1, 0)
    one = [{"instruction_id": "I1", "amount_fen": 100_000, "requested_at": settled - dt.timedelta(minutes=1)}]
    assert _fallback(100_000, one, fallback_threshold=99) == ("MATCHED", "I1")
    assert _fallback(100_000, one, fallback_threshold=100)[0] == "UNMATCHED_DEBIT"


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=1, max_value=4), st.randoms(use_true_random=False))
def test_splitting_records_across_files_and_matching_twice_change_nothing(parts: int, rng: Any) -> None:
    records = [{"reference": f"I{n}", "amount_fen": 40_000 + n, "channel_txn_id": f"T{n}"} for n in (1, 2, 3)]
    records.append({"reference": "X9", "amount_fen": 5, "channel_txn_id": "T9"})
    instructions = [{"instruction_id": f"I{n}", "amount_fen": 40_000, "installment_no": 1} for n in (1, 2, 3)]
    data = day_of(records, instructions, {("C1", 1): 100_000})
    once = match_day(data, SETTINGS)
    assert once.outcomes.sort("subject_key").equals(match_day(data, SETTINGS).outcomes.sort("subject_key"))
    files = [f"f{rng.randrange(parts)}.txt" for _ in range(data.records.height)]
    split = data.records.with_columns(source_file=pl.Series(files))
    regrouped = match_day(replace(data, records=split), SETTINGS).outcomes
    assert (
        regrouped.drop("source_file").sort("subject_key").equals(once.outcomes.drop("source_file").sort("subject_key"))
    )
    by_key = ["channel", "channel_txn_id", "kind"]
    assert once.ledger.sort(by_key).equals(match_day(replace(data, records=split), SETTINGS).ledger.sort(by_key))
