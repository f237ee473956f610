from __future__ import annotations

import polars as pl
import pytest

from reconcile.masking import (
    accounts_agree_expr,
    mask_account,
    mask_card,
    mask_id_number,
    mask_name,
    mask_numbers_in_series,
    mask_numbers_in_text,
    mask_phone,
)


def test_masks_keep_only_the_documented_characters() -> None:
    assert mask_card("6222021234561234") == "622202******1234"
    assert mask_id_number("110101199001011234") == "1101**********1234"
    assert mask_phone("13800005678") == "138****5678"
    assert mask_name("张三") == "张*"
    assert mask_account("13800005678") == "138****5678"
    assert mask_card(mask_card("6222021234561234")) == "622202******1234"


def test_masked_accounts_agree_only_on_the_characters_both_sides_show() -> None:
    frame = pl.DataFrame(
        {
            "shown": ["138****5678", "138****5679", "6222****1234", "6222021234561234", None],
            "bound": ["13812345678", "13812345678", "6222021234561234", "6222021234561235", "13812345678"],
        }
    )
    assert frame.select(accounts_agree_expr("shown", "bound")).to_series().to_list() == [True, False, True, False, True]


#: Free texts and what masking them gives.
FREE_TEXT_MASKS = [
    ("卡号6222021234567891234余额不足", "卡号622202******1234余额不足"),
    (
        "D|1|P2611270000009601|6222028445740014065|李*|22450.00",
        "D|1|P2611270000009601|622202******4065|李*|22450.00",
    ),
    ("id 11010119900101123X phone 13800005678.", "id 1101**********123X phone 138****5678."),
    ("a|13800005678|6222028445740014065|x", "a|138****5678|622202******4065|x"),
    ("622202******1234 stays", "622202******1234 stays"),
    ("txn 20261127220000000096016477 is no card", "txn 20261127220000000096016477 is no card"),
    ("amount 1234567.89 and 2026-11-27", "amount 1234567.89 and 2026-11-27"),
]


@pytest.mark.parametrize(("text", "masked"), FREE_TEXT_MASKS)
def test_numbers_in_free_text_are_masked(text: str, masked: str) -> None:
    assert mask_numbers_in_text(text) == masked


def test_a_card_written_in_groups_is_masked_too() -> None:
    from reconcile.masking import mask_numbers_in_text

    assert mask_numbers_in_text("卡号 6222 0212 3456 7890 余额不足") == "卡号 6222 **** **** 7890 余额不足"
    assert mask_numbers_in_text("card 6222-0212-3456-7890-123,x") == "card 6222-****-****-****-123,x"
    assert mask_numbers_in_text("status: unknown value 6222 0212 3456 7890") == (
        "status: unknown value 6222 **** **** 7890"
    )
    assert mask_numbers_in_text("订单 2026 11 27") == "订单 2026 11 27"  # dates are not cards
    once = mask_numbers_in_text("6222 0212 3456 7890")
    assert mask_numbers_in_text(once) == once


def test_a_column_is_masked_as_each_of_its_texts() -> None:
    texts = [t for t, _ in FREE_TEXT_MASKS] + [None, "", "卡号 6222 0212 3456 7890 余额不足", "13800005678|13900005678"]
    masked = mask_numbers_in_series(pl.Series("t", texts, dtype=pl.String))
    assert masked.name == "t"
    assert masked.to_list() == [mask_numbers_in_text(t) if t is not None else None for t in texts]
    assert masked.to_list()[: len(FREE_TEXT_MASKS)] == [m for _, m in FREE_TEXT_MASKS]
    assert masked.to_list()[-1] == "138****5678|139****5678"  # one separator between two numbers
