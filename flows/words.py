"""The workbook's words in Chinese (the default) and English: labels, and each code a reviewer
reads (outcome, status, severity, file status, resolution). Codes stay in columns of their own
where a machine reads them back."""

from __future__ import annotations

import re
from typing import Any

from reconcile.codes import OUTCOME_ZH, Outcome

LANGUAGES = ("zh", "en")

OUTCOME_EN: dict[Outcome, str] = {
    Outcome.MATCHED: "matched",
    Outcome.PARTIAL_PAYMENT: "partial payment",
    Outcome.OVERPAYMENT: "overpayment",
    Outcome.DUPLICATE_DEBIT: "duplicate debit",
    Outcome.DEBIT_FAILED: "debit failed",
    Outcome.UNMATCHED_DEBIT: "unmatched debit",
    Outcome.AMBIGUOUS_MATCH: "ambiguous match",
    Outcome.AMOUNT_MISMATCH: "amount mismatch",
    Outcome.ACCOUNT_MISMATCH: "account mismatch",
    Outcome.STATUS_MISMATCH: "status mismatch",
    Outcome.MISSING_RESULT: "missing result",
    Outcome.REVERSAL: "reversal",
    Outcome.LATE_PAYMENT: "late payment",
    Outcome.INVALID_RECORD: "invalid record",
    Outcome.FILE_REJECTED: "file rejected",
    Outcome.MISSING_FILE: "missing file",
}

#: funds outcome → (Chinese, English) (资金对账)
FUNDS_OUTCOMES: dict[str, tuple[str, str]] = {
    "SETTLED": ("已结算", "settled"),
    "SETTLEMENT_PENDING": ("在途（窗口内）", "in transit (in window)"),
    "SETTLEMENT_LATE": ("结算延迟", "settled late"),
    "SETTLEMENT_MISSING": ("结算未到账", "settlement missing"),
    "SETTLEMENT_SHORT": ("结算少付", "settlement short"),
    "SETTLEMENT_OVER": ("结算多付", "settlement over"),
    "FEE_VARIANCE": ("手续费差异", "fee variance"),
    "UNEXPECTED_DEPOSIT": ("不明来账", "unexpected deposit"),
    "DUPLICATE_CREDIT": ("重复到账", "duplicate credit"),
    "REVERSAL_AFTER_SETTLEMENT": ("结算后退款", "reversal after settlement"),
    "BALANCE_DRIFT": ("清算余额差异", "balance drift"),
}

#: code → (Chinese, English)
CODES: dict[str, tuple[str, str]] = {
    "OPEN": ("未处理", "open"),
    "RESOLVED": ("已处理", "resolved"),
    "HIGH": ("高", "high"),
    "MEDIUM": ("中", "medium"),
    "LOW": ("低", "low"),
    "ACCEPTED": ("已接收", "accepted"),
    "REJECTED": ("已拒收", "rejected"),
    "SKIPPED": ("已跳过(重复)", "skipped (a copy)"),
}

#: The resolutions a reviewer may choose: code → (Chinese, English). Each needs a note (PRODUCT.md:
#: an exception is resolved "with a resolution code and a mandatory note").
RESOLUTIONS: dict[str, tuple[str, str]] = {
    "REFUNDED": ("已退款给借款人", "refunded to the borrower"),
    "APPLIED_MANUALLY": ("已手工入账", "applied by hand"),
    "CHANNEL_CORRECTED": ("渠道已更正", "corrected by the channel"),
    "WRITTEN_OFF": ("已核销", "written off"),
    "NO_ACTION": ("无需处理", "no action needed"),
    "OTHER": ("其他", "other"),
}

#: (Chinese, English) of every label the workbook writes.
LABELS: dict[str, tuple[str, str]] = {
    "summary": ("总览", "Summary"),
    "funds": ("资金对账", "Funds"),
    "funds_as_of": ("截至", "as of"),
    "clearing": ("清算账户（渠道）", "clearing account (channel)"),
    "closing": ("余额", "balance"),
    "pending": ("在途·窗口内", "in transit, in window"),
    "overdue": ("在途·已逾期", "in transit, overdue"),
    "surplus": ("多到账", "credits owed nobody"),
    "unexplained": ("未解释", "unexplained"),
    "drained": ("已清零", "drained"),
    "oldest_overdue": ("最长逾期(工作日)", "oldest overdue (working days)"),
    "overdue_0_2": ("逾期0–2个工作日", "overdue 0–2 working days"),
    "overdue_3_5": ("逾期3–5个工作日", "overdue 3–5 working days"),
    "overdue_6_plus": ("逾期6个工作日以上", "overdue 6+ working days"),
    "expected_settlements": ("应结算", "expected settlements"),
    "merchant": ("商户号", "merchant id"),
    "gross": ("收款", "collected"),
    "refunds": ("退款", "refunds"),
    "fee_expected": ("应收手续费", "fee by rule"),
    "fee_stated": ("渠道手续费", "fee stated"),
    "net": ("应结算净额", "net owed"),
    "gross_stated": ("渠道称收款", "collected (channel)"),
    "net_stated": ("渠道称结算净额", "net (channel)"),
    "payout_stated": ("渠道称出款", "paid out (channel)"),
    "window": ("到账窗口", "window"),
    "paid_on": ("到账日", "paid on"),
    "allocated": ("已核销", "allocated"),
    "remaining": ("未到账", "remaining"),
    "instructions": ("填写说明", "Instructions"),
    "item": ("项目", "item"),
    "value": ("值", "value"),
    "business_date": ("业务日期", "business date"),
    "run_id": ("运行号", "run id"),
    "balanced": ("是否轧平", "balanced"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    "tie_out": ("资金勾稽(元)", "tie-out (yuan)"),
    "channel": ("渠道", "channel"),
    "received": ("实收", "received"),
    "applied": ("入账", "applied"),
    "held": ("挂账", "held"),
    "check_received": ("实收 = 入账 + 挂账", "received = applied + held"),
    "reversed": ("退款冲正", "reversed"),
    "unapplied": ("冲回入账", "unapplied"),
    "released": ("释放挂账", "released"),
    "check_reversed": ("冲正 = 冲回 + 释放", "reversed = unapplied + released"),
    "day_total": ("全日合计", "whole day"),
    "suspense": ("挂账(元)", "held money (yuan)"),
    "held_net": ("挂账净额", "held, net of releases"),
    "still_held": ("仍挂账", "still held"),
    "refunded_by_hand": ("手工退款", "refunded by hand"),
    "applied_by_hand": ("手工入账", "applied by hand"),
    "check_suspense": ("挂账净额 = 仍挂账 + 手工退款 + 手工入账", "net held = still held + refunded + applied by hand"),
    "ok": ("相符", "agrees"),
    "off": ("不符", "DISAGREES"),
    "counts": ("笔数说明", "what the counts are"),
    "records": ("渠道记录", "channel records"),
    "instruction": ("无回盘的代扣指令", "instructions without a result"),
    "file": ("被拒收的文件", "files rejected whole"),
    "missing_channel": ("未送达文件的渠道", "channels that sent no file"),
    "outcomes_total": ("结果合计(= 以上各项之和)", "outcomes (= the sum of the above)"),
    "outcome": ("结果", "outcome"),
    "code": ("代码", "code"),
    "count": ("笔数", "count"),
    "amount": ("金额(元)", "amount (yuan)"),
    "total": ("合计", "total"),
    "low_detail": ("低风险(明细见 CSV 文件)", "low severity (listed in the CSV file)"),
    "files": ("文件", "files"),
    "file_name": ("文件名", "file"),
    "status": ("状态", "status"),
    "rows": ("行数", "lines"),
    "stated": ("文件声明(笔/元)", "stated (count / yuan)"),
    "counted": ("实际(笔/元)", "counted (count / yuan)"),
    "reason": ("原因与说明", "reason and notes"),
    "ageing": ("未处理异常账龄", "open exceptions by age"),
    "age_bucket": ("账龄(天)", "age (days)"),
    "short_id": ("编号", "id"),
    "age_days": ("账龄(天)", "age (days)"),
    "severity": ("严重度", "severity"),
    "contract_no": ("合同号", "contract"),
    "installment_no": ("期次", "installment"),
    "instruction_id": ("指令号", "instruction"),
    "channel_txn_id": ("渠道流水号", "channel txn"),
    "amount_yuan": ("金额(元)", "amount (yuan)"),
    "held_yuan": ("挂账(元)", "held (yuan)"),
    "account": ("账户(脱敏)", "account (masked)"),
    "explanation": ("说明", "explanation"),
    "action": ("建议操作", "suggested action"),
    "source_file": ("文件", "file"),
    "line_no": ("行号", "line"),
    "resolution": ("处理结果", "resolution"),
    "note": ("处理说明", "note"),
    "apply_contract": ("入账合同号", "apply to contract"),
    "apply_installment": ("入账期次", "apply to installment"),
    "reviewer": ("处理人", "reviewer"),
    "reviewed_on": ("处理日期", "date"),
    "exception_key": ("异常键(系统用,勿改)", "exception key (for the system, do not edit)"),
    "facts": ("写出时的事实(系统用,勿改)", "facts when written (for the system, do not edit)"),
    "reopened": ("重新打开", "reopened"),
    "was": ("原处理:", "was:"),
    "resolution_prompt": ("请从下拉列表选择", "choose from the list"),
    "resolution_error": ("只能选择列表中的处理结果", "only a resolution from the list is allowed"),
}

INSTRUCTIONS: dict[str, list[str]] = {
    "zh": [
        "本工作簿列出需要人工处理的异常(严重度为中、高),每类异常一张表;低风险异常的明细在同名的 CSV 文件中。",
        "请只填写每行最后的几列:处理结果(从下拉列表选择)、入账合同号与入账期次(仅“已手工入账”时填写)、处理说明、处理人、处理日期。",
        "每一项处理结果都必须填写处理说明。",
        "“已退款给借款人”与“已手工入账”会变动账务:前者把挂账金额作为已退款(在渠道文件之外退还)移出挂账;"
        "后者把挂账金额记入指定合同的指定期次(期次留空时记入该合同最早未还清的一期,合同号留空时用异常所在合同),"
        "该期须至少欠这么多。只对有挂账金额的异常可用;其他处理结果只记录决定,不动账。",
        "编号是异常的简短编号,可在电话中念出;“异常键”列供系统核对,请勿修改。",
        "金额、账号、合同号等列受保护:修改后导入将被拒绝。",
        "填写完成后保存,交系统导入;同一工作簿重复导入不会重复生效。",
        "账户号码已脱敏;以 = + - @ 开头的文本按文本显示,不会作为公式执行。",
    ],
    "en": [
        "This workbook lists the exceptions a person must act on (severity medium and high), one sheet per kind; "
        "the low-severity ones are listed in the CSV file of the same name.",
        "Fill in only the last columns of a row: resolution (from the drop-down), the contract and installment to "
        "apply to (only for 'applied by hand'), note, reviewer, date.",
        "Every resolution needs a note.",
        "'refunded to the borrower' and 'applied by hand' move the books: the first takes the held money out of "
        "suspense as refunded (paid back outside the channel's files); the second applies it to the installment "
        "named (blank: the contract's first installment still owing; no contract: the exception's own), which "
        "must owe at least that much. Both need money held on the exception; the other resolutions record a "
        "decision and move nothing.",
        "The id is a short name of the exception to read out on the phone; the exception key column is for the "
        "system: do not edit it.",
        "Amounts, accounts, contracts and ids are protected: a changed one makes the import refuse the workbook.",
        "Save it and hand it to the system to import; importing the same workbook twice changes nothing.",
        "Accounts are masked; text starting with = + - @ is shown as text, never run as a formula.",
    ],
}


#: What a control total counts: (Chinese, English).
APPLIES_TO: dict[str, tuple[str, str]] = {
    "all": ("全部", "all"),
    "success": ("成功", "successes"),
    "debit": ("扣款", "debits"),
    "refund": ("退款", "refunds"),
    "income": ("收入", "income"),
    "expense": ("支出", "expense"),
}


def pick(words: tuple[Any, ...], language: str) -> str:
    """The Chinese or the English of a ``(Chinese, English, …)`` entry."""
    return str(words[0] if language == "zh" else words[1])


def applies_to_label(applies_to: str, language: str) -> str:
    return pick(APPLIES_TO.get(applies_to, (applies_to, applies_to)), language)


def label(key: str, language: str) -> str:
    return pick(LABELS[key], language)


def code_label(code: str | None, language: str) -> str:
    """A code in the workbook's language (the code itself when it has no translation)."""
    if code is None:
        return ""
    if code in CODES:
        return pick(CODES[code], language)
    if code in Outcome.__members__:
        return outcome_label(Outcome(code), language)
    return code


def outcome_label(outcome: Outcome, language: str) -> str:
    return pick((OUTCOME_ZH[outcome], OUTCOME_EN[outcome]), language)


def any_outcome_label(code: str, language: str) -> str:
    """A transaction outcome's or a funds outcome's name in ``language``."""
    if code in FUNDS_OUTCOMES:
        return pick(FUNDS_OUTCOMES[code], language)
    return outcome_label(Outcome(code), language)


def resolution_labels(language: str) -> list[str]:
    return [pick(words, language) for words in RESOLUTIONS.values()]


def resolution_label(code: str, language: str) -> str:
    return pick(RESOLUTIONS.get(code, (code, code)), language)


def resolution_code(text: str) -> str | None:
    """The resolution code a reviewer's choice stands for (in either language, or the code)."""
    cleaned = text.strip()
    for code, (zh, en) in RESOLUTIONS.items():
        if cleaned in (code, zh, en):
            return code
    return None


def in_language(text: str | None, language: str) -> str:
    """A bilingual text written ``中文 / English`` (suggested actions): the part in ``language``."""
    if not text:
        return ""
    if " / " not in text:
        return text
    return pick(tuple(text.split(" / ", 1)), language)


def grouped_yuan(fen: int) -> str:
    """Fen as yuan with thousands separators, as finance reads them (``-1,234,567.89``)."""
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100:,}.{abs(fen) % 100:02d}"


def _yuan_of(fen: str) -> str:
    return grouped_yuan(int(fen))


#: A file's reason, as the reader says it in English → its Chinese (money in yuan). Tried in order;
#: a reason none fits is shown as it is.
REASONS_ZH: tuple[tuple[str, Any], ...] = (
    (
        r"^control totals disagree \((?P<k>\w+)(?:, (?P<s>[^)]*))?\): the file states (?:(?P<n>\d+) rows and )?"
        r"(?P<f>-?\d+) fen, its rows hold (?P<m>\d+) and (?P<g>-?\d+) fen(?P<rest>.*)$",
        lambda m: (
            f"控制总数不符({APPLIES_TO.get(m['k'], (m['k'],))[0]}{', ' + m['s'] if m['s'] else ''}):"
            f"文件声明 {m['n'] + ' 笔 ' if m['n'] else ''}{_yuan_of(m['f'])} 元,"
            f"实际读到 {m['m']} 笔 {_yuan_of(m['g'])} 元{m['rest']}"
        ),
    ),
    (
        r"^the file is for business date (?P<a>[\d-]+), but it was filed under (?P<b>[\d-]+)$",
        lambda m: f"文件的业务日期是 {m['a']},却放在 {m['b']} 的目录下",
    ),
    (r"^no configured layout recognises", lambda m: "无法识别:没有任何已配置的文件格式与其内容相符"),
    (
        r"^line (?P<n>\d+) is longer than (?P<b>[\d,]+) bytes",
        lambda m: f"第 {m['n']} 行超过 {m['b']} 字节:渠道文件没有这么长的行,无法识别",
    ),
    (
        r"^the same bytes as (?P<f>.+) in this delivery: counted once$",
        lambda m: f"与本批的 {m['f']} 内容完全相同:只计一次",
    ),
    (r"^a symbolic link: not followed", lambda m: "符号链接:不予跟随(请直接送达文件本身)"),
    (r"^the header lacks the columns (?P<c>.+)$", lambda m: f"表头缺少列:{m['c']}"),
    (r"^the file is empty$", lambda m: "文件为空"),
    (r"^the file is binary", lambda m: "文件是二进制内容,不是文本"),
    (r"^the file has a header but no records", lambda m: "文件只有表头,没有记录,也没有控制总数"),
    (r"^the summary line \(batch totals\) is missing", lambda m: "缺少汇总行(批次合计):文件可能不完整"),
    (r"^the footer with the control totals is missing", lambda m: "缺少带控制总数的文件尾:文件可能不完整"),
    (r"^the file does not state its business date", lambda m: "文件未在约定位置写明业务日期"),
    (r"^the XML declares a document type", lambda m: "XML 含有文档类型声明(<!DOCTYPE>):拒收(ISO 20022 报文没有)"),
    (r"^the XML nests elements deeper than 256 levels", lambda m: "XML 嵌套超过 256 层:拒收"),
    (r"^the XML holds a text of more than 10 MB", lambda m: "XML 中单个文本超过 10 MB:拒收"),
    (r"^the XML is malformed at line (?P<n>\d+)", lambda m: f"XML 格式错误(第 {m['n']} 行)"),
    (r"^the zip is damaged", lambda m: "压缩包已损坏"),
    (r"^member (?P<m>'.*') tries to leave its folder", lambda m: f"压缩包成员 {m['m']} 的路径越出目录:整个压缩包拒收"),
    (r"^member (?P<m>'.*') inflates to", lambda m: f"压缩包成员 {m['m']} 解压后过大(疑似压缩炸弹):整个压缩包拒收"),
    (
        r"^two members hold the same kind of detail",
        lambda m: "压缩包中有两个同类明细文件,无法判断哪个正确:整个压缩包拒收",
    ),
    (r"^no member of the zip is a bill", lambda m: "压缩包中没有本系统能读取的账单"),
    # the notes a file's reading leaves
    (
        r"^(?P<n>\d+) line\(s\) are neither debits nor refunds \((?P<k>.*)\) and were left aside$",
        lambda m: f"{m['n']} 行既非扣款也非退款({m['k']}),已另行搁置",
    ),
    (
        r"^(?P<n>\d+) line\(s\) restate (?P<f>.+) and were set aside \(counted there once\); (?P<m>\d+) line\(s\) "
        r"only this file has$",
        lambda m: f"{m['n']} 行与 {m['f']} 重复,已搁置(在该文件计一次);{m['m']} 行仅本文件有",
    ),
    (
        r"^(?P<n>\d+) line\(s\) \((?P<y>[-\d.]+) yuan\) read as evidence: channel (?P<c>\S+) does not settle",
        lambda m: f"{m['n']} 行({m['y']} 元)仅作为证据读取:渠道 {m['c']} 不结算资金,不计入金额",
    ),
    (
        r"^(?P<n>\d+) line\(s\) repeat transactions another file of the delivery has with the same facts",
        lambda m: f"{m['n']} 行与本批另一文件中的交易完全相同:只计一次",
    ),
    (
        r"^(?P<n>\d+) line\(s\) differ from the same transaction in another file",
        lambda m: f"{m['n']} 行与另一文件中的同一交易不一致:作为无效行待人工处理",
    ),
    # why a line is invalid (the reader's and the validator's words)
    (
        r"^(?P<f>\w+): (?P<v>.*) is not a time of the form (?P<p>\S+)$",
        lambda m: f"{_field(m['f'])} {m['v']} 不是 {m['p']} 格式的时间",
    ),
    (
        r"^(?P<f>\w+): (?P<v>.*) is not a time of the form (?P<p>\S+) within (?P<n>\d+) days before the "
        r"settlement date$",
        lambda m: f"{_field(m['f'])} {m['v']} 不是清算日前 {m['n']} 天内 {m['p']} 格式的时间",
    ),
    (
        r"^amount: (?P<v>.*) is not an amount with at most two decimals$",
        lambda m: f"金额 {m['v']} 不是最多两位小数的金额",
    ),
    (
        r"^(?P<f>\w+): (?P<v>.*) / (?P<w>.*) is not an amount$",
        lambda m: f"{_field(m['f'])} {m['v']} / {m['w']} 不是金额",
    ),
    (r"^(?P<f>\w+): unknown value (?P<v>.*)$", lambda m: f"{_field(m['f'])} 的取值 {m['v']} 未知"),
    (
        r"^currency: (?P<v>.*) is not this channel's currency \((?P<c>\w+)\)$",
        lambda m: f"币种 {m['v']} 不是该渠道的币种({m['c']}),不能按人民币读取",
    ),
    (
        r"^(?P<f>\w+): (?P<v>.*) is in E-notation",
        lambda m: f"{_field(m['f'])} {m['v']} 是科学计数法(被电子表格软件破坏),已不是原编号",
    ),
    (r"^transaction (?P<t>.*) appears more than once in the file$", lambda m: f"交易 {m['t']} 在文件中出现不止一次"),
    (r"^(?P<f>\w+): (?P<v>.*) failed (?P<k>.+)$", lambda m: f"{_field(m['f'])} {m['v']} 未通过校验 {m['k']}"),
    (r"^(?P<f>\w+): (?P<v>.*) is not (?P<k>.+)$", lambda m: f"{_field(m['f'])} {m['v']} 不是{_kind(m['k'])}"),
    (
        r"^line too long: (?P<n>\d+) bytes \(a line of a channel file is at most (?P<m>\d+)\)$",
        lambda m: f"行过长:{m['n']} 字节(渠道文件的一行最多 {m['m']} 字节)",
    ),
    (r"^(?P<n>\d+) bytes where the layout has (?P<m>\d+)$", lambda m: f"本行 {m['n']} 字节,文件格式规定 {m['m']} 字节"),
)

#: The names of a record's fields, for the reasons a line is invalid.
FIELDS_ZH = {
    "settled_at": "结算时间", "amount": "金额", "amount_fen": "金额", "reference": "参考号", "status": "状态",
    "channel_txn_id": "渠道流水号", "account": "账号", "account_shown": "账号", "record_kind": "记录类型",
    "failure_code": "失败代码", "currency": "币种", "contract_no": "合同号", "installment_no": "期次",
    "refund_request_no": "退款单号", "memo": "备注",
}  # fmt: skip
KINDS_ZH = {"an integer number of fen": "以分为单位的整数金额", "an amount in yuan": "以元为单位的金额"}


def _field(name: str) -> str:
    return FIELDS_ZH.get(name, name)


def _kind(kind: str) -> str:
    return KINDS_ZH.get(kind, kind)


_REASONS_ZH = tuple((re.compile(pattern), chinese) for pattern, chinese in REASONS_ZH)


def explanation_in(text: str | None, language: str) -> str:
    """An exception's explanation in ``language``: the Chinese one names a file's or a line's
    reason as the reader said it (English), after a full-width colon; each of its ``; ``-separated
    parts is translated where a translation fits."""
    if not text or language != "zh" or "：" not in text:
        return text or ""
    head, tail = text.split("：", 1)
    return f"{head}：{'; '.join(reason_in(part, 'zh') for part in tail.split('; '))}"


def reason_in(text: str | None, language: str) -> str:
    """A file's reason or note in ``language`` (the English sentence kept where no translation fits)."""
    if not text or language != "zh":
        return text or ""
    for pattern, chinese in _REASONS_ZH:
        found = pattern.match(text)
        if found:
            return str(chinese(found))
    return text
