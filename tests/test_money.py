from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconcile.money import AmountError, fen_expr_to_yuan_text, fen_to_yuan_text, yuan_expr_to_fen, yuan_text_to_fen


@pytest.mark.parametrize(
    ("text", "fen"),
    [
        ("1134.72", 113472),
        ("1,134.72", 113472),
        ("¥1134.7", 113470),
        ("￥ 0.05", 5),
        ("-12.30", -1230),
        ("+3", 300),
        ("100元", 10000),
    ],
)
def test_yuan_text_becomes_exact_fen(text: str, fen: int) -> None:
    assert yuan_text_to_fen(text) == fen
    assert pl.select(yuan_expr_to_fen(pl.lit(text))).item() == fen


@pytest.mark.parametrize("text", ["2.005", "1.2.3", "abc", "", "1e3", "12.-5"])
def test_text_that_is_not_yuan_is_refused_not_rounded(text: str) -> None:
    with pytest.raises(AmountError):
        yuan_text_to_fen(text)
    assert pl.select(yuan_expr_to_fen(pl.lit(text))).item() is None


@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_fen_survive_a_round_trip_through_yuan_text(fen: int) -> None:
    text = fen_to_yuan_text(fen)
    assert yuan_text_to_fen(text) == fen
    assert pl.select(fen_expr_to_yuan_text(pl.lit(fen, pl.Int64))).item() == text
    assert pl.select(yuan_expr_to_fen(pl.lit(text))).item() == fen
