"""Stable keys: the same problem found again gets the same key, whatever run finds it.

| subject | key |
| --- | --- |
| a channel record | ``channel|kind|channel transaction id|refund request no`` |
| an invalid line | ``channel|line|file|line no`` |
| an instruction left without a result | ``instruction|id`` |
| a rejected file | ``file|name`` |
| a channel whose file did not come | ``channel|id|YYYY-MM-DD`` |
| an exception | ``outcome|subject key`` |

A key is built here and nowhere else (the matcher, the intake, the exception lifecycle and the
generator's ground truth all call these).
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from reconcile.text import format_text


def record_key_expr() -> pl.Expr:
    """A channel record: needs ``channel``, ``record_kind``, ``channel_txn_id``, ``refund_request_no``."""
    return pl.concat_str(
        [
            pl.col("channel"),
            pl.col("record_kind"),
            pl.col("channel_txn_id"),
            pl.col("refund_request_no").fill_null(""),
        ],
        separator="|",
    )


def invalid_line_key_expr() -> pl.Expr:
    """A line that failed validation: needs ``channel``, ``source_file``, ``line_no``.

    An XML file may hold several transactions on one line (a message written without line
    breaks): the second and later invalid ones of a line are told apart by their place on it
    (``…|1#2``), in the file's order.
    """
    line = format_text("{}|line|{}|{}", pl.col("channel"), pl.col("source_file"), pl.col("line_no"))
    nth = pl.int_range(1, pl.len() + 1).over("channel", "source_file", "line_no")
    return pl.when(nth > 1).then(format_text("{}#{}", line, nth)).otherwise(line)


def instruction_key_expr(column: str | pl.Expr = "instruction_id") -> pl.Expr:
    """An instruction that got no result of its own."""
    return format_text("instruction|{}", column)


def file_key(name: str) -> str:
    """A file rejected whole."""
    return f"file|{name}"


def missing_file_key(channel: str, day: dt.date) -> str:
    """A channel expected on ``day`` that sent nothing."""
    return f"channel|{channel}|{day.isoformat()}"


def exception_key_expr() -> pl.Expr:
    """An exception: its outcome and its subject's key (needs ``outcome``, ``subject_key``)."""
    return format_text("{}|{}", pl.col("outcome"), pl.col("subject_key"))
