"""Plain-language explanations, in Chinese and English, of why each exception was raised.

Each sentence names the rule that fired and by how much (amounts in yuan, accounts by their last
four characters), and comes with a suggested action. A reviewer must not need the code.
"""

from __future__ import annotations

import polars as pl

from reconcile.codes import FAILURE_ACTION, NOT_EXCEPTIONS, SEVERITY, FailureReason, Outcome
from reconcile.matching import _scatter_by_row
from reconcile.money import fen_expr_to_yuan_text
from reconcile.text import format_text


def _yuan(column: str) -> pl.Expr:
    return fen_expr_to_yuan_text(pl.col(column).fill_null(0))


def _last4(column: str) -> pl.Expr:
    return pl.col(column).fill_null("????").str.slice(-4)


def _texts() -> dict[Outcome, tuple[pl.Expr, pl.Expr, pl.Expr]]:
    """Outcome → (Chinese, English, suggested action)."""
    # a repayment that spilled over several installments names them all: 第3–4期 / installments 3–4
    spilled = pl.col("last_installment_no").is_not_null() & (pl.col("last_installment_no") != pl.col("installment_no"))
    span = pl.when(spilled).then(format_text("{}–{}", "installment_no", "last_installment_no"))
    number = span.otherwise(pl.col("installment_no").cast(pl.String))
    target = format_text("{} 第{}期", pl.col("contract_no"), number)
    target_en = format_text("{} {} {}", pl.col("contract_no"), pl.when(spilled).then(pl.lit("installments"))
                          .otherwise(pl.lit("installment")), number)  # fmt: skip
    diff = fen_expr_to_yuan_text((pl.col("amount_fen") - pl.col("instr_amount_fen")).abs().fill_null(0))
    reason_action = pl.col("failure_reason").replace_strict(
        {r.value: f"{a[1]} / {a[2]}" for r, a in FAILURE_ACTION.items()},
        default=f"{FAILURE_ACTION[FailureReason.OTHER][1]} / {FAILURE_ACTION[FailureReason.OTHER][2]}",
        return_dtype=pl.String,
    )
    return {
        Outcome.PARTIAL_PAYMENT: (
            format_text("{} 收到 {} 元，未还清本期，已入账，剩余待扣。", target, _yuan("amount_fen")),
            format_text(
                "{}: received {} yuan, less than owed; applied, the rest stays due.", target_en, _yuan("amount_fen")
            ),
            pl.lit("安排补扣 / schedule a debit for the rest"),
        ),
        Outcome.OVERPAYMENT: (
            format_text(
                "{} 收到 {} 元，超出应还 {} 元，多收部分挂账待退。", target, _yuan("amount_fen"), _yuan("held_fen")
            ),
            format_text(
                "{}: received {} yuan, {} yuan more than owed; the excess is held for refund.",
                target_en,
                _yuan("amount_fen"),
                _yuan("held_fen"),
            ),
            pl.lit("退还多收款 / refund the excess"),
        ),
        Outcome.DUPLICATE_DEBIT: (
            format_text(
                "{} 已还清，又收到 {} 元（{} 渠道），未入账，挂账待退。", target, _yuan("amount_fen"), pl.col("channel")
            ),
            format_text(
                "{} was already paid; a further {} yuan via {} was not applied and is held for refund.",
                target_en,
                _yuan("amount_fen"),
                pl.col("channel"),
            ),
            pl.lit("退还重复扣款 / refund the duplicate debit"),
        ),
        Outcome.DEBIT_FAILED: (
            format_text(
                "{} 代扣 {} 元失败：{}（{}）。",
                target,
                _yuan("amount_fen"),
                pl.coalesce(pl.col("failure_text"), pl.col("failure_code"), pl.lit("无原因")),
                pl.col("failure_reason"),
            ),
            format_text(
                "{}: debit of {} yuan failed: {} ({}).",
                target_en,
                _yuan("amount_fen"),
                pl.coalesce(pl.col("failure_code"), pl.col("failure_text"), pl.lit("no reason")),
                pl.col("failure_reason"),
            ),
            reason_action,
        ),
        Outcome.UNMATCHED_DEBIT: (
            format_text(
                "{} 渠道收到 {} 元（参考号 {}），找不到对应指令或合同，挂账。",
                pl.col("channel"),
                _yuan("amount_fen"),
                pl.col("reference").fill_null("无"),
            ),
            format_text(
                "{} received {} yuan (reference {}) with no instruction or contract; held in suspense.",
                pl.col("channel"),
                _yuan("amount_fen"),
                pl.col("reference").fill_null("none"),
            ),
            pl.lit("查明付款人后入账或退回 / identify the payer, then apply or return"),
        ),
        Outcome.AMBIGUOUS_MATCH: (
            format_text(
                "{} 渠道收到 {} 元，无参考号；{} 个候选指令得分相近（{}），相差不超过阈值，未自动入账。",
                pl.col("channel"),
                _yuan("amount_fen"),
                pl.col("candidates"),
                pl.col("candidate_scores").fill_null("?"),
            ),
            format_text(
                "{} received {} yuan without a reference; {} candidate instructions scored within the margin "
                "({}), so none was chosen.",
                pl.col("channel"),
                _yuan("amount_fen"),
                pl.col("candidates"),
                pl.col("candidate_scores").fill_null("?"),
            ),
            pl.lit("人工确认对应指令 / pick the right instruction"),
        ),
        Outcome.AMOUNT_MISMATCH: (
            format_text(
                "{} 渠道金额 {} 元与指令金额 {} 元相差 {} 元，已按实收入账。",
                target,
                _yuan("amount_fen"),
                _yuan("instr_amount_fen"),
                diff,
            ),
            format_text(
                "{}: channel amount {} yuan differs from the instruction's {} yuan by {} yuan; applied as received.",
                target_en,
                _yuan("amount_fen"),
                _yuan("instr_amount_fen"),
                diff,
            ),
            pl.lit("核对渠道金额 / check the amount with the channel"),
        ),
        Outcome.ACCOUNT_MISMATCH: (
            format_text(
                "{} 扣款账户尾号 {} 与绑定账户尾号 {} 不符，已入账，高风险。",
                target,
                _last4("_shown"),
                _last4("bound_account"),
            ),
            format_text(
                "{}: debited account ending {} is not the bound account ending {}; applied, flagged high.",
                target_en,
                _last4("_shown"),
                _last4("bound_account"),
            ),
            pl.lit("核查是否冒用账户 / check for fraud or a data error"),
        ),
        Outcome.STATUS_MISMATCH: (
            format_text(
                "{} 平台记录为 {}，渠道为 {}，以渠道为准。",
                target,
                pl.col("platform_status"),
                pl.col("status").fill_null("无记录"),
            ),
            format_text(
                "{}: the platform recorded {}, the channel says {}; the channel's word counts.",
                target_en,
                pl.col("platform_status"),
                pl.col("status").fill_null("nothing"),
            ),
            pl.lit("更正平台状态 / correct the platform's status"),
        ),
        Outcome.MISSING_RESULT: (
            format_text(
                "指令 {}（{} 元）在 {} 回盘文件中没有结果。",
                pl.col("instruction_id"),
                _yuan("instr_amount_fen"),
                pl.col("channel"),
            ),
            format_text(
                "instruction {} ({} yuan) has no line in {}'s result file.",
                pl.col("instruction_id"),
                _yuan("instr_amount_fen"),
                pl.col("channel"),
            ),
            pl.lit("向渠道查询结果 / chase the channel for the result"),
        ),
        Outcome.REVERSAL: (
            format_text(
                "{} 退款/冲正 {} 元，冲回已入账 {} 元，释放挂账 {} 元。",
                pl.col("reference").fill_null("?"),
                _yuan("amount_fen"),
                fen_expr_to_yuan_text(-pl.col("applied_fen")),
                fen_expr_to_yuan_text(-pl.col("held_fen")),
            ),
            format_text(
                "{}: refund of {} yuan undid {} yuan applied and released {} yuan held.",
                pl.col("reference").fill_null("?"),
                _yuan("amount_fen"),
                fen_expr_to_yuan_text(-pl.col("applied_fen")),
                fen_expr_to_yuan_text(-pl.col("held_fen")),
            ),
            pl.lit("确认退款原因，期次已重新打开 / confirm the refund; the installment is open again"),
        ),
        Outcome.LATE_PAYMENT: (
            format_text("{} 于宽限期后还款 {} 元。", target, _yuan("amount_fen")),
            format_text("{}: {} yuan paid after the due date plus grace days.", target_en, _yuan("amount_fen")),
            pl.lit("核对罚息 / check penalty interest"),
        ),
        Outcome.INVALID_RECORD: (
            format_text("{} 第 {} 行无效：{}", pl.col("source_file"), pl.col("line_no"), pl.col("message")),
            format_text("{} line {} is invalid: {}", pl.col("source_file"), pl.col("line_no"), pl.col("message")),
            pl.lit("请渠道更正后重发 / ask the channel to correct and resend"),
        ),
        Outcome.FILE_REJECTED: (
            format_text("文件 {} 被拒收：{}", pl.col("source_file"), pl.col("message")),
            format_text("file {} was rejected: {}", pl.col("source_file"), pl.col("message")),
            pl.lit("联系渠道重发文件 / ask the channel to resend the file"),
        ),
        Outcome.MISSING_FILE: (
            format_text("{} 渠道在截止时间前未送达当日文件。", pl.col("channel")),
            format_text("{} sent no file for the business date by the cut-off.", pl.col("channel")),
            pl.lit("联系渠道 / chase the channel"),
        ),
    }


def explain(outcomes: pl.DataFrame) -> pl.DataFrame:
    """Add ``severity``, ``explanation_zh``, ``explanation_en`` and ``suggested_action``.

    Rows whose outcome is not an exception (``MATCHED``) get empty texts.
    """
    frame = outcomes
    for column, dtype in (
        ("_shown", pl.String),
        ("last_installment_no", pl.Int64),
        ("message", pl.String),
        ("candidates", pl.Int64),
        ("candidate_scores", pl.String),
    ):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, dtype).alias(column))
    frame = frame.with_columns(_shown=pl.coalesce(pl.col("_shown"), pl.col("account_shown")))
    # texts are built only for the rows that get one (most of a day is MATCHED), from only the
    # columns they read, and scattered back by row: the wide frame is never filtered nor copied
    zh, en, action = _text_exprs()
    reads = sorted({"outcome", *zh.meta.root_names(), *en.meta.root_names(), *action.meta.root_names()})
    said = (
        frame.select(reads)
        .with_row_index("_row")
        .filter(~pl.col("outcome").is_in([o.value for o in NOT_EXCEPTIONS]))
        .select("_row", zh.fill_null(""), en.fill_null(""), action.fill_null(""))
    )
    texts = [column.fill_null("") for column in _scatter_by_row(said, frame.height)]
    return frame.with_columns(severity=_severity()).with_columns(*texts, is_exception=_is_exception())


def _severity() -> pl.Expr:
    return pl.col("outcome").replace_strict({o.value: s for o, s in SEVERITY.items()}, default="MEDIUM")


def _is_exception() -> pl.Expr:
    return ~pl.col("outcome").is_in([o.value for o in NOT_EXCEPTIONS])


def _text_exprs() -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """Each row's Chinese and English texts and suggested action, by its outcome."""
    zh: pl.Expr = pl.lit("")
    en: pl.Expr = pl.lit("")
    action: pl.Expr = pl.lit("")
    for code, (text_zh, text_en, text_action) in _texts().items():
        hit = pl.col("outcome") == code.value
        zh = pl.when(hit).then(text_zh).otherwise(zh)
        en = pl.when(hit).then(text_en).otherwise(en)
        action = pl.when(hit).then(text_action).otherwise(action)
    return zh.alias("explanation_zh"), en.alias("explanation_en"), action.alias("suggested_action")


def _explain_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """The plain rule: every row's texts by its outcome (``explain`` gives the same, faster)."""
    zh, en, action = _text_exprs()
    return frame.with_columns(
        severity=_severity(),
        explanation_zh=zh.fill_null(""),
        explanation_en=en.fill_null(""),
        suggested_action=action.fill_null(""),
        is_exception=_is_exception(),
    )
