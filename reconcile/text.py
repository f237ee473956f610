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
