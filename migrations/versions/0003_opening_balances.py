"""installments: what the servicing system says was paid before we reconcile; open-installment index

A snapshot may carry what each installment has already had paid (``principal_paid`` … and
``paid_at``): without it a platform's whole history would turn overdue on its first run. The opening
amounts are kept apart from what the ledger derives, so a rerun derives ``opening + ledger``.

The partial index holds only open installments (``DUE``, ``PARTIALLY_PAID``) by their last day of
grace, so marking the ones that cross it reads a handful of rows, never the history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 12:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flows.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PARTS = ("principal", "interest", "fee", "penalty")
OPEN = "status IN ('DUE', 'PARTIALLY_PAID')"


def upgrade() -> None:
    with op.batch_alter_table("installments", schema=None) as batch_op:
        for part in PARTS:
            batch_op.add_column(
                sa.Column(f"opening_{part}_paid_fen", sa.BigInteger(), nullable=False, server_default="0")
            )
        batch_op.add_column(sa.Column("opening_paid_at", flows.db.UTCDateTime(), nullable=True))
    op.create_index(
        "ix_installments_open_overdue_after",
        "installments",
        ["overdue_after"],
        unique=False,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )


def downgrade() -> None:
    op.drop_index("ix_installments_open_overdue_after", table_name="installments")
    with op.batch_alter_table("installments", schema=None) as batch_op:
        batch_op.drop_column("opening_paid_at")
        for part in PARTS:
            batch_op.drop_column(f"opening_{part}_paid_fen")
