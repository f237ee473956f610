"""Money as integer fen, parsed straight from text.

Amounts arrive as yuan text in many dresses: ``1,134.72``, ``¥1134.72``, ``￥ 0.50``, ``-12.3``.
They become integer fen without ever passing through a float. Yuan exist only on the way out, as
text for the workbook.
"""

from __future__ import annotations

import re

import polars as pl

from reconcile.text import format_text

_YUAN_TEXT = re.compile(r"^([+-]?)(\d+)(?:\.(\d{1,2}))?$")
_DECORATION = re.compile(r"[¥￥,\s]|元")
#: The same grammar as _YUAN_TEXT, for polars' regex engine: plain yuan text, no decoration.
YUAN_PATTERN = r"^[+-]?\d+(\.\d{1,2})?$"


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


def yuan_expr_to_fen(column: str | pl.Expr, *, plain: bool = False) -> pl.Expr:
    """A polars expression turning yuan text into Int64 fen; null where the text is not an amount.

    The caller decides what a null means (an invalid row, usually) by comparing with the input.
    ``plain=True``: the caller has checked that every text matches :data:`YUAN_PATTERN` (no
    currency sign, separators or spaces), so neither the cleaning nor the grammar is repeated.
    """
    text = pl.col(column) if isinstance(column, str) else column
    if not plain:
        decoration = ["¥", "￥", ",", " ", "\t", "\u3000", "元"]
        text = text.str.replace_many(decoration, [""] * len(decoration))
    # text → Decimal(scale 2) is exact integer arithmetic; its physical value is the fen. It would
    # round a third decimal, so the grammar is checked first and anything else is null.
    fen = text.cast(pl.Decimal(38, 2), strict=False).to_physical().cast(pl.Int64, strict=False)
    return fen if plain else pl.when(text.str.contains(YUAN_PATTERN)).then(fen)


def fen_expr_to_yuan_text(column: str | pl.Expr) -> pl.Expr:
    """A polars expression formatting Int64 fen as yuan text with two decimals."""
    fen = pl.col(column) if isinstance(column, str) else column
    sign = pl.when(fen < 0).then(pl.lit("-")).otherwise(pl.lit(""))
    magnitude = fen.abs()
    return format_text(
        "{}{}.{}",
        sign,
        (magnitude // 100).cast(pl.String),
        (magnitude % 100).cast(pl.String).str.pad_start(2, "0"),
    )
