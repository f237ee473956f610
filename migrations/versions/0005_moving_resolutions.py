"""moving resolutions: what a reviewer's refund or application by hand moved, and whether it stands

``REFUNDED`` and ``APPLIED_MANUALLY`` move held money through the ledger (``reconcile/adjustments.py``);
the review's audit row says how much moved and onto which installment, and — when a later rerun of
the date no longer holds that money — which run voided it and when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 19:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import flows.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exception_reviews") as table:
        table.add_column(sa.Column("moved_fen", sa.BigInteger(), nullable=True))
        table.add_column(sa.Column("applied_to", sa.String(length=60), nullable=True))
        table.add_column(sa.Column("voided_at", flows.db.UTCDateTime(), nullable=True))
        table.add_column(sa.Column("voided_by_run", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("exception_reviews") as table:
        for name in ("voided_by_run", "voided_at", "applied_to", "moved_fen"):
            table.drop_column(name)
