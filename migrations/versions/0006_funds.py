"""funds reconciliation (资金对账): statement lines, the channels' own fee and payout lines, each
date's collections and refunds, the
expected settlements with what became of them, the daily clearing proofs; longer outcome codes

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flows.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exceptions") as table:
        table.alter_column("outcome", type_=sa.String(length=32), existing_type=sa.String(length=24))
    op.create_table(
        "statement_lines",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("line_key", sa.String(length=120), primary_key=True),
        sa.Column("source_file", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("booking_date", sa.Date(), nullable=False),
        sa.Column("value_date", sa.Date(), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("reversal", sa.Boolean(), nullable=False),
        sa.Column("counterparty_name", sa.String(length=200), nullable=True),
        sa.Column("counterparty_account", sa.String(length=64), nullable=True),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("bank_reference", sa.String(length=64), nullable=True),
        sa.Column("raw_line", sa.Text(), nullable=False),
    )
    op.create_index("ix_statement_lines_value_date", "statement_lines", ["value_date"])
    op.create_table(
        "channel_settlements",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("file_sha256", sa.String(length=64), primary_key=True),
        sa.Column("line_no", sa.Integer(), primary_key=True),
        sa.Column("settlement_kind", sa.String(length=10), primary_key=True),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("channel_txn_id", sa.String(length=64), nullable=True),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("settled_at", flows.db.UTCDateTime(), nullable=True),
        sa.Column("source_file", sa.String(length=255), nullable=False),
    )
    op.create_table(
        "funds_collections",
        sa.Column("channel", sa.String(length=24), primary_key=True),
        sa.Column("merchant_id", sa.String(length=40), primary_key=True),
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("debits", sa.BigInteger(), nullable=False),
        sa.Column("gross_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunds", sa.BigInteger(), nullable=False),
        sa.Column("refunds_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_expected_fen", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
    )
    op.create_table(
        "funds_refunds",
        sa.Column("business_date", sa.Date(), primary_key=True),
        sa.Column("refund_key", sa.String(length=160), primary_key=True),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("channel_txn_id", sa.String(length=64), nullable=False),
        sa.Column("amount_fen", sa.BigInteger(), nullable=False),
        sa.Column("paid_on_date", sa.Date(), nullable=False),
    )
    op.create_table(
        "funds_expectations",
        sa.Column("expectation_key", sa.String(length=80), primary_key=True),
        sa.Column("channel", sa.String(length=24), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("gross_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunds_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_expected_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_reported_fen", sa.BigInteger(), nullable=True),
        sa.Column("net_fen", sa.BigInteger(), nullable=False),
        sa.Column("gross_stated_fen", sa.BigInteger(), nullable=True),
        sa.Column("net_stated_fen", sa.BigInteger(), nullable=True),
        sa.Column("payout_stated_fen", sa.BigInteger(), nullable=True),
        sa.Column("window_from", sa.Date(), nullable=False),
        sa.Column("window_to", sa.Date(), nullable=False),
        sa.Column("allocated_fen", sa.BigInteger(), nullable=False),
        sa.Column("remaining_fen", sa.BigInteger(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("match_pass", sa.String(length=12), nullable=True),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.Column("lines", sa.Text(), nullable=True),
        sa.Column("age_days", sa.Integer(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
    )
    op.create_index("ix_funds_expectations_business_date", "funds_expectations", ["business_date"])
    op.create_table(
        "funds_proofs",
        sa.Column("channel", sa.String(length=24), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("opening_fen", sa.BigInteger(), nullable=False),
        sa.Column("collected_fen", sa.BigInteger(), nullable=False),
        sa.Column("refunds_fen", sa.BigInteger(), nullable=False),
        sa.Column("fees_fen", sa.BigInteger(), nullable=False),
        sa.Column("settled_fen", sa.BigInteger(), nullable=False),
        sa.Column("closing_fen", sa.BigInteger(), nullable=False),
        sa.Column("reconciled", sa.Boolean(), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("run_id", sa.String(length=40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("funds_proofs")
    op.drop_index("ix_funds_expectations_business_date", table_name="funds_expectations")
    op.drop_table("funds_expectations")
    op.drop_table("funds_refunds")
    op.drop_table("funds_collections")
    op.drop_table("channel_settlements")
    op.drop_index("ix_statement_lines_value_date", table_name="statement_lines")
    op.drop_table("statement_lines")
    with op.batch_alter_table("exceptions") as table:
        table.alter_column("outcome", type_=sa.String(length=24), existing_type=sa.String(length=32))
