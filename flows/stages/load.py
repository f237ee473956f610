"""Load: what the business date needs from the database, and nothing more.

Instructions requested on the date or in the fallback window before it, or named by a record;
their installments, as paid before the date (the snapshot's opening amounts plus the ledger of
earlier dates); every installment of a contract a memo names; the loans; earlier payments a refund
names. Lookups go through staged temporary tables; rows come back through the columnar path of
``flows.store.read_frame``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from sqlalchemy import Engine, func, select

from flows.db import DebitInstruction, Installment, LedgerEntry, Loan, SourceFile, table_of
from flows.store import reading, same_keys
from reconcile.books import INSTALLMENT_KEY, PARTS
from reconcile.ingest import ParsedFile
from reconcile.intake import (
    KNOWN_FILES_SCHEMA,
    accepted_records,
    file_history,
    instruction_window,
    invalid_lines,
    memo_contracts,
)
from reconcile.matching import MatchInput
from reconcile.settings import Settings
from schemas.frames import INSTRUCTION_DTYPES, PRIOR_PAYMENT_DTYPES

INSTALLMENT_DUE_SCHEMA = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "due_date": pl.Date,
    **{f"{p}_due_fen": pl.Int64 for p in PARTS},
    **{f"opening_{p}_paid_fen": pl.Int64 for p in PARTS},
}
PAID_SCHEMA = {"contract_no": pl.String, "installment_no": pl.Int64, **{f"{p}_paid_fen": pl.Int64 for p in PARTS}}
LOAN_SCHEMA = {"contract_no": pl.String, "bound_channel": pl.String, "bound_account": pl.String, "grace_days": pl.Int64}


def load_state(engine: Engine, day: dt.date, parsed: list[ParsedFile], settings: Settings) -> MatchInput:
    """Instructions, installments (as settled before ``day``), loans and earlier payments."""
    records = accepted_records(parsed)
    invalid = invalid_lines(parsed)
    window_start, end = instruction_window(day, settings)
    instructions_table = table_of(DebitInstruction)
    ledger_table = table_of(LedgerEntry)
    installment_table = table_of(Installment)
    with reading(engine) as reads:
        references = pl.concat([records.select("reference"), invalid.select("reference")]).drop_nulls().unique()
        staged_refs = reads.stage("stage_refs", references.rename({"reference": "instruction_id"}), instructions_table)
        columns = [instructions_table.c[c] for c in INSTRUCTION_DTYPES]
        recent = reads.read(
            select(*columns).where(DebitInstruction.requested_at >= window_start, DebitInstruction.requested_at < end),
            INSTRUCTION_DTYPES,
        )
        named = reads.read(
            select(*columns)
            .join(staged_refs, staged_refs.c.instruction_id == instructions_table.c.instruction_id)
            .where((DebitInstruction.requested_at < window_start) | (DebitInstruction.requested_at >= end)),
            INSTRUCTION_DTYPES,
        )
        instructions = pl.concat([recent, named]).unique("instruction_id", keep="first").sort("instruction_id")

        refund_refs = records.filter(pl.col("record_kind") == "refund").select("reference").drop_nulls().unique()
        staged_refunds = reads.stage("stage_refunds", refund_refs, ledger_table)
        prior = reads.read(
            select(*[ledger_table.c[c] for c in PRIOR_PAYMENT_DTYPES])
            .join(staged_refunds, staged_refunds.c.reference == ledger_table.c.reference)
            .where(ledger_table.c.kind == "payment", ledger_table.c.business_date < day),
            PRIOR_PAYMENT_DTYPES,
        )
        pairs = pl.concat([instructions.select(INSTALLMENT_KEY), prior.select(INSTALLMENT_KEY)]).unique()
        staged_pairs = reads.stage("stage_pairs", pairs, installment_table)
        staged_memo = reads.stage("stage_memo", memo_contracts(records), installment_table)
        due_columns = [installment_table.c[c] for c in INSTALLMENT_DUE_SCHEMA]
        by_pair = reads.read(
            select(*due_columns).join(staged_pairs, same_keys(staged_pairs, installment_table, INSTALLMENT_KEY)),
            INSTALLMENT_DUE_SCHEMA,
            by_index=True,
        )  # fmt: skip
        by_memo = reads.read(
            select(*due_columns).join(staged_memo, staged_memo.c.contract_no == installment_table.c.contract_no),
            INSTALLMENT_DUE_SCHEMA,
        )
        installments = pl.concat([by_pair, by_memo]).unique(INSTALLMENT_KEY, keep="first")
        staged_keys = reads.stage("stage_keys", installments.select(INSTALLMENT_KEY), installment_table)
        paid = reads.read(
            select(
                ledger_table.c.contract_no,
                ledger_table.c.installment_no,
                *[func.sum(ledger_table.c[f"{p}_fen"]).label(f"{p}_paid_fen") for p in PARTS],
            )
            .join(staged_keys, same_keys(staged_keys, ledger_table, INSTALLMENT_KEY))
            .where(ledger_table.c.business_date < day)
            .group_by(ledger_table.c.contract_no, ledger_table.c.installment_no),
            PAID_SCHEMA,
        )
        staged_contracts = reads.stage("stage_contracts", installments.select("contract_no").unique(), table_of(Loan))
        loans = reads.read(
            select(Loan.contract_no, Loan.bound_channel, Loan.bound_account, Loan.grace_days).join(
                staged_contracts, staged_contracts.c.contract_no == table_of(Loan).c.contract_no
            ),
            LOAN_SCHEMA,
        )
    installments = (
        installments.join(loans.select("contract_no", "grace_days"), on="contract_no", how="left")
        .join(paid, on=INSTALLMENT_KEY, how="left")
        .with_columns(
            [
                (pl.col(f"opening_{p}_paid_fen") + pl.col(f"{p}_paid_fen").fill_null(0)).alias(f"{p}_paid_fen")
                for p in PARTS
            ]
        )
        .drop([f"opening_{p}_paid_fen" for p in PARTS])
        .sort(INSTALLMENT_KEY)
    )
    return MatchInput(
        business_date=day,
        records=records,
        instructions=instructions,
        installments=installments,
        loans=loans.sort("contract_no"),
        prior_payments=prior,
        answering_channels=frozenset(p.channel for p in parsed if p.status == "ACCEPTED"),
        invalid_references=frozenset(invalid["reference"].drop_nulls().to_list()),
    )


def load_file_history(engine: Engine, day: dt.date, parsed: list[ParsedFile]) -> dict[str, dict[str, Any]]:
    """The registered files these ones repeat or supersede (see ``reconcile.intake.file_history``)."""
    staged_shas = pl.DataFrame({"sha256": [p.sha256 for p in parsed]}, schema={"sha256": pl.String}).unique()
    names = pl.DataFrame({"name": [p.source_file for p in parsed]}, schema={"name": pl.String}).unique()
    table = table_of(SourceFile)
    with reading(engine) as reads:
        shas = reads.stage("stage_shas", staged_shas, table)
        by_name = reads.stage("stage_names", names, table)
        columns = [table.c[c] for c in KNOWN_FILES_SCHEMA]
        schema = {**KNOWN_FILES_SCHEMA, "registered_at": pl.Datetime("us", "UTC")}
        known = pl.concat(
            [
                reads.read(select(*columns).join(shas, shas.c.sha256 == table.c.sha256), schema),
                reads.read(
                    select(*columns).join(by_name, by_name.c.name == table.c.name).where(table.c.business_date == day),
                    schema,
                ),
            ]
        ).unique(keep="first")
    return file_history(known, day, parsed)
