"""A contract's trail for customer service (``recon status``): "I was debited, why does the app say
overdue?" answered from the books. The schedule with each installment's status and what each part
has had paid, every debit instruction with the channel's result, every ledger entry, the money held,
and the open exceptions with their explanations. Money in yuan, times in Asia/Shanghai, personal
data masked."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select

from flows.db import ChannelRecord, DebitInstruction, ExceptionItem, FundsExpectation, Installment, LedgerEntry, Loan
from flows.words import FUNDS_OUTCOMES, code_label, explanation_in, pick
from reconcile.masking import mask_account, mask_name, mask_numbers_in_text
from reconcile.money import fen_to_yuan_text
from reconcile.settings import BUSINESS_TZ

PARTS = ("principal", "interest", "fee", "penalty")

#: (Chinese, English) of the trail's words.
WORDS: dict[str, tuple[str, str]] = {
    "no_contract": ("没有合同", "no contract"),
    "installments": ("还款计划", "schedule"),
    "instructions": ("代扣指令", "debit instructions"),
    "ledger": ("入账流水", "ledger"),
    "held": ("挂账金额(元)", "held (yuan)"),
    "exceptions": ("未处理异常", "open exceptions"),
    "due": ("应还", "due"),
    "paid": ("已还", "paid"),
    "no_result": ("未收到渠道结果", "no result from the channel yet"),
    "principal": ("本金", "principal"),
    "interest": ("利息", "interest"),
    "fee": ("费用", "fee"),
    "penalty": ("罚息", "penalty"),
    "none": ("无", "none"),
    "DUE": ("待还", "due"),
    "PAID": ("已还清", "paid"),
    "PAID_LATE": ("逾期后还清", "paid late"),
    "PARTIALLY_PAID": ("部分还款", "partly paid"),
    "OVERDUE": ("逾期", "overdue"),
    "ACTIVE": ("正常", "active"),
    "CLOSED": ("已结清", "closed"),
    # what a ledger entry is
    "payment": ("还款", "payment"),
    "reversal": ("退款冲正", "reversal"),
    "release": ("手工退款(移出挂账)", "refunded by hand (out of suspense)"),
    "manual": ("手工入账", "applied by hand"),
    "settlement": ("资金", "money"),
    "not_followed": ("未跟踪资金到账", "not followed to the account"),
    "due_by": ("应于", "due by"),
}


def word(key: str, language: str) -> str:
    return pick(WORDS.get(key, (key, key)), language)


def normalise_contract(text: str) -> str:
    """A contract number as typed: surrounding spaces dropped, case ignored."""
    return text.strip().upper()


def _shanghai(value: Any) -> str | None:
    return None if value is None else value.astimezone(BUSINESS_TZ).isoformat(timespec="seconds")


def _yuan(fen: int | None) -> str | None:
    return None if fen is None else fen_to_yuan_text(int(fen))


def contract_report(conn: Connection, typed: str, language: str = "zh") -> dict[str, Any] | None:
    """The contract's trail, or None when no contract has that number."""
    wanted = normalise_contract(typed)
    loan = conn.execute(select(Loan).where(func.upper(Loan.contract_no) == wanted)).mappings().first()
    if loan is None:
        return None
    contract = loan["contract_no"]
    installments = conn.execute(
        select(Installment).where(Installment.contract_no == contract).order_by(Installment.installment_no)
    ).mappings()
    instructions = conn.execute(
        select(DebitInstruction).where(DebitInstruction.contract_no == contract).order_by(DebitInstruction.requested_at)
    ).mappings()
    results = {
        r["reference"]: r
        for r in conn.execute(
            select(ChannelRecord).where(ChannelRecord.contract_no == contract).order_by(ChannelRecord.settled_at)
        ).mappings()
        if r["reference"]
    }
    ledger = (
        conn.execute(select(LedgerEntry).where(LedgerEntry.contract_no == contract).order_by(LedgerEntry.settled_at))
        .mappings()
        .all()
    )
    exceptions = conn.execute(
        select(ExceptionItem)
        .where(ExceptionItem.contract_no == contract, ExceptionItem.status == "OPEN")
        .order_by(ExceptionItem.business_date)
    ).mappings()
    settled = _settlements(conn, {(e["channel"], e["business_date"]) for e in ledger}, language)
    ledger_rows = [
        {
            "business_date": str(e["business_date"]),
            "channel": e["channel"],
            "channel_txn_id": e["channel_txn_id"],
            "kind": e["kind"],
            "installment_no": e["installment_no"],
            "settled_at": _shanghai(e["settled_at"]),
            "amount_yuan": _yuan(e["amount_fen"]),
            **{f"{part}_yuan": _yuan(e[f"{part}_fen"]) for part in PARTS},
            "held_yuan": _yuan(e["held_fen"]),
            "outcome": e["outcome"],
            # whether the money of this payment has reached the platform's account yet (资金对账)
            "settlement": settled.get((e["channel"], e["business_date"]), {"label": word("not_followed", language)}),
        }
        for e in ledger
    ]
    held_fen = sum(int(e["held_fen"]) for e in ledger)
    return {
        "contract_no": contract,
        "borrower": mask_name(loan["borrower_name"]),
        "bound": f"{loan['bound_channel']} {mask_account(loan['bound_account'])}",
        "status": loan["status"],
        "status_label": word(loan["status"], language),
        "installments": [
            {
                "no": i["installment_no"],
                "due_date": str(i["due_date"]),
                "status": i["status"],
                "status_label": word(i["status"], language),
                "due_yuan": _yuan(sum(i[f"{p}_due_fen"] for p in PARTS)),
                "paid_yuan": _yuan(sum(i[f"{p}_paid_fen"] for p in PARTS)),
                "parts": {
                    p: {"due_yuan": _yuan(i[f"{p}_due_fen"]), "paid_yuan": _yuan(i[f"{p}_paid_fen"])} for p in PARTS
                },
                "paid_at": _shanghai(i["paid_at"]),
            }
            for i in installments
        ],
        "instructions": [_instruction(d, results.get(d["instruction_id"]), language) for d in instructions],
        "ledger": ledger_rows,
        "held_yuan": _yuan(held_fen),
        "open_exceptions": [
            {
                "business_date": str(x["business_date"]),
                "outcome": x["outcome"],
                "outcome_label": code_label(x["outcome"], language),
                "severity": x["severity"],
                "amount_yuan": _yuan(x["amount_fen"]),
                "explanation": mask_numbers_in_text(
                    explanation_in(x["explanation_zh"], "zh") if language == "zh" else x["explanation_en"]
                ),
            }
            for x in exceptions
        ],
    }


def _settlements(conn: Connection, wanted: set[tuple[str, Any]], language: str) -> dict[tuple[str, Any], Any]:
    """(channel, business date) → what became of that date's expected settlement."""
    if not wanted:
        return {}
    found = conn.execute(
        select(FundsExpectation).where(FundsExpectation.business_date.in_({day for _, day in wanted}))
    ).mappings()
    said = {}
    for x in found:
        key = (x["channel"], x["business_date"])
        if key in wanted:
            outcome = x["outcome"]
            words = pick(FUNDS_OUTCOMES.get(outcome, (outcome, outcome)), language)
            when = str(x["paid_on"]) if x["paid_on"] else f"{word('due_by', language)} {x['window_to']}"
            said[key] = {"outcome": outcome, "label": f"{words} {when}", "paid_on": str(x["paid_on"] or "") or None,
                         "window_to": str(x["window_to"]), "as_of": str(x["as_of"])}  # fmt: skip
    return said


def _instruction(instruction: Any, result: Any, language: str) -> dict[str, Any]:
    found = {
        "instruction_id": instruction["instruction_id"],
        "installment_no": instruction["installment_no"],
        "channel": instruction["channel"],
        "account": mask_account(instruction["account"]),
        "amount_yuan": _yuan(instruction["amount_fen"]),
        "requested_at": _shanghai(instruction["requested_at"]),
        "platform_status": instruction["platform_status"],
    }
    if result is None:
        return {**found, "result": word("no_result", language)}
    return {
        **found,
        "result": f"{result['status']} {code_label(result['outcome'], language)}",
        "channel_status": result["status"],
        "outcome": result["outcome"],
        "settled_at": _shanghai(result["settled_at"]),
        "failure_reason": result["failure_reason"],
        "file": result["source_file"],
        "line": result["line_no"],
    }


def report_lines(report: dict[str, Any], language: str) -> list[str]:
    """The trail as text lines, for a terminal."""

    def w(key: str) -> str:
        return word(key, language)

    lines = [f"{report['contract_no']} {report['borrower']} {report['bound']} {report['status_label']}"]
    lines.append(f"{w('installments')}:")
    for i in report["installments"]:
        parts = " ".join(f"{w(p)} {v['paid_yuan']}/{v['due_yuan']}" for p, v in i["parts"].items())
        lines.append(f"  #{i['no']:<3} {i['due_date']} {i['status_label']:<6} {w('paid')} {i['paid_yuan']} / "
                     f"{w('due')} {i['due_yuan']}  ({parts})")  # fmt: skip
    lines.append(f"{w('instructions')}:")
    for d in report["instructions"] or [{"instruction_id": w("none")}]:
        if "requested_at" not in d:
            lines.append(f"  {d['instruction_id']}")
            continue
        where = f" ({d['file']}:{d['line']})" if d.get("file") else ""
        lines.append(f"  {d['requested_at']} {d['instruction_id']} #{d['installment_no']} {d['channel']} "
                     f"{d['account']} {d['amount_yuan']} → {d['result']}{where}")  # fmt: skip
    lines.append(f"{w('ledger')}:")
    for e in report["ledger"] or [{"settled_at": w("none")}]:
        if "kind" not in e:
            lines.append(f"  {e['settled_at']}")
            continue
        lines.append(f"  {e['settled_at']} {e['channel']} {w(e['kind'])} #{e['installment_no']} {e['amount_yuan']} "
                     f"({w('held')} {e['held_yuan']}) {w('settlement')}: {e['settlement']['label']}")  # fmt: skip
    lines.append(f"{w('held')}: {report['held_yuan']}")
    lines.append(f"{w('exceptions')}:")
    for x in report["open_exceptions"] or [{"business_date": w("none")}]:
        if "outcome" not in x:
            lines.append(f"  {x['business_date']}")
            continue
        lines.append(f"  {x['business_date']} {x['outcome_label']} {x['amount_yuan'] or ''} {x['explanation']}")
    return lines
