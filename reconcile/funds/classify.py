"""Which channel a statement line is from, and what it is to the funds passes.

A line is a channel's when its counterparty is one of the channel's paying accounts (by number,
digits only) or names (after NFKC and without spaces), or — when the bank shows no counterparty —
when its narrative (摘要 / 附言 / :86:) holds one of the channel's reference words. A line two
channels claim is nobody's: never a guess. A channel's debit whose narrative speaks of a fee
(手续费, 服务费, fee) is a fee billed apart; every other line of a channel is a settlement line
(credits, reversals, claw-backs). What is nobody's is ``other``: a credit there is an unexpected
deposit.

The narrative's dates (``20261001``, ``2026-10-01``, ``2026年10月1日``) are the business dates the
payout says it covers (a channel writes them in its payout's 附言); a line that names dates only
settles those.
"""

from __future__ import annotations

import unicodedata

import polars as pl

from reconcile.funds.rules import FundsRules

FEE_WORDS = ("手续费", "服务费", "费用", "FEE", "CHARGE")
#: Dates a narrative may name, in the spellings channels use.
DATE_PATTERN = r"(20\d\d)[-/.年]?([01]\d)[-/.月]?([0-3]\d)(?:日)?"


def _plain(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split()).upper()


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _plain_expr(column: str) -> pl.Expr:
    return pl.col(column).str.normalize("NFKC").str.replace_all(r"\s", "").str.to_uppercase()


def named_dates_expr(column: str = "narrative") -> pl.Expr:
    """The valid dates the text names, as a list of dates (empty when none)."""
    found = pl.col(column).fill_null("").str.extract_all(DATE_PATTERN)
    digits = found.list.eval(pl.element().str.replace_all(r"\D", ""))
    return digits.list.eval(pl.element().str.to_date("%Y%m%d", strict=False).drop_nulls().unique().sort())


def classify(lines: pl.DataFrame, rules: FundsRules) -> pl.DataFrame:
    """``lines`` (:class:`schemas.funds.StatementLineFrame`) with ``channel`` (null: nobody's),
    ``merchant_id`` (null unless the narrative names one of the channel's), ``line_kind``
    (``settlement``, ``fee``, ``other``) and ``named_dates``."""
    name = _plain_expr("counterparty_name").fill_null("")
    account = pl.col("counterparty_account").fill_null("").str.replace_all(r"\D", "")
    narrative = _plain_expr("narrative").fill_null("")
    claims = []
    for channel, spec in rules.settlement.items():
        names = [_plain(n) for n in spec.payer_names if n.strip()]
        accounts = [_digits(a) for a in spec.payer_accounts if _digits(a)]
        words = [_plain(w) for w in spec.reference_words if w.strip()]
        by_party = pl.lit(False)
        if names:
            by_party = by_party | name.is_in(names)
        if accounts:
            by_party = by_party | account.is_in(accounts)
        shown = (name != "") | (account != "")
        by_words = pl.lit(False)
        for word in words:
            by_words = by_words | narrative.str.contains(word, literal=True)
        claims.append(pl.when(by_party | (~shown & by_words)).then(pl.lit(channel)))
    claimed = pl.concat_list(claims).list.drop_nulls() if claims else pl.lit([], dtype=pl.List(pl.String))
    framed = lines.with_columns(_claims=claimed).with_columns(
        channel=pl.when(pl.col("_claims").list.len() == 1).then(pl.col("_claims").list.first()),
        named_dates=named_dates_expr(),
    )
    merchant = pl.lit(None, dtype=pl.String)
    for channel, spec in rules.settlement.items():
        for merchant_id in spec.merchant_ids:
            if merchant_id != "-":
                merchant = (
                    pl.when((pl.col("channel") == channel) & narrative.str.contains(_plain(merchant_id), literal=True))
                    .then(pl.lit(merchant_id))
                    .otherwise(merchant)
                )
    fee = pl.lit(False)
    for word in FEE_WORDS:
        fee = fee | narrative.str.contains(_plain(word), literal=True)
    kind = (
        pl.when(pl.col("channel").is_null()).then(pl.lit("other"))
        .when((pl.col("amount_fen") < 0) & ~pl.col("reversal") & fee).then(pl.lit("fee"))
        .otherwise(pl.lit("settlement"))
    )  # fmt: skip
    return framed.with_columns(merchant_id=merchant, line_kind=kind).drop("_claims")
