"""Funds: the night's 资金对账, in one transaction after the date's books are committed.

The date's collections are summed once from its channel records (``funds_collections``) and its
refunds tied to the dates of the payments they refund (``funds_refunds``); then every expected
settlement since ``RECON_FUNDS_FROM`` meets every statement line received
(``reconcile/funds/night.py``), as of the latest reconciled night. What it finds replaces the
expected settlements and the daily clearing proofs, and moves the funds exceptions along their
lifecycle (``reconcile/lifecycle.py``), apart from the transaction exceptions of the same dates.
Everything here is derived from the committed facts: a run killed before this commit leaves the
next run to do it again, with the same result.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import Connection, Engine, and_, delete, func, select

from flows.db import (
    ChannelRecord,
    ChannelSettlement,
    ExceptionItem,
    FundsCollection,
    FundsExpectation,
    FundsProof,
    FundsRefund,
    LedgerEntry,
    Run,
    StatementLine,
    table_of,
)
from flows.faults import checkpoint
from flows.locks import FUNDS_LOCK, hold_until_commit
from flows.runs import latest_reconciled_date
from flows.stages.write import apply_exception_plan
from flows.store import insert_frame, read_frame
from reconcile.funds.expectations import COLLECTED_SCHEMA, collected
from reconcile.funds.night import FUNDS_SUBJECTS, STAYS_OPEN, FundsNight, exception_table_rows, reconcile_funds
from reconcile.lifecycle import EXISTING_SCHEMA, plan_exceptions
from reconcile.settings import Settings
from schemas.funds import STATEMENT_DTYPES

LINE_COLUMNS = list(STATEMENT_DTYPES)

COLLECTION_SCHEMA = {"channel": pl.String, "file_sha256": pl.String, "record_kind": pl.String, "status": pl.String,
                     "amount_fen": pl.Int64, "n": pl.Int64}  # fmt: skip
REFUND_SCHEMA = {"refund_key": pl.String, "channel": pl.String, "file_sha256": pl.String, "channel_txn_id": pl.String,
                 "amount_fen": pl.Int64, "paid_on_date": pl.Date}  # fmt: skip


def _the_dates_collections(
    conn: Connection, settings: Settings, day: dt.date, run_id: str, merchants: dict[str, str]
) -> None:
    """Sum the date's records per channel, file, kind, status and amount (one grouped read), each
    file's under the merchant id it names (``merchants``: SHA-256 → merchant id; the channel's
    first configured one otherwise), and tie its refunds to the dates of their payments (the
    ledger's payment rows, by channel transaction)."""
    records = table_of(ChannelRecord)
    channels = list(settings.funds.settlement)
    counted = and_(
        records.c.business_date == day, records.c.channel.in_(channels), records.c.outcome != "INVALID_RECORD",
        records.c.status.is_not(None), records.c.record_kind.is_not(None), records.c.amount_fen.is_not(None),
    )  # fmt: skip
    grouped = read_frame(
        conn,
        select(records.c.channel, records.c.file_sha256, records.c.record_kind, records.c.status, records.c.amount_fen,
               func.count().label("n")).where(counted)
        .group_by(records.c.channel, records.c.file_sha256, records.c.record_kind, records.c.status,
                  records.c.amount_fen),
        COLLECTION_SCHEMA,
    )  # fmt: skip
    of_file = pl.col("file_sha256").replace_strict(merchants, default=None, return_dtype=pl.String)
    sums = collected(grouped.with_columns(business_date=pl.lit(day), merchant_id=of_file), settings.funds)
    conn.execute(delete(FundsCollection).where(FundsCollection.business_date == day))
    insert_frame(conn, table_of(FundsCollection), sums.with_columns(run_id=pl.lit(run_id)))
    ledger = table_of(LedgerEntry)
    refunds = read_frame(
        conn,
        select(records.c.record_key.label("refund_key"), records.c.channel, records.c.file_sha256,
               records.c.channel_txn_id, records.c.amount_fen, ledger.c.business_date.label("paid_on_date"))
        .join(ledger, and_(ledger.c.channel == records.c.channel, ledger.c.channel_txn_id == records.c.channel_txn_id,
                           ledger.c.kind == "payment", ledger.c.seq == 1))
        .where(counted, records.c.record_kind == "refund", records.c.status == "SUCCESS", ledger.c.business_date < day),
        REFUND_SCHEMA,
    )  # fmt: skip
    first = settings.funds.first_merchants
    conn.execute(delete(FundsRefund).where(FundsRefund.business_date == day))
    insert_frame(conn, table_of(FundsRefund), refunds.unique("refund_key").with_columns(
        business_date=pl.lit(day),
        merchant_id=pl.coalesce(of_file, pl.col("channel").replace_strict(first, default="-")),
    ).drop("file_sha256"))  # fmt: skip


PROOF_READ = {"channel": pl.String, "day": pl.Date, "collected_fen": pl.Int64, "refunds_fen": pl.Int64,
              "fees_fen": pl.Int64, "settled_fen": pl.Int64, "reconciled": pl.Boolean}  # fmt: skip
REFUND_READ = {"channel": pl.String, "merchant_id": pl.String, "business_date": pl.Date, "paid_on_date": pl.Date,
               "channel_txn_id": pl.String, "amount_fen": pl.Int64}  # fmt: skip


def _facts(conn: Connection, since: dt.date, as_of: dt.date) -> tuple[pl.DataFrame, ...]:
    sums = read_frame(conn, select(*[table_of(FundsCollection).c[c] for c in COLLECTED_SCHEMA]).where(
        FundsCollection.business_date.between(since, as_of)), COLLECTED_SCHEMA)  # fmt: skip
    lines = read_frame(conn, select(*[table_of(StatementLine).c[c] for c in ["business_date", *LINE_COLUMNS]]),
                       {"business_date": pl.Date, **STATEMENT_DTYPES})  # fmt: skip
    # the same bank line received on two dates (a cumulative download) is one line: the first; and
    # a night knows the lines up to its date (a run of a later date may have written some already)
    lines = lines.filter(pl.col("value_date") <= as_of)
    lines = lines.sort("business_date", "line_key").unique("line_key", keep="first").drop("business_date")
    refunds = read_frame(conn, select(*[table_of(FundsRefund).c[c] for c in REFUND_READ]).where(
        FundsRefund.business_date.between(since, as_of)), REFUND_READ)  # fmt: skip
    published = read_frame(conn, select(*[table_of(FundsProof).c[c] for c in PROOF_READ]), PROOF_READ)
    said = table_of(ChannelSettlement)
    told = read_frame(
        conn,
        select(said.c.channel, said.c.business_date, said.c.settlement_kind, func.sum(said.c.amount_fen).label("fen"))
        .where(said.c.business_date.between(since, as_of))
        .group_by(said.c.channel, said.c.business_date, said.c.settlement_kind),
        {"channel": pl.String, "business_date": pl.Date, "settlement_kind": pl.String, "fen": pl.Int64},
    )
    return sums, lines.sort("value_date", "line_key"), refunds, published, told


def funds_night(
    engine: Engine,
    settings: Settings,
    day: dt.date,
    run_id: str,
    now: dt.datetime,
    merchants: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The night's funds proofs (see the module docstring); what the run summary says of them.
    ``merchants``: the merchant id each of the date's files names (SHA-256 → merchant id)."""
    since = settings.funds_from
    if since is None or not settings.funds.settlement:
        return {"enabled": False, "why": "RECON_FUNDS_FROM is not set: funds reconciliation is off"}
    with engine.begin() as conn:
        # the night's funds rewrite every expectation and proof: one funds stage at a time (runs of
        # other dates may finish together); on SQLite the database's one writer does the same
        hold_until_commit(conn, FUNDS_LOCK)
        if day >= since:
            _the_dates_collections(conn, settings, day, run_id, merchants or {})
        latest = latest_reconciled_date(conn)
        as_of = max(day, latest) if latest else day
        if as_of < since:
            return {"enabled": True, "as_of": as_of.isoformat(), "why": f"nothing before {since.isoformat()}"}
        sums, lines, refunds, published, told = _facts(conn, since, as_of)
        fees, stated = _what_the_channels_said(told, settings)
        shown = published.filter(pl.col("reconciled") & (pl.col("day") < as_of))
        night = reconcile_funds(None, lines, settings.funds, since, as_of, sums=sums, refunds=refunds,
                                reported_fees=fees, stated=stated, published=shown)  # fmt: skip
        _write_night(conn, night, run_id, _reconciled_days(conn, day))
        checkpoint("funds_written")
        changes = _write_exceptions(conn, night, day, run_id, now)
        checkpoint("funds_before_commit")
    return night_summary(night) | {"exceptions": changes}


#: A channel's word (``channel_settlements.settlement_kind``) → the expectation's column.
STATED_KIND = {"collected": "gross_stated_fen", "net": "net_stated_fen", "payout": "payout_stated_fen"}


def _what_the_channels_said(told: pl.DataFrame, settings: Settings) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The channels' stated fees (``fee_fen``), and per date what they said they collected, settle
    net and paid out (one column each), for the channels with funds rules."""
    first = settings.funds.first_merchants
    mine = told.filter(pl.col("channel").is_in(list(first))).with_columns(
        merchant_id=pl.col("channel").replace_strict(first, default="-")
    )
    fees = mine.filter(pl.col("settlement_kind") == "fee").select(
        "channel", "merchant_id", "business_date", fee_fen="fen"
    )
    rest = mine.filter(pl.col("settlement_kind").is_in(list(STATED_KIND)))
    stated = rest.with_columns(pl.col("settlement_kind").replace_strict(STATED_KIND)).pivot(
        "settlement_kind", index=["channel", "merchant_id", "business_date"], values="fen"
    ) if rest.height else rest.select("channel", "merchant_id", "business_date")  # fmt: skip
    return fees, stated


def _reconciled_days(conn: Connection, day: dt.date) -> pl.Series:
    """The business dates reconciled so far: this one and those with a finished run."""
    done = conn.execute(select(Run.business_date).where(Run.status == "SUCCEEDED").distinct()).scalars()
    return pl.Series("day", sorted({day, *done}), dtype=pl.Date)


def _write_night(conn: Connection, night: FundsNight, run_id: str, reconciled: pl.Series) -> None:
    conn.execute(delete(FundsExpectation))
    columns = [c.name for c in table_of(FundsExpectation).columns]
    rows = night.outcomes.with_columns(as_of=pl.lit(night.as_of), run_id=pl.lit(run_id))
    insert_frame(conn, table_of(FundsExpectation), rows.select(columns))
    conn.execute(delete(FundsProof))
    proofs = night.proof.with_columns(
        reconciled=pl.col("day").is_in(reconciled.implode()), as_of=pl.lit(night.as_of), run_id=pl.lit(run_id)
    )
    insert_frame(conn, table_of(FundsProof), proofs)


def _write_exceptions(
    conn: Connection, night: FundsNight, day: dt.date, run_id: str, now: dt.datetime
) -> dict[str, int]:
    table = table_of(ExceptionItem)
    existing = read_frame(
        conn, select(*[table.c[c] for c in EXISTING_SCHEMA]).where(table.c.subject.in_(FUNDS_SUBJECTS)), EXISTING_SCHEMA
    )
    plan = plan_exceptions(exception_table_rows(night.exceptions), existing, day, run_id, now, STAYS_OPEN)
    apply_exception_plan(conn, plan)
    return plan.counts


def night_summary(night: FundsNight) -> dict[str, Any]:
    """The funds side of the run summary: the proof per channel, the outcomes, ``balanced``."""
    return {
        "enabled": True,
        "as_of": night.as_of.isoformat(),
        "balanced": night.balanced,
        "outcomes": dict(sorted(night.outcomes.group_by("outcome").len().rows())),
        "exceptions_by_outcome": dict(sorted(night.exceptions.group_by("outcome").len().rows())),
        "clearing": {
            row["channel"]: {k: v for k, v in row.items() if k != "channel"} for row in night.transit.to_dicts()
        },
        "statement_lines": night.lines.height,
    }
