"""Text built from words and columns, as ``pl.format`` would build it.

Not ``pl.format`` itself: in polars 2.1 it panics on a column whose first chunk is empty, which a
filter of a frame read in chunks (a channel file, a database read) leaves behind. ``concat_str``,
which this uses, does not. The result is the same: non-text columns are written as text, and the
whole text is null where any column is null.
"""

from __future__ import annotations

import polars as pl


def format_text(template: str, *columns: pl.Expr | str) -> pl.Expr:
    """``template`` with each ``{}`` replaced by the next column (a name or an expression)."""
    words = template.split("{}")
    if len(words) != len(columns) + 1:
        raise ValueError(f"{template!r} has {len(words) - 1} places for {len(columns)} columns")
    parts: list[pl.Expr] = []
    for word, column in zip(words, [*columns, None], strict=True):
        if word:
            parts.append(pl.lit(word))
        if column is not None:
            parts.append(pl.col(column) if isinstance(column, str) else column)
    return pl.concat_str(parts)


#: Characters no text column keeps as they are: C0 controls but TAB, and DEL. PostgreSQL refuses NUL
#: in text (SQLite stores it), a spreadsheet refuses the others in a cell.
CONTROL_CHARACTERS = r"[\x00-\x08\x0a-\x1f\x7f]"


def printable_text(column: pl.Expr | str) -> pl.Expr:
    """``column`` with each control character written as ``\\xNN``, so every database and every
    spreadsheet holds exactly the same text (the archived file keeps the original bytes). One pass
    over the text for all of them (Aho-Corasick), not one per character."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.str.replace_many(list(_ESCAPES), list(_ESCAPES.values()))


#: Each character of :data:`CONTROL_CHARACTERS` and how :func:`printable_text` writes it.
_ESCAPES = {chr(code): f"\\x{code:02x}" for code in [*range(0x00, 0x09), *range(0x0A, 0x20), 0x7F]}


#: The longest text a message or a kept raw line quotes of its input; the archived file keeps all.
QUOTE_CHARS = 300


def shortened(column: pl.Expr | str, limit: int = QUOTE_CHARS) -> pl.Expr:
    """``column`` cut to ``limit`` characters, saying how long it was, so a 5 MB field never
    travels into a message, a table or a workbook cell."""
    expr = pl.col(column) if isinstance(column, str) else column
    cut = format_text("{}… (cut: {} characters)", expr.str.slice(0, limit), expr.str.len_chars().cast(pl.String))
    return pl.when(expr.str.len_chars() > limit).then(cut).otherwise(expr)
