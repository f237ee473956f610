"""Masking of personal data before it reaches a report, a log or a Prefect artifact.

Cards keep their first six and last four digits (``622202******1234``), ID numbers their first four
and last four (``1101**********1234``), phones their first three and last four (``138****5678``),
names their first character (``张*``). Masking is idempotent: a masked value stays as it is.
"""

from __future__ import annotations

import polars as pl


def _keep_ends(value: str, head: int, tail: int) -> str:
    if len(value) <= head + tail:
        return "*" * len(value) if len(value) > 4 else value[:1] + "*" * max(len(value) - 1, 0)
    return value[:head] + "*" * (len(value) - head - tail) + value[len(value) - tail :]


def mask_card(card: str) -> str:
    """``6222021234567891234`` → ``622202*********1234``."""
    return _keep_ends(card, 6, 4)


def mask_id_number(id_number: str) -> str:
    """``110101199001011234`` → ``1101**********1234``."""
    return _keep_ends(id_number, 4, 4)


def mask_phone(phone: str) -> str:
    """``13800005678`` → ``138****5678``."""
    return _keep_ends(phone, 3, 4)


def mask_name(name: str) -> str:
    """``张三丰`` → ``张**``."""
    return name[:1] + "*" * (len(name) - 1) if name else name


def mask_account(account: str) -> str:
    """Any bound account: a phone-like Alipay login, an e-mail, a card number or an agreement id."""
    if "@" in account:
        local, _, domain = account.partition("@")
        return _keep_ends(local, 2, 0) + "@" + domain
    if len(account) == 11 and account.isdigit():
        return mask_phone(account)
    return mask_card(account)


def mask_account_expr(column: str) -> pl.Expr:
    """Vectorised :func:`mask_account` (for cards and phone-like logins, the shapes we bind)."""
    value = pl.col(column)
    length = value.str.len_chars()
    phone = value.str.slice(0, 3) + pl.lit("****") + value.str.slice(-4)
    stars = pl.lit("*").repeat_by((length - 10).clip(lower_bound=1)).list.join("")
    card = value.str.slice(0, 6) + stars + value.str.slice(-4)
    return (
        pl.when(value.is_null())
        .then(None)
        .when(length <= 4)
        .then(value)
        .when(length == 11)
        .then(phone)
        .when(length <= 10)
        .then(value.str.slice(0, 1) + pl.lit("*").repeat_by(length - 1).list.join(""))
        .otherwise(card)
    )


def accounts_agree_expr(shown: str, bound: str) -> pl.Expr:
    """Whether a channel's account (maybe masked, ``138****5678``) can be the bound account.

    Channels often show accounts partly masked; only the characters both sides show are compared:
    the visible head must start the bound account and the visible tail must end it. A null on
    either side cannot be compared and counts as agreeing (the absence is reported elsewhere).
    """
    shown_col, bound_col = pl.col(shown), pl.col(bound)
    has_mask = shown_col.str.contains("*", literal=True)
    head = shown_col.str.extract(r"^([^*]*)", 1)
    tail = shown_col.str.extract(r"([^*]*)$", 1)
    masked_agree = bound_col.str.starts_with(head) & bound_col.str.ends_with(tail)
    agree = pl.when(has_mask).then(masked_agree).otherwise(shown_col == bound_col)
    return (shown_col.is_null() | bound_col.is_null() | agree).fill_null(True)


# Numbers that look like personal data inside free text (a quoted line, a reason): an ID number (18
# characters, the last may be X), a card (15–19 digits), a mobile phone (11 digits from 13… to 19…).
# A number glued to letters (an order id such as P2611270001) is not one of them.
_EDGE = r"(^|[^0-9A-Za-z*])"
_END = r"($|[^0-9A-Za-z*])"
_GROUPED_CARDS = tuple(
    (_EDGE + pattern.replace(" ", separator) + _END, replacement.replace(" ", separator))
    for separator in (" ", "-")
    for pattern, replacement in (
        (r"(\d{4}) \d{4} \d{4} \d{4} (\d{3})", "${1}${2} **** **** **** ${3}${4}"),
        (r"(\d{4}) \d{4} \d{4} (\d{4})", "${1}${2} **** **** ${3}${4}"),
    )
)
_TEXT_PATTERNS = (
    # a card written in groups, as people type it (6222 0212 3456 7890, 6222-0212-3456-7890)
    *_GROUPED_CARDS,
    (_EDGE + r"(\d{4})\d{10}(\d{3}[0-9Xx])" + _END, "${1}${2}**********${3}${4}"),
    (_EDGE + r"(\d{6})\d{5,9}(\d{4})" + _END, "${1}${2}******${3}${4}"),
    (_EDGE + r"(1[3-9]\d)\d{4}(\d{4})" + _END, "${1}${2}****${3}${4}"),
)


def mask_numbers_in_text_expr(column: str | pl.Expr) -> pl.Expr:
    """Card, ID and phone numbers inside a text column masked, the rest of the text as it was
    (``卡号 6222021234567891234 余额不足`` → ``卡号 622202******1234 余额不足``)."""
    expr = pl.col(column) if isinstance(column, str) else column
    for pattern, replacement in _TEXT_PATTERNS:
        # twice: two numbers one separator apart share it, and a match consumes it
        expr = expr.str.replace_all(pattern, replacement).str.replace_all(pattern, replacement)
    return expr


def mask_numbers_in_series(values: pl.Series) -> pl.Series:
    """:func:`mask_numbers_in_text_expr` of a whole column, replacing only in the texts a pattern
    is found in: each pattern's search costs a seventh of its replacement, and most texts hold no
    number to mask (a day's million raw lines: 5.5 s → under 1 s)."""
    for pattern, replacement in _TEXT_PATTERNS:
        found = values.str.contains(pattern).fill_null(False)
        if not found.any():
            continue
        at = found.arg_true()
        masked = values.gather(at).str.replace_all(pattern, replacement).str.replace_all(pattern, replacement)
        values = values.scatter(at, masked)
    return values


def mask_numbers_in_text(text: str) -> str:
    """:func:`mask_numbers_in_text_expr` for one text."""
    return str(pl.select(mask_numbers_in_text_expr(pl.lit(text))).item())


#: Words an organisation's name carries; a payer's name without one may be a person's.
ORGANISATION_WORDS = (
    r"(公司|银行|有限|集团|中心|合作社|商行|商店|事务所|支行|分行|(?i:ltd|limited|\bco\b|inc|gmbh|bank|corp))"
)


def mask_party_name_expr(column: str | pl.Expr) -> pl.Expr:
    """A statement counterparty's name: an organisation's as it is (``财付通支付科技有限公司``), any
    other as a person's, masked (``张三`` → ``张*``): a borrower may repay by bank transfer."""
    expr = pl.col(column) if isinstance(column, str) else column
    person = pl.concat_str(expr.str.slice(0, 1), pl.lit("*").repeat_by(expr.str.len_chars() - 1).list.join(""))
    return pl.when(expr.is_null()).then(None).when(expr.str.contains(ORGANISATION_WORDS)).then(expr).otherwise(person)
