"""format_text writes what pl.format writes, and does not panic where pl.format does (polars 2.1)."""

from __future__ import annotations

import polars as pl
import pytest

from reconcile.text import format_text

FRAME = pl.DataFrame({"n": [1, 22, None], "s": ["a", None, "c"], "fen": [105, 0, 99]})


@pytest.mark.parametrize(
    ("template", "columns"),
    [("line {}: {}", ("n", "s")), ("{}–{}", ("n", "n")), ("x{}", ("s",)), ("{} fen", (pl.col("fen") * 2,))],
)
def test_it_writes_what_pl_format_writes(template: str, columns: tuple[pl.Expr | str, ...]) -> None:
    assert FRAME.select(format_text(template, *columns)).to_series().to_list() == (
        FRAME.select(pl.format(template, *columns)).to_series().to_list()
    )


def test_a_column_whose_first_chunk_is_empty_is_written() -> None:
    column = pl.concat([pl.Series("s", ["a"] * 100), pl.Series("s", ["b"] * 71)], rechunk=False)
    frame = pl.DataFrame({"s": column, "n": range(171)})
    kept = frame.filter(pl.Series([False] * 114 + [True] + [False] * 56))  # leaves the first chunk empty
    assert len(kept["s"].get_chunks()[0]) == 0
    assert kept.select(format_text("line {}: {}", "n", "s")).to_series().to_list() == ["line 114: b"]


def test_places_and_columns_must_agree() -> None:
    with pytest.raises(ValueError, match="2 places for 1 columns"):
        format_text("{} and {}", "n")
