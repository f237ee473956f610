"""The shared vocabularies: outcome codes, their precedence and severity, failure reasons.

Every input record and every due instruction ends in exactly one :class:`Outcome`. When several
rules fire on one record, the earliest in :data:`OUTCOME_PRECEDENCE` becomes the outcome and the
others are kept as flags on it.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """What happened to one record, instruction, file or channel (PRODUCT.md, "Outcomes")."""

    MATCHED = "MATCHED"
    PARTIAL_PAYMENT = "PARTIAL_PAYMENT"
    OVERPAYMENT = "OVERPAYMENT"
    DUPLICATE_DEBIT = "DUPLICATE_DEBIT"
    DEBIT_FAILED = "DEBIT_FAILED"
    UNMATCHED_DEBIT = "UNMATCHED_DEBIT"
    AMBIGUOUS_MATCH = "AMBIGUOUS_MATCH"
    AMOUNT_MISMATCH = "AMOUNT_MISMATCH"
    ACCOUNT_MISMATCH = "ACCOUNT_MISMATCH"
    STATUS_MISMATCH = "STATUS_MISMATCH"
    MISSING_RESULT = "MISSING_RESULT"
    REVERSAL = "REVERSAL"
    LATE_PAYMENT = "LATE_PAYMENT"
    INVALID_RECORD = "INVALID_RECORD"
    FILE_REJECTED = "FILE_REJECTED"
    MISSING_FILE = "MISSING_FILE"


#: When several rules fire on one record, the first of these is its outcome.
OUTCOME_PRECEDENCE: tuple[Outcome, ...] = (
    Outcome.INVALID_RECORD,
    Outcome.REVERSAL,
    Outcome.UNMATCHED_DEBIT,
    Outcome.AMBIGUOUS_MATCH,
    Outcome.DUPLICATE_DEBIT,
    Outcome.ACCOUNT_MISMATCH,
    Outcome.AMOUNT_MISMATCH,
    Outcome.STATUS_MISMATCH,
    Outcome.OVERPAYMENT,
    Outcome.PARTIAL_PAYMENT,
    Outcome.LATE_PAYMENT,
    Outcome.DEBIT_FAILED,
    Outcome.MATCHED,
)

#: Outcomes that need no human: they are not exceptions.
NOT_EXCEPTIONS: frozenset[Outcome] = frozenset({Outcome.MATCHED})

SEVERITY: dict[Outcome, str] = {
    Outcome.MATCHED: "INFO",
    Outcome.PARTIAL_PAYMENT: "LOW",
    Outcome.LATE_PAYMENT: "LOW",
    Outcome.DEBIT_FAILED: "LOW",
    Outcome.OVERPAYMENT: "MEDIUM",
    Outcome.AMOUNT_MISMATCH: "MEDIUM",
    Outcome.STATUS_MISMATCH: "MEDIUM",
    Outcome.MISSING_RESULT: "MEDIUM",
    Outcome.REVERSAL: "MEDIUM",
    Outcome.INVALID_RECORD: "MEDIUM",
    Outcome.DUPLICATE_DEBIT: "HIGH",
    Outcome.UNMATCHED_DEBIT: "HIGH",
    Outcome.AMBIGUOUS_MATCH: "HIGH",
    Outcome.ACCOUNT_MISMATCH: "HIGH",
    Outcome.FILE_REJECTED: "HIGH",
    Outcome.MISSING_FILE: "HIGH",
}

#: Chinese names of the outcomes, for sheet names and the summary.
OUTCOME_ZH: dict[Outcome, str] = {
    Outcome.MATCHED: "已匹配",
    Outcome.PARTIAL_PAYMENT: "部分还款",
    Outcome.OVERPAYMENT: "多扣款",
    Outcome.DUPLICATE_DEBIT: "重复扣款",
    Outcome.DEBIT_FAILED: "扣款失败",
    Outcome.UNMATCHED_DEBIT: "无法匹配",
    Outcome.AMBIGUOUS_MATCH: "多个候选",
    Outcome.AMOUNT_MISMATCH: "金额不符",
    Outcome.ACCOUNT_MISMATCH: "账户不符",
    Outcome.STATUS_MISMATCH: "状态不符",
    Outcome.MISSING_RESULT: "缺少回盘",
    Outcome.REVERSAL: "退款冲正",
    Outcome.LATE_PAYMENT: "逾期还款",
    Outcome.INVALID_RECORD: "无效记录",
    Outcome.FILE_REJECTED: "文件拒收",
    Outcome.MISSING_FILE: "缺少文件",
}


class FailureReason(StrEnum):
    """The one shared list every channel's failure code or text maps to."""

    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    ACCOUNT_FROZEN = "ACCOUNT_FROZEN"
    ACCOUNT_CLOSED = "ACCOUNT_CLOSED"
    NAME_ID_MISMATCH = "NAME_ID_MISMATCH"
    INVALID_ACCOUNT = "INVALID_ACCOUNT"
    NO_AGREEMENT = "NO_AGREEMENT"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    CHANNEL_ERROR = "CHANNEL_ERROR"
    OTHER = "OTHER"


#: What to do about each failure reason: (action code, Chinese, English).
FAILURE_ACTION: dict[FailureReason, tuple[str, str, str]] = {
    FailureReason.INSUFFICIENT_FUNDS: ("RETRY", "次日重新代扣", "retry the debit on the next day"),
    FailureReason.ACCOUNT_FROZEN: ("CONTACT_BORROWER", "联系借款人更换还款账户", "contact the borrower"),
    FailureReason.ACCOUNT_CLOSED: ("CONTACT_BORROWER", "联系借款人更换还款账户", "contact the borrower"),
    FailureReason.NAME_ID_MISMATCH: ("INVESTIGATE", "核对借款人身份信息", "check the borrower's identity data"),
    FailureReason.INVALID_ACCOUNT: ("CONTACT_BORROWER", "联系借款人重新绑卡", "ask the borrower to re-bind"),
    FailureReason.NO_AGREEMENT: ("RESIGN_AGREEMENT", "请借款人重新签约代扣", "have the borrower re-sign"),
    FailureReason.LIMIT_EXCEEDED: ("RETRY", "拆分金额后重新代扣", "retry in smaller debits"),
    FailureReason.CHANNEL_ERROR: ("RETRY", "稍后重新代扣", "retry later"),
    FailureReason.OTHER: ("INVESTIGATE", "人工核查失败原因", "investigate the failure reason"),
}

#: Failure words seen in Chinese result files, matched as substrings, most specific first.
FAILURE_WORDS: tuple[tuple[str, FailureReason], ...] = (
    ("余额不足", FailureReason.INSUFFICIENT_FUNDS),
    ("可用余额", FailureReason.INSUFFICIENT_FUNDS),
    ("冻结", FailureReason.ACCOUNT_FROZEN),
    ("止付", FailureReason.ACCOUNT_FROZEN),
    ("销户", FailureReason.ACCOUNT_CLOSED),
    ("已注销", FailureReason.ACCOUNT_CLOSED),
    ("户名不符", FailureReason.NAME_ID_MISMATCH),
    ("证件", FailureReason.NAME_ID_MISMATCH),
    ("账号不存在", FailureReason.INVALID_ACCOUNT),
    ("无效账户", FailureReason.INVALID_ACCOUNT),
    ("卡号错误", FailureReason.INVALID_ACCOUNT),
    ("协议", FailureReason.NO_AGREEMENT),
    ("未签约", FailureReason.NO_AGREEMENT),
    ("超限", FailureReason.LIMIT_EXCEEDED),
    ("限额", FailureReason.LIMIT_EXCEEDED),
    ("系统", FailureReason.CHANNEL_ERROR),
    ("超时", FailureReason.CHANNEL_ERROR),
)
