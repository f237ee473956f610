"""Alembic migrations of the reconciliation database."""
