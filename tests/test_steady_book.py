"""A steady night, not an onboarding: a generated book whose history is paid, and days shaped by
attempts per due installment (failed retries) as well as by loans."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import select

from flows.config import load_config
from flows.db import Installment, table_of
from flows.importer import write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect, read_frame
from reconcile import schedule
from reconcile import synthetic as syn
from reconcile.schedule import ScheduledInstallment
from tests.books import deliver, imported_book
from tests.dbdump import stored_outcomes
from tests.golden_days import DAYS, GOLDEN

DAY = dt.date(2026, 11, 27)
PARTS = ("principal", "interest", "fee", "penalty")
KEY = ["contract_no", "installment_no"]


def _written(days: syn.SyntheticDays, root: Path, day: dt.date) -> dict[Path, bytes]:
    """What ``recon generate`` writes for ``day``: the snapshot, the inbox and the manifest."""
    write_snapshot(root / "snapshot", days.loans, days.installments, days.instructions)
    for name, data in days.files[day].items():
        (root / "inbox" / day.isoformat()).mkdir(parents=True, exist_ok=True)
        (root / "inbox" / day.isoformat() / name).write_bytes(data)
    days.expected.write_csv(root / "manifest.csv")
    return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def _truncating_equal_principal(principal_fen: int, rate: Decimal, n: int) -> tuple[ScheduledInstallment, ...]:
    """等额本金 as the golden days were written: the monthly principal truncated to the fen."""
    share, remaining, rows = principal_fen // n, principal_fen, []
    for k in range(1, n + 1):
        principal = remaining if k == n else share
        rows.append(ScheduledInstallment(k, k, principal, int((remaining * rate).quantize(Decimal(1), ROUND_HALF_UP))))
        remaining -= principal
    return tuple(rows)


def test_the_golden_days_inputs_are_generated_byte_for_byte_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the new knobs the generator writes what it always wrote (the golden days prove it).

    The golden days' books were written when 等额本金 truncated the monthly principal; their
    snapshots are data as a servicing system exported them, so they stay, and the generator is
    compared under that schedule (``tests/test_schedule.py`` proves the rounding it has now)."""
    monkeypatch.setattr(schedule, "_equal_principal", _truncating_equal_principal)
    schedule.schedule_template.cache_clear()
    try:
        for day in DAYS:
            written = _written(syn.generate_days(day.day, day.day, day.loans, day.seed), tmp_path / day.name, day.day)
            stored = {path: (GOLDEN / day.name / path).read_bytes() for path in written}
            changed = sorted(str(path) for path in written if written[path] != stored[path])
            assert not changed, f"{day.name}: generated inputs differ from the golden day's: {changed}"
    finally:  # the cached schedules of this test's convention must not outlive it
        schedule.schedule_template.cache_clear()


def _earlier(days: syn.SyntheticDays, day: dt.date) -> pl.DataFrame:
    """The installments due before each loan's scenario installment (its paid history): a scenario's
    installment falls due on the day, or 10 days before it (``late``), and the one before it a month
    or more earlier."""
    return days.installments.filter(pl.col("due_date") < day - dt.timedelta(days=10))


def _owed(frame: pl.DataFrame) -> pl.Series:
    """What each installment still owes after what the snapshot says it has had paid."""
    owed = pl.sum_horizontal([pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen") for p in PARTS])
    return frame.select(owed.alias("owed"))["owed"]


def test_history_is_mostly_paid_with_a_realistic_share_left_open() -> None:
    plain = syn.generate_days(DAY, DAY, 3000, seed=4)
    days = syn.generate_days(DAY, DAY, 3000, seed=4, history=True)
    # the history is the snapshot's: the loans, instructions, files and manifest are the same
    assert days.loans.equals(plain.loans) and days.instructions.equals(plain.instructions)
    assert days.files == plain.files and days.expected.equals(plain.expected)
    assert days.installments.select(plain.installments.columns).equals(plain.installments)

    book = days.installments.with_columns(owed=_owed(days.installments))
    for part in PARTS:
        assert book.filter(
            (pl.col(f"{part}_paid_fen") < 0) | (pl.col(f"{part}_paid_fen") > pl.col(f"{part}_due_fen"))
        ).is_empty()
    earlier = _earlier(days, DAY).with_columns(owed=_owed(_earlier(days, DAY)))
    assert earlier.height > 5000
    paid_any = pl.sum_horizontal([pl.col(f"{p}_paid_fen") for p in PARTS]) > 0
    unpaid = earlier.filter(~paid_any).height / earlier.height
    partly = earlier.filter(paid_any & (pl.col("owed") > 0)).height / earlier.height
    assert 0.03 <= unpaid <= 0.05, unpaid
    assert 0.005 <= partly <= 0.015, partly
    # paid on or after the due date, and before the day; nothing paid of what falls due later
    paid = earlier.filter(paid_any)
    paid_day = paid["paid_at"].dt.convert_time_zone("Asia/Shanghai").dt.date()
    assert (paid_day >= paid["due_date"]).all() and (paid_day < DAY).all()
    assert earlier.filter(~paid_any)["paid_at"].is_null().all()
    later = book.join(earlier.select(KEY), on=KEY, how="anti")
    assert later.filter(pl.col("owed") != pl.sum_horizontal([f"{p}_due_fen" for p in PARTS])).is_empty()
    assert later["paid_at"].is_null().all()


def test_each_extra_attempt_is_an_earlier_failed_retry_on_a_channel_listing_failures() -> None:
    plain = syn.generate_days(DAY, DAY, 2000, seed=6)
    days = syn.generate_days(DAY, DAY, 2000, seed=6, attempts=4)
    assert days.loans.equals(plain.loans) and days.installments.equals(plain.installments)
    retries = days.instructions.join(plain.instructions, on="instruction_id", how="anti")
    assert days.instructions["instruction_id"].is_unique().all()
    kept = days.instructions.join(retries, on="instruction_id", how="anti")
    assert kept.equals(plain.instructions)  # every instruction of the scenarios is as it was

    banks = set(syn.LISTS_FAILURES)
    due = plain.instructions.group_by("contract_no").agg(
        pl.col("channel").first(), pl.col("requested_at").min().alias("first_own")
    )
    assert retries.height == 3 * due.filter(pl.col("channel").is_in(banks)).height
    assert set(retries["channel"]) <= banks and (retries["platform_status"] == "failed").all()
    timing = retries.join(due, on="contract_no")
    assert (timing["requested_at"] < timing["first_own"]).all()
    shanghai = timing["requested_at"].dt.convert_time_zone("Asia/Shanghai").dt.date()
    assert (shanghai == DAY).all()

    # every retry on icbc (whose file arrives and is accepted) is a failed line that must be DEBIT_FAILED
    manifest = days.expected.filter(pl.col("scenario") == "retry")
    assert (manifest["expected_outcome"] == "DEBIT_FAILED").all()
    assert manifest.height == retries.filter(pl.col("channel") == "icbc").height
    # the rest of the manifest is as it was; an invalid line is known by its line number, which moves
    new = days.expected.join(plain.expected, on="subject_key", how="anti")
    assert new.filter(pl.col("scenario") != "invalid").equals(manifest)
    invalid = pl.col("scenario") == "invalid"
    assert days.expected.filter(invalid).height == plain.expected.filter(invalid).height
    assert days.expected["subject_key"].is_unique().all()
    icbc = days.files[DAY][f"icbc_result_{DAY:%Y%m%d}.txt"].decode("gb18030").splitlines()
    old_icbc = plain.files[DAY][f"icbc_result_{DAY:%Y%m%d}.txt"].decode("gb18030").splitlines()
    assert len(icbc) - len(old_icbc) == manifest.height
    txn_ids = [line.split("|")[9] for line in icbc[1:]]
    assert len(set(txn_ids)) == len(txn_ids)


def test_attempts_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="attempts"):
        syn.generate_days(DAY, DAY, 10, seed=1, attempts=0)
    with pytest.raises(ValueError, match="attempts"):
        syn.generate_days(DAY, DAY, 10, seed=1, attempts=syn.MAX_ATTEMPTS + 1)


@pytest.mark.slow
def test_a_steady_night_reproduces_the_manifest_and_the_open_history_turns_overdue(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 500, 13, history=True, attempts=3)
    deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])
    engine = connect(url)

    summary = reconcile_dates(load_config(), [DAY], workbook=False, cascade=False)[0]
    assert summary["balanced"] is True
    expected = days.expected
    records = expected.filter(pl.col("subject") == "record").join(
        stored_outcomes(url), on="subject_key", how="full", coalesce=True
    )
    wrong = records.filter(pl.col("expected_outcome").ne_missing(pl.col("outcome")))
    assert wrong.height == 0, f"records whose outcome differs from the manifest:\n{wrong}"
    assert records.filter(pl.col("scenario") == "retry").height > 300
    others = expected.filter(pl.col("subject") != "record").group_by("expected_outcome").len()
    for row in others.iter_rows(named=True):
        assert summary["outcomes"][row["expected_outcome"]] >= row["len"]
    missing = expected.filter(pl.col("expected_outcome") == "MISSING_RESULT").height
    assert summary["outcomes"]["MISSING_RESULT"] == missing

    # the history: paid in the snapshot stays paid; what it left open is overdue on the first run
    with engine.connect() as conn:
        table = table_of(Installment)
        stored = read_frame(
            conn,
            select(table.c.contract_no, table.c.installment_no, table.c.status),
            {"contract_no": pl.String, "installment_no": pl.Int64, "status": pl.String},
        )
    engine.dispose()
    earlier = _earlier(days, DAY)
    history = earlier.with_columns(owed=_owed(earlier)).join(stored, on=KEY, how="left")
    assert history.height > 800 and history["status"].is_not_null().all()
    open_ = history.filter(pl.col("owed") > 0)
    assert open_.height > 0 and (open_["status"] == "OVERDUE").all(), open_.group_by("status").len()
    paid = history.filter(pl.col("owed") == 0)
    assert paid["status"].is_in(["PAID", "PAID_LATE"]).all(), paid.group_by("status").len()
    assert paid.height / history.height > 0.9
    assert paid.filter(pl.col("status") == "PAID_LATE").height > 0
