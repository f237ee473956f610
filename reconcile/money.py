"""Money as integer fen, parsed straight from text.

Amounts arrive as yuan text in many dresses: ``1,134.72``, ``¥1134.72``, ``￥ 0.50``, ``-12.3``.
They become integer fen without ever passing through a float. Yuan exist only on the way out, as
text for the workbook.
"""

from __future__ import annotations

import re

import polars as pl

_YUAN_TEXT = re.compile(r"^([+-]?)(\d+)(?:\.(\d{1,2}))?$")
_DECORATION = re.compile(r"[¥￥,\s]|元")
# The same grammar as _YUAN_TEXT, for polars' regex engine.
_YUAN_PATTERN = r"^[+-]?\d+(\.\d{1,2})?$"


class AmountError(ValueError):
    """Text that is not an amount in yuan with at most two decimals."""


def yuan_text_to_fen(text: str) -> int:
    """Parse yuan text (``"1,134.72"``, ``"¥0.5"``) into integer fen; raise AmountError otherwise."""
    cleaned = _DECORATION.sub("", text.strip())
    match = _YUAN_TEXT.match(cleaned)
    if match is None:
        raise AmountError(f"not an amount in yuan with at most two decimals: {text!r}")
    sign, whole, frac = match.groups()
    fen = int(whole) * 100 + int((frac or "").ljust(2, "0"))
    return -fen if sign == "-" else fen


def fen_to_yuan_text(fen: int) -> str:
    """Format integer fen as yuan text with two decimals: ``113472`` → ``"1134.72"``."""
    sign = "-" if fen < 0 else ""
    whole, part = divmod(abs(fen), 100)
    return f"{sign}{whole}.{part:02d}"


def yuan_expr_to_fen(column: str | pl.Expr) -> pl.Expr:
    """A polars expression turning yuan text into Int64 fen; null where the text is not an amount.

    The caller decides what a null means (an invalid row, usually) by comparing with the input.
    """
    text = pl.col(column) if isinstance(column, str) else column
    cleaned = text.str.strip_chars().str.replace_all(r"[¥￥,\s元]", "")
    valid = cleaned.str.contains(_YUAN_PATTERN)
    negative = cleaned.str.starts_with("-")
    unsigned = cleaned.str.strip_chars_start("+-")
    whole = unsigned.str.split_exact(".", 1).struct.field("field_0")
    frac = unsigned.str.split_exact(".", 1).struct.field("field_1").fill_null("").str.pad_end(2, "0")
    fen = whole.cast(pl.Int64, strict=False) * 100 + frac.cast(pl.Int64, strict=False)
    signed = pl.when(negative).then(-fen).otherwise(fen)
    return pl.when(valid).then(signed).otherwise(None).cast(pl.Int64)


def fen_expr_to_yuan_text(column: str | pl.Expr) -> pl.Expr:
    """A polars expression formatting Int64 fen as yuan text with two decimals."""
    fen = pl.col(column) if isinstance(column, str) else column
    sign = pl.when(fen < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    magnitude = fen.abs()
    return pl.format(
        "{}{}.{}",
        sign,
        (magnitude // 100).cast(pl.String),
        (magnitude % 100).cast(pl.String).str.pad_start(2, "0"),
    )
