"""settlement ledger: one row per installment a payment reaches (``seq``)

A borrower's repayment that names only the contract pays the oldest open installment first and
spills what is left to the next ones, so one payment may have several ledger rows.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 21:50:00
"""

from __future__ import annotations

import warnings

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

KEY = ["channel", "channel_txn_id", "kind"]


def upgrade() -> None:
    seq = sa.Column("seq", sa.Integer(), nullable=False, server_default="1")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot alter a primary key: the table is copied with the new one (SQLAlchemy warns
        # that the copy's key differs from the reflected one, which is the point)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*primary_key=True, not matching.*")
            with op.batch_alter_table("settlement_ledger", recreate="always") as batch_op:
                batch_op.add_column(seq)
                batch_op.create_primary_key("settlement_ledger_pkey", [*KEY, "seq"])
    else:
        op.add_column("settlement_ledger", seq)
        op.drop_constraint("settlement_ledger_pkey", "settlement_ledger", type_="primary")
        op.create_primary_key("settlement_ledger_pkey", "settlement_ledger", [*KEY, "seq"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("settlement_ledger", recreate="always") as batch_op:
            batch_op.drop_column("seq")
            batch_op.create_primary_key("settlement_ledger_pkey", KEY)
    else:
        op.drop_constraint("settlement_ledger_pkey", "settlement_ledger", type_="primary")
        op.drop_column("settlement_ledger", "seq")
        op.create_primary_key("settlement_ledger_pkey", "settlement_ledger", KEY)
