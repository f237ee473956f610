from __future__ import annotations

import polars as pl

from reconcile.masking import accounts_agree_expr, mask_account, mask_card, mask_id_number, mask_name, mask_phone


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
