"""What each funds exception says to a person, in Chinese and English, with an action.

Every sentence names the channel, the business date, the rule that fired and by how much (yuan),
so that finance can act on the row without the code. The columns it reads are those of
:func:`reconcile.funds.night.funds_exceptions`.
"""

from __future__ import annotations

import polars as pl

from reconcile.funds.passes import FundsOutcome
from reconcile.money import fen_expr_to_yuan_text
from reconcile.text import format_text


def _yuan(column: str) -> pl.Expr:
    return fen_expr_to_yuan_text(pl.col(column).fill_null(0))


def _abs_yuan(column: str) -> pl.Expr:
    return fen_expr_to_yuan_text(pl.col(column).fill_null(0).abs())


def _texts() -> dict[FundsOutcome, tuple[pl.Expr, pl.Expr, pl.Expr]]:
    ch, day, owed = pl.col("channel").fill_null("?"), pl.col("business_date").cast(pl.String), _yuan("amount_fen")
    window = format_text("{}–{}", pl.col("window_from").cast(pl.String), pl.col("window_to").cast(pl.String))
    paid = pl.col("paid_on").cast(pl.String)
    score = pl.col("score").cast(pl.String).fill_null("-")
    days, diff = pl.col("age_days").cast(pl.String), _abs_yuan("difference_fen")
    payer = pl.col("counterparty_name").fill_null("未显示")
    payer_en = pl.col("counterparty_name").fill_null("not shown")
    return {
        FundsOutcome.SETTLEMENT_MISSING: (
            format_text("{} {} 应结算 {} 元，应在 {} 到账，至今未到（已逾 {} 个工作日）。",
                        ch, day, owed, window, days),
            format_text("{} owes {} yuan for {}, due {}; none has come ({} working days past).",
                        ch, owed, day, window, days),
            pl.lit("向渠道查询结算单与出款状态 / ask the channel for the payout and its status"),
        ),
        FundsOutcome.SETTLEMENT_LATE: (
            format_text("{} {} 的结算 {} 元于 {} 到账，晚于到账窗口 {}（{} 个工作日）。",
                        ch, day, owed, paid, window, days),
            format_text("{}'s payout of {} yuan for {} arrived {}, after its window {} ({} working days late).",
                        ch, owed, day, paid, window, days),
            pl.lit("记录延迟；屡次延迟请与渠道沟通 / note the delay; raise repeated delays with the channel"),
        ),
        FundsOutcome.SETTLEMENT_SHORT: (
            format_text("{} {} 应结算 {} 元，到账一笔少 {} 元（匹配分 {}，未自动核销）。", ch, day, owed, diff, score),
            format_text("{} owes {} yuan for {}; a credit {} yuan short came (score {}, not applied).",
                        ch, owed, day, diff, score),
            pl.lit("核对渠道结算明细，确认差额原因后人工核销 / check the channel's detail, then apply by hand"),
        ),
        FundsOutcome.SETTLEMENT_OVER: (
            format_text("{} {} 应结算 {} 元，到账一笔多 {} 元（匹配分 {}，未自动核销）。", ch, day, owed, diff, score),
            format_text("{} owes {} yuan for {}; a credit {} yuan over came (score {}, not applied).",
                        ch, owed, day, diff, score),
            pl.lit("核对多付原因，必要时退回渠道 / find why it paid more; return it if it is not ours"),
        ),
        FundsOutcome.FEE_VARIANCE: (
            format_text("{} {} 手续费 {} 元，与费率规则相差 {} 元（超出容差）。", ch, day, owed, diff),
            format_text("{} charged {} yuan of fees for {}, {} yuan from its fee rule (beyond tolerance).",
                        ch, owed, day, diff),
            pl.lit("核对签约费率与渠道账单，多收的申请退还 / check the agreed rate; claim back any excess"),
        ),
        FundsOutcome.UNEXPECTED_DEPOSIT: (
            format_text("{} 到账 {} 元（付款方 {}），没有任何应结算与之对应。", day, owed, payer),
            format_text("{} yuan arrived {} (payer {}) that no expected settlement accounts for.", owed, day, payer_en),
            pl.lit("查明来源；不属于本平台的款项退回 / find where it came from; return what is not ours"),
        ),
        FundsOutcome.DUPLICATE_CREDIT: (
            format_text("{} {} 到账 {} 元，与已核销的一笔结算完全相同，疑为重复出款。", ch, day, owed),
            format_text("{} paid {} yuan on {}, the same as a payout already applied: likely paid twice.",
                        ch, owed, day),
            pl.lit("与渠道确认后退回重复款 / confirm with the channel and return the duplicate"),
        ),
        FundsOutcome.REVERSAL_AFTER_SETTLEMENT: (
            format_text("{} {} 退款/冲正 {} 元，所退款项已结算到账；渠道应从后续结算中扣回。",
                        ch, day, _abs_yuan("amount_fen")),
            format_text("{} refunded or reversed {} yuan on {} of money paid out already; a later payout nets it.",
                        ch, _abs_yuan("amount_fen"), day),
            pl.lit("确认后续结算已扣回且只扣一次 / check a later payout takes it back, once"),
        ),
        FundsOutcome.BALANCE_DRIFT: (
            format_text("{} 清算余额与各项明细相差 {} 元（截至 {}）。", ch, diff, day),
            format_text("{}'s clearing balance differs from its items by {} yuan (as of {}).", ch, diff, day),
            pl.lit("核对当日重跑或迟到文件造成的变动 / look for a rerun or a late file that changed the day"),
        ),
    }  # fmt: skip


def explain_funds(items: pl.DataFrame) -> pl.DataFrame:
    """``items`` with ``explanation_zh``, ``explanation_en`` and ``suggested_action``."""
    zh = en = act = pl.lit(None, dtype=pl.String)
    for outcome, (chinese, english, action) in _texts().items():
        fired = pl.col("outcome") == outcome.value
        zh = pl.when(fired).then(chinese).otherwise(zh)
        en = pl.when(fired).then(english).otherwise(en)
        act = pl.when(fired).then(action).otherwise(act)
    return items.with_columns(explanation_zh=zh, explanation_en=en, suggested_action=act)
