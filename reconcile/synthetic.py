"""Synthetic days: a loan book, its debit instructions and the channels' files, with ground truth.

Each loan due on a day gets one *scenario* drawn with set proportions (:data:`SCENARIO_WEIGHTS`);
the scenario decides the instructions, the lines the channels send back, and the outcome each
line and instruction must get (the manifest, ``expected.csv``). Channel ``ccb`` always sends a
file whose control totals are off by one fen (``FILE_REJECTED``) and channel ``abc`` sends nothing
(``MISSING_FILE``), so every outcome code appears every day.

Everything is a pure function of the seed: the same arguments give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from typing import Any

import polars as pl

from reconcile.money import fen_expr_to_yuan_text
from reconcile.schedule import add_months, build_installments
from reconcile.settings import BUSINESS_TZ

#: Scenario → weight (per mille of loans due on a day).
SCENARIO_WEIGHTS: dict[str, int] = {
    "matched": 600,
    "failed": 150,
    "split_both_paid": 30,
    "partial": 30,
    "overpayment": 20,
    "duplicate": 20,
    "late": 20,
    "status_mismatch": 20,
    "silent_success": 10,
    "missing_result": 10,
    "amount_mismatch": 10,
    "account_mismatch": 10,
    "reversal": 10,
    "invalid": 10,
    "unmatched": 10,
    "ambiguous": 10,
    "fallback": 10,
    "memo": 10,
}
#: Scenarios that need a channel listing failures (a bank) or Alipay specifically.
BANK_ONLY = {"failed", "missing_result", "account_mismatch", "invalid", "partial"}
ALIPAY_ONLY = {"reversal", "unmatched", "ambiguous", "fallback", "memo", "silent_success"}

PRINCIPALS_FEN = (300_000, 500_000, 1_000_000, 1_200_000, 2_000_000, 5_000_000)
RATES = ("0.12", "0.18", "0.24")
TERMS = (3, 6, 12, 24)
METHODS = ("equal_installment", "equal_principal", "interest_first", "bullet")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
FAILURES = (
    ("3001", "余额不足"),
    ("3002", "账户冻结"),
    ("3004", "户名不符"),
    ("3006", "协议已解约"),
    ("", "账户状态异常"),
)


@dataclass(frozen=True)
class SyntheticDays:
    """A loan book and what happened on each day.

    ``files``: business date → file name → bytes, as the channels deliver them.
    ``expected``: the manifest, one row per record or instruction or file or channel with the
    outcome it must get (``business_date, subject, subject_key, expected_outcome, scenario``).
    """

    loans: pl.DataFrame
    installments: pl.DataFrame
    instructions: pl.DataFrame
    files: dict[dt.date, dict[str, bytes]]
    expected: pl.DataFrame


def generate_days(first: dt.date, last: dt.date, loans: int, seed: int) -> SyntheticDays:
    """Generate ``loans`` loans spread over the days ``first..last`` and each day's files."""
    rng = random.Random(seed)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    names = list(SCENARIO_WEIGHTS)
    weights = list(SCENARIO_WEIGHTS.values())
    book = []
    for index in range(loans):
        day = days[index % len(days)]
        scenario = rng.choices(names, weights)[0]
        channel = rng.choice(("alipay", "icbc", "icbc", "alipay", "ccb", "abc"))
        if scenario in ALIPAY_ONLY:
            channel = "alipay"
        elif scenario in BANK_ONLY and channel == "alipay":
            channel = "icbc"
        if channel in ("ccb", "abc"):
            scenario = "matched"  # their files are rejected or missing: nothing finer to see
        term = rng.choice(TERMS)
        method = rng.choice(METHODS)
        due_no = 1 if method == "bullet" or scenario == "memo" else rng.randint(1, term)
        months = term if method == "bullet" else due_no
        due_date = day - dt.timedelta(days=10) if scenario == "late" else day
        phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
        card = f"622202{rng.randrange(10**13):013d}"
        book.append(
            {
                "contract_no": f"C{day:%y%m%d}{index:08d}",
                "borrower_name": rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(("", rng.choice(GIVEN))),
                "id_number": f"{rng.randrange(110000, 659000)}{rng.randrange(1960, 2004)}"
                f"{rng.randrange(1, 13):02d}{rng.randrange(1, 29):02d}"
                f"{rng.randrange(1000):03d}{rng.choice('0123456789X')}",
                "phone": phone,
                "principal_fen": rng.choice(PRINCIPALS_FEN),
                "annual_rate": rng.choice(RATES),
                "term_months": term,
                "repayment_method": method,
                "start_date": add_months(due_date, -months),
                "grace_days": 3,
                "bound_channel": channel,
                "bound_account": phone if channel == "alipay" else card,
                "_day": day,
                "_scenario": scenario,
                "_due_no": due_no,
                "_due_date": due_date,
                "_seed": rng.randrange(2**31),
            }
        )
    frame = pl.DataFrame(book)
    loans_frame = frame.drop([c for c in frame.columns if c.startswith("_")])
    installments = build_installments(loans_frame)
    due = frame.join(
        installments.rename({"installment_no": "_due_no"}), on=["contract_no", "_due_no"], how="left"
    ).with_columns(
        _due_fen=pl.col("principal_due_fen")
        + pl.col("interest_due_fen")
        + pl.col("fee_due_fen")
        + pl.col("penalty_due_fen")
    )
    instructions: list[dict[str, Any]] = []
    lines: list[dict[str, Any]] = []
    expected: list[dict[str, Any]] = []
    for row in due.sort("contract_no").iter_rows(named=True):
        _scenario_rows(row, instructions, lines, expected)
    instructions_frame = pl.DataFrame(
        instructions,
        schema={
            "instruction_id": pl.String,
            "contract_no": pl.String,
            "installment_no": pl.Int64,
            "channel": pl.String,
            "account": pl.String,
            "amount_fen": pl.Int64,
            "requested_at": pl.Datetime("us", "UTC"),
            "platform_status": pl.String,
            "platform_code": pl.String,
        },
    )
    lines_frame = pl.DataFrame(lines, schema=LINE_SCHEMA)
    expected_frame = pl.DataFrame(expected, schema=EXPECTED_SCHEMA)
    files: dict[dt.date, dict[str, bytes]] = {}
    for day in days:
        day_lines = lines_frame.filter(pl.col("day") == day)
        files[day] = {
            f"alipay_trade_{day:%Y%m%d}.csv": alipay_trade_bill(day, day_lines.filter(pl.col("channel") == "alipay")),
            f"icbc_result_{day:%Y%m%d}.txt": bank_result_file(day, day_lines.filter(pl.col("channel") == "icbc")),
            f"ccb_result_{day:%Y%m%d}.txt": bank_result_file(
                day, day_lines.filter(pl.col("channel") == "ccb"), total_error_fen=1
            ),
        }
        expected_frame = pl.concat(
            [
                expected_frame,
                pl.DataFrame(
                    [
                        {
                            "business_date": day,
                            "subject": "file",
                            "subject_key": f"file|ccb_result_{day:%Y%m%d}.txt",
                            "expected_outcome": "FILE_REJECTED",
                            "scenario": "file_rejected",
                        },
                        {
                            "business_date": day,
                            "subject": "channel",
                            "subject_key": f"channel|abc|{day.isoformat()}",
                            "expected_outcome": "MISSING_FILE",
                            "scenario": "missing_file",
                        },
                    ],
                    schema=EXPECTED_SCHEMA,
                ),
            ]
        )
    # Invalid lines are known by file and line number, which only the written file decides.
    line_keys = pl.concat(
        [
            _line_numbers(lines_frame.filter((pl.col("channel") == "icbc") & (pl.col("day") == day))).with_columns(
                subject_key=pl.format("invalid|{}", pl.col("txn_id")),
                line_key=pl.format("icbc|line|icbc_result_{}.txt|{}", pl.lit(f"{day:%Y%m%d}"), pl.col("line_no")),
            )
            for day in days
        ]
    )
    expected_frame = (
        expected_frame.join(line_keys.select("subject_key", "line_key"), on="subject_key", how="left")
        .with_columns(subject_key=pl.coalesce("line_key", "subject_key"))
        .drop("line_key")
    )
    # Instructions of channels whose file is rejected or missing get no outcome of their own.
    expected_frame = expected_frame.filter(~pl.col("subject_key").str.contains(r"^(ccb|abc)\|"))
    return SyntheticDays(loans_frame, installments, instructions_frame, files, expected_frame.sort("subject_key"))


LINE_SCHEMA: dict[str, Any] = {
    "day": pl.Date,
    "channel": pl.String,
    "kind": pl.String,
    "txn_id": pl.String,
    "reference": pl.String,
    "account": pl.String,
    "name": pl.String,
    "amount_fen": pl.Int64,
    "status": pl.String,
    "reason_code": pl.String,
    "reason_text": pl.String,
    "settled_at": pl.Datetime("us", "UTC"),
    "refund_no": pl.String,
    "memo": pl.String,
    "corrupt_time": pl.Boolean,
}
EXPECTED_SCHEMA: dict[str, Any] = {
    "business_date": pl.Date,
    "subject": pl.String,
    "subject_key": pl.String,
    "expected_outcome": pl.String,
    "scenario": pl.String,
}


def _scenario_rows(
    row: dict[str, Any], instructions: list[dict[str, Any]], lines: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    """Instructions, channel lines and expected outcomes for one loan's scenario."""
    rng = random.Random(row["_seed"])
    day: dt.date = row["_day"]
    scenario: str = row["_scenario"]
    channel: str = row["bound_channel"]
    account: str = row["bound_account"]
    owed: int = row["_due_fen"]
    contract: str = row["contract_no"]
    base = dt.datetime.combine(day, dt.time(2, 0), BUSINESS_TZ).astimezone(dt.UTC)
    at = base + dt.timedelta(seconds=rng.randrange(4 * 3600))
    seq = [0]

    def instruct(amount: int, status: str = "success", code: str | None = None, offset: int = 0) -> str:
        seq[0] += 1
        instruction_id = f"P{contract[1:]}{seq[0]:02d}"
        instructions.append(
            {
                "instruction_id": instruction_id,
                "contract_no": contract,
                "installment_no": row["_due_no"],
                "channel": channel,
                "account": account,
                "amount_fen": amount,
                "requested_at": at + dt.timedelta(seconds=offset),
                "platform_status": status,
                "platform_code": code,
            }
        )
        return instruction_id

    def line(
        reference: str | None,
        amount: int,
        outcome: str,
        *,
        status: str = "SUCCESS",
        kind: str = "debit",
        offset: int = 30,
        shown: str | None = None,
        reason: tuple[str, str] = ("", ""),
        refund_no: str | None = None,
        memo: str | None = None,
        corrupt: bool = False,
    ) -> None:
        txn = f"{day:%Y%m%d}2200{rng.randrange(10**12):012d}"
        if kind == "refund":
            txn = lines[-1]["txn_id"]
        lines.append(
            {
                "day": day,
                "channel": channel,
                "kind": kind,
                "txn_id": txn,
                "reference": reference,
                "account": shown if shown is not None else account,
                "name": row["borrower_name"],
                "amount_fen": amount,
                "status": status,
                "reason_code": reason[0],
                "reason_text": reason[1],
                "settled_at": at + dt.timedelta(seconds=offset),
                "refund_no": refund_no,
                "memo": memo,
                "corrupt_time": corrupt,
            }
        )
        expected.append(
            {
                "business_date": day,
                "subject": "record",
                "subject_key": f"{channel}|{kind}|{txn}|{refund_no or ''}",
                "expected_outcome": outcome,
                "scenario": scenario,
            }
        )

    def missing(instruction_id: str, outcome: str) -> None:
        expected.append(
            {
                "business_date": day,
                "subject": "instruction",
                "subject_key": f"instruction|{instruction_id}",
                "expected_outcome": outcome,
                "scenario": scenario,
            }
        )

    if scenario in ("matched", "late"):
        line(instruct(owed), owed, "LATE_PAYMENT" if scenario == "late" else "MATCHED")
    elif scenario == "failed":
        reason = rng.choice(FAILURES)
        line(instruct(owed, "failed", reason[0] or None), owed, "DEBIT_FAILED", status="FAILED", reason=reason)
    elif scenario == "split_both_paid":
        half = owed // 2
        line(instruct(half), half, "MATCHED")
        line(instruct(owed - half, offset=5), owed - half, "MATCHED", offset=60)
    elif scenario == "partial":
        half = owed // 2
        line(instruct(half), half, "PARTIAL_PAYMENT")
        line(
            instruct(owed - half, "failed", "3001", offset=5),
            owed - half,
            "DEBIT_FAILED",
            status="FAILED",
            reason=FAILURES[0],
            offset=60,
        )
    elif scenario == "overpayment":
        line(instruct(owed + 5000), owed + 5000, "OVERPAYMENT")
    elif scenario == "duplicate":
        line(instruct(owed), owed, "MATCHED")
        line(instruct(owed, offset=5), owed, "DUPLICATE_DEBIT", offset=90)
    elif scenario == "status_mismatch":
        line(instruct(owed, rng.choice(("failed", "unknown")), "TIMEOUT"), owed, "STATUS_MISMATCH")
    elif scenario == "silent_success":
        missing(instruct(owed, "success"), "STATUS_MISMATCH")
    elif scenario == "missing_result":
        missing(instruct(owed), "MISSING_RESULT")
    elif scenario == "amount_mismatch":
        line(instruct(owed), owed - 100, "AMOUNT_MISMATCH")
    elif scenario == "account_mismatch":
        line(instruct(owed), owed, "ACCOUNT_MISMATCH", shown=f"621700{rng.randrange(10**13):013d}")
    elif scenario == "reversal":
        instruction_id = instruct(owed)
        line(instruction_id, owed, "MATCHED")
        line(instruction_id, owed, "REVERSAL", kind="refund", offset=3600, refund_no=f"R{instruction_id}")
    elif scenario == "invalid":
        line(instruct(owed), owed, "INVALID_RECORD", corrupt=True)
        expected[-1]["subject_key"] = f"invalid|{lines[-1]['txn_id']}"  # keyed by line: see generate_days
    elif scenario == "unmatched":
        line(f"X{rng.randrange(10**15):015d}", owed, "UNMATCHED_DEBIT", shown=f"{account[:3]}****{account[-4:]}")
    elif scenario == "ambiguous":
        instruct(owed, "unknown")
        instruct(owed, "unknown", offset=600)
        line(None, owed, "AMBIGUOUS_MATCH", shown=f"{account[:3]}****{account[-4:]}", offset=900)
    elif scenario == "fallback":
        instruct(owed, "success")
        line(None, owed, "MATCHED", shown=f"{account[:3]}****{account[-4:]}")
    elif scenario == "memo":
        line(None, owed, "MATCHED", memo=f"{contract} 主动还款", shown=f"{account[:3]}****{account[-4:]}")
    else:  # pragma: no cover - a new scenario without rows is a programming error
        raise AssertionError(f"scenario {scenario} has no rows")


def _yuan(column: str) -> pl.Expr:
    return fen_expr_to_yuan_text(column)


def _shanghai(column: str, fmt: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone("Asia/Shanghai").dt.strftime(fmt)


def alipay_trade_bill(day: dt.date, lines: pl.DataFrame) -> bytes:
    """An Alipay merchant business bill (业务明细): GBK, ``#`` preamble and footer, IDs ending in TAB."""
    signed = pl.when(pl.col("kind") == "refund").then(-pl.col("amount_fen")).otherwise(pl.col("amount_fen"))
    body = lines.sort("settled_at", "txn_id").select(
        (pl.col("txn_id") + "\t").alias("支付宝交易号"),
        (pl.col("reference").fill_null("") + "\t").alias("商户订单号"),
        pl.when(pl.col("kind") == "refund").then(pl.lit("退款")).otherwise(pl.lit("交易")).alias("业务类型"),
        pl.lit("贷款还款").alias("商品名称"),
        _shanghai("settled_at", "%Y-%m-%d %H:%M:%S").alias("创建时间"),
        _shanghai("settled_at", "%Y-%m-%d %H:%M:%S").alias("完成时间"),
        pl.col("account").alias("对方账户"),
        fen_expr_to_yuan_text(signed).alias("订单金额（元）"),
        fen_expr_to_yuan_text(signed).alias("商家实收（元）"),
        (pl.col("refund_no").fill_null("") + "\t").alias("退款批次号/请求号"),
        pl.lit("0.00").alias("服务费（元）"),
        pl.col("memo").fill_null("").alias("备注"),
    )
    debit = lines.filter(pl.col("kind") == "debit")
    refund = lines.filter(pl.col("kind") == "refund")
    next_day = day + dt.timedelta(days=1)
    preamble = (
        "#支付宝业务明细查询\n#账号：[20889000000000010156]\n"
        f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{next_day:%Y年%m月%d日} 00:00:00]\n"
        "#-----------------------------------------业务明细列表----------------------------------------\n"
    )
    footer = (
        "#-----------------------------------------业务明细列表结束------------------------------------\n"
        f"#交易合计：{debit.height}笔，商家实收共{_yuan_text(int(debit['amount_fen'].sum()))}元，服务费共0.00元\n"
        f"#退款合计：{refund.height}笔，商家实收退款共-{_yuan_text(int(refund['amount_fen'].sum()))}元，服务费共0.00元\n"
        f"#导出时间：[{next_day:%Y年%m月%d日} 09:00:00]\n"
    )
    return (preamble + body.write_csv(quote_style="never") + footer).replace("\n", "\r\n").encode("gb18030")


def _yuan_text(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"


def _line_numbers(lines: pl.DataFrame) -> pl.DataFrame:
    """Line number of each transaction in :func:`bank_result_file` (the summary is line 1)."""
    return (
        lines.sort("settled_at", "txn_id")
        .with_row_index("line_no", offset=2)
        .select("txn_id", pl.col("line_no").cast(pl.Int64))
    )


def bank_result_file(day: dt.date, lines: pl.DataFrame, total_error_fen: int = 0) -> bytes:
    """A bank batch collection result (回盘): summary line, then one ``D|`` line per instruction."""
    ordered = lines.sort("settled_at", "txn_id").with_row_index("seq", offset=1)
    success = ordered.filter(pl.col("status") == "SUCCESS")
    body = ordered.select(
        pl.lit("D").alias("type"),
        pl.col("seq").cast(pl.String),
        pl.col("reference").fill_null(""),
        pl.col("account"),
        (pl.col("name").str.slice(0, 1) + pl.lit("*")).alias("account_name"),
        fen_expr_to_yuan_text("amount_fen").alias("amount"),
        pl.when(pl.col("status") == "SUCCESS").then(pl.lit("S")).otherwise(pl.lit("F")).alias("status"),
        pl.col("reason_code").fill_null(""),
        pl.col("reason_text").fill_null(""),
        pl.col("txn_id"),
        pl.when(pl.col("corrupt_time"))
        .then(pl.lit(f"{day:%Y}1399250000"))
        .otherwise(_shanghai("settled_at", "%Y%m%d%H%M%S"))
        .alias("settled_at"),
    )
    summary = "|".join(
        [
            "H",
            f"B{day:%Y%m%d}001",
            f"{day:%Y%m%d}",
            str(ordered.height),
            _yuan_text(int(ordered["amount_fen"].sum()) + total_error_fen),
            str(success.height),
            _yuan_text(int(success["amount_fen"].sum())),
        ]
    )
    text = summary + "\n" + body.write_csv(separator="|", include_header=False, quote_style="never")
    return text.encode("gb18030")
