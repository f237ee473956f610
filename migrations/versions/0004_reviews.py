"""exception reviews: the audit of resolutions imported from reviewed workbooks; the database's id

A reviewed workbook is imported back (``recon review-import``): each resolution is applied to its
exception with an audit row naming the reviewer, the workbook by SHA-256 and what changed. The
database gets an id of its own, written into each workbook, so a workbook is imported only into
the books it came from.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 16:20:00
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from alembic import op

import flows.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    identity = op.create_table(
        "database_identity",
        sa.Column("database_id", sa.String(length=36), primary_key=True),
        sa.Column("created_at", flows.db.UTCDateTime(), nullable=False),
    )
    op.bulk_insert(identity, [{"database_id": str(uuid.uuid4()), "created_at": dt.datetime.now(dt.UTC)}])
    op.create_table(
        "exception_reviews",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("exception_key", sa.String(length=200), nullable=False),
        sa.Column("workbook_sha256", sa.String(length=64), nullable=False),
        sa.Column("workbook_date", sa.Date(), nullable=False),
        sa.Column("sheet", sa.String(length=31), nullable=False),
        sa.Column("row_no", sa.Integer(), nullable=False),
        sa.Column("resolution_code", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reviewer", sa.String(length=100), nullable=False),
        sa.Column("reviewed_on", sa.String(length=40), nullable=True),
        sa.Column("imported_by", sa.String(length=100), nullable=False),
        sa.Column("imported_at", flows.db.UTCDateTime(), nullable=False),
        sa.Column("status_before", sa.String(length=10), nullable=False),
        sa.Column("resolution_before", sa.String(length=32), nullable=True),
        sa.Column("note_before", sa.Text(), nullable=True),
    )
    op.create_index("ix_exception_reviews_exception_key", "exception_reviews", ["exception_key"])


def downgrade() -> None:
    op.drop_index("ix_exception_reviews_exception_key", table_name="exception_reviews")
    op.drop_table("exception_reviews")
    op.drop_table("database_identity")
