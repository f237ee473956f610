"""open exceptions found by index: the older ones a night's records may settle, the older ones a
workbook shows

A night looks among older ``OPEN`` exceptions for those its records settle (a ``MISSING_RESULT``
answered, a ``DUPLICATE_DEBIT`` or ``OVERPAYMENT`` refunded), and each workbook lists every older
``OPEN`` one a person must act on (not ``LOW``). With only the index by date both read every older
date's exceptions, whatever their status, so a night grew with the history kept. Two partial
indexes hold only the open ones; resolved history costs neither query anything.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# the same literals as flows.db's OPEN_EXCEPTIONS_SQL and OPEN_ACTIONABLE_SQL (a migration keeps its own)
OPEN = sa.text("status = 'OPEN'")
OPEN_ACTIONABLE = sa.text("status = 'OPEN' AND severity <> 'LOW'")


def upgrade() -> None:
    op.create_index(
        "ix_exceptions_open_by_outcome", "exceptions", ["outcome", "business_date"],
        postgresql_where=OPEN, sqlite_where=OPEN,
    )  # fmt: skip
    op.create_index(
        "ix_exceptions_open_actionable", "exceptions", ["business_date"],
        postgresql_where=OPEN_ACTIONABLE, sqlite_where=OPEN_ACTIONABLE,
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index("ix_exceptions_open_actionable", "exceptions")
    op.drop_index("ix_exceptions_open_by_outcome", "exceptions")
