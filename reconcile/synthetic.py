"""Synthetic days: a loan book, its debit instructions and the channels' files, with ground truth.

Each loan due on a day gets one *scenario* drawn with set proportions (:data:`SCENARIO_WEIGHTS`);
the scenario decides the instructions, the lines the channels send back, and the outcome each
line and instruction must get (the manifest, ``expected.csv``). Channel ``ccb`` always sends a
file whose control totals are off by one fen (``FILE_REJECTED``) and channel ``abc`` sends nothing
(``MISSING_FILE``), so every outcome code appears every day.

Two knobs shape a steady night rather than an onboarding (both off by default):

- ``history``: the installments due before each loan's scenario were paid, as the servicing
  system's snapshot says (:data:`HISTORY_WEIGHTS`: most on time, a few late, some partly or not
  at all — those turn ``OVERDUE`` on the first run).
- ``attempts``: debit attempts per due installment. Each extra one is an earlier failed debit
  (余额不足) with its failed result line, on the channels whose files list failures
  (:data:`LISTS_FAILURES`): a month-end day is more attempts from the same book, not more loans.

Everything is a pure function of the seed: the same arguments give the same bytes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from reconcile.money import fen_expr_to_yuan_text, fen_to_yuan_text
from reconcile.schedule import build_installments
from reconcile.text import format_text
from schemas.frames import INSTRUCTION_DTYPES

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
#: The channels' fee on a payment in the generated files (WeChat Pay's and UnionPay's): 0.6 %.
FEE_PER_MILLE = 6
#: Scenarios that need a channel listing failures (a bank) or Alipay specifically.
BANK_ONLY = {"failed", "missing_result", "account_mismatch", "invalid", "partial"}
ALIPAY_ONLY = {"reversal", "unmatched", "ambiguous", "fallback", "memo", "silent_success"}

PRINCIPALS_FEN = (300_000, 500_000, 1_000_000, 1_200_000, 2_000_000, 5_000_000)
RATES = ("0.12", "0.18", "0.24")
TERMS = (3, 6, 12, 24)
METHODS = ("equal_installment", "equal_principal", "interest_first", "bullet")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂"
#: Of the installments due before a loan's scenario, per mille: left unpaid, partly paid (half of
#: what was due, in allocation order), paid in full after the grace days; the rest on time.
HISTORY_WEIGHTS: dict[str, int] = {"unpaid": 40, "partial": 10, "late": 30}
#: The order a payment goes to an installment's parts (the product's default).
ALLOCATION_ORDER = ("penalty", "fee", "interest", "principal")
#: Channels whose files list failed debits too: retries of failed debits appear there as lines.
#: Alipay lists successes only, so a failed retry there would leave no trace to reconcile.
LISTS_FAILURES = ("icbc", "ccb", "abc")
#: Retries use instruction and line sequence numbers from here (a scenario uses 1 and 2).
RETRY_FIRST_SEQ = 10
#: The most attempts per due installment, and the time between two attempts.
MAX_ATTEMPTS = 50
RETRY_SPACING_S = 120
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
    ``lines``: every channel line written (:data:`LINE_SCHEMA`), for what is built on them (the
    settlements of :mod:`reconcile.funds.synthetic`).
    """

    loans: pl.DataFrame
    installments: pl.DataFrame
    instructions: pl.DataFrame
    files: dict[dt.date, dict[str, bytes]]
    expected: pl.DataFrame
    lines: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=LINE_SCHEMA))


def _draw(index: pl.Expr, seed: int, salt: int, modulo: int) -> pl.Expr:
    """A deterministic pseudo-random integer in ``[0, modulo)`` per row, from the seed and a salt."""
    return (index.hash(seed=seed * 1_000_003 + salt) % modulo).cast(pl.Int64)


def _pick(options: tuple[Any, ...] | str, draw: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(list(options))).gather(draw)


#: The channels that may take Alipay's share of a generated book (``generate_days(wallet=...)``).
WALLETS = ("alipay", "wechat", "unionpay")
#: Scenarios that need the channel to show the payer's account (WeChat Pay's bill shows none): on
#: WeChat they are played as ordinary matches.
NEEDS_ACCOUNT = {"fallback", "ambiguous"}


def loan_book(days: list[dt.date], loans: int, seed: int, wallet: str = "alipay") -> pl.DataFrame:
    """The loans with their scenario, due installment and channel; private columns start with ``_``.

    ``wallet``: the channel of Alipay's share (``wechat``: WeChat Pay debits those loans instead)."""
    names = [name for name, weight in SCENARIO_WEIGHTS.items() for _ in range(weight)]
    total = len(names)
    index = pl.int_range(loans, dtype=pl.UInt64)
    frame = pl.select(
        _i=index,
        _day=_pick(tuple(days), (index % len(days)).cast(pl.Int64)),
        _scenario=_pick(tuple(names), _draw(index, seed, 1, total)),
        _channel=_pick(("alipay", "icbc", "icbc", "alipay", "ccb", "abc"), _draw(index, seed, 2, 6)),
        term_months=_pick(TERMS, _draw(index, seed, 3, len(TERMS))),
        repayment_method=_pick(METHODS, _draw(index, seed, 4, len(METHODS))),
        principal_fen=_pick(PRINCIPALS_FEN, _draw(index, seed, 5, len(PRINCIPALS_FEN))),
        annual_rate=_pick(RATES, _draw(index, seed, 6, len(RATES))),
        _due_draw=_draw(index, seed, 7, 1 << 30),
        phone=format_text(
            "1{}{}", _pick(tuple("3589"), _draw(index, seed, 8, 4)),
            _draw(index, seed, 9, 10**9).cast(pl.String).str.pad_start(9, "0"),
        ),
        _card=format_text("622202{}", _draw(index, seed, 10, 10**13).cast(pl.String).str.pad_start(13, "0")),
        borrower_name=_pick(tuple(SURNAMES), _draw(index, seed, 11, len(SURNAMES)))
        + _pick(tuple(GIVEN), _draw(index, seed, 12, len(GIVEN)))
        + _pick(("", *GIVEN), _draw(index, seed, 13, len(GIVEN) + 1)),
        id_number=format_text(
            "{}{}{}{}{}{}",
            (_draw(index, seed, 14, 549_000) + 110_000).cast(pl.String),
            (_draw(index, seed, 15, 44) + 1960).cast(pl.String),
            (_draw(index, seed, 16, 12) + 1).cast(pl.String).str.pad_start(2, "0"),
            (_draw(index, seed, 17, 28) + 1).cast(pl.String).str.pad_start(2, "0"),
            _draw(index, seed, 18, 1000).cast(pl.String).str.pad_start(3, "0"),
            _pick(tuple("0123456789X"), _draw(index, seed, 19, 11)),
        ),
        _seed=_draw(index, seed, 20, 1 << 40),
    )  # fmt: skip
    scenario, channel = pl.col("_scenario"), pl.col("_channel")
    channel = (
        pl.when(scenario.is_in(sorted(ALIPAY_ONLY)))
        .then(pl.lit("alipay"))
        .when(scenario.is_in(sorted(BANK_ONLY)) & (channel == "alipay"))
        .then(pl.lit("icbc"))
        .otherwise(channel)
    )
    frame = frame.with_columns(bound_channel=channel).with_columns(
        # ccb's file is rejected and abc sends none: nothing finer to see there
        _scenario=pl.when(pl.col("bound_channel").is_in(["ccb", "abc"])).then(pl.lit("matched")).otherwise(scenario)
    )
    if wallet != "alipay":
        if wallet not in WALLETS:
            raise ValueError(f"wallet must be one of {', '.join(WALLETS)}, not {wallet!r}")
        blind = wallet == "wechat"  # its bill shows no payer account
        frame = frame.with_columns(
            _scenario=pl.when(pl.col("_scenario").is_in(sorted(NEEDS_ACCOUNT)) & pl.lit(blind)).then(pl.lit("matched"))
            .otherwise("_scenario"),
            bound_channel=pl.col("bound_channel").replace("alipay", wallet),
        )  # fmt: skip
    single = (pl.col("repayment_method") == "bullet") | (pl.col("_scenario") == "memo")
    frame = frame.with_columns(
        _due_no=pl.when(single).then(1).otherwise(pl.col("_due_draw") % pl.col("term_months") + 1),
        _due_date=pl.when(pl.col("_scenario") == "late")
        .then(pl.col("_day") - pl.duration(days=10))
        .otherwise(pl.col("_day")),
    ).with_columns(
        _months=pl.when(pl.col("repayment_method") == "bullet").then(pl.col("term_months")).otherwise("_due_no"),
    )
    return frame.with_columns(
        contract_no=format_text(
            "C{}{}", pl.col("_day").dt.strftime("%y%m%d"), pl.col("_i").cast(pl.String).str.pad_start(8, "0")
        ),
        start_date=pl.col("_due_date").dt.offset_by(format_text("-{}mo", pl.col("_months"))),
        grace_days=pl.lit(3, pl.Int64),
        bound_account=pl.when(pl.col("bound_channel").is_in(["alipay", "wechat"])).then(pl.col("phone"))
        .otherwise(pl.col("_card")),
    )


LOAN_COLUMNS = [
    "contract_no", "borrower_name", "id_number", "phone", "principal_fen", "annual_rate", "term_months",
    "repayment_method", "start_date", "grace_days", "bound_channel", "bound_account",
]  # fmt: skip


def due_installments(frame: pl.DataFrame) -> pl.DataFrame:
    """Only the installment each loan of ``frame`` (a :func:`loan_book`) has due, with ``_owed``:
    the cheap way to a large day when the whole schedule is not needed (benchmarks)."""
    shapes = frame.select("principal_fen", "annual_rate", "term_months", "repayment_method").unique()
    template = build_installments(
        shapes.with_row_index("_shape")
        .with_columns(contract_no=format_text("S{}", "_shape"), start_date=pl.lit(dt.date(2000, 1, 1)))
        .drop("_shape")
    ).join(shapes.with_row_index("_shape").with_columns(contract_no=format_text("S{}", "_shape")), on="contract_no")
    return frame.join(
        template.drop("contract_no", "due_date", "_shape").rename({"installment_no": "_due_no"}),
        on=["principal_fen", "annual_rate", "term_months", "repayment_method", "_due_no"],
        how="left",
    ).with_columns(
        due_date=pl.col("start_date").dt.offset_by(format_text("{}mo", pl.col("_months"))),
        _owed=pl.sum_horizontal("principal_due_fen", "interest_due_fen", "fee_due_fen", "penalty_due_fen"),
        _at=_morning_utc(),
    )


def _morning_utc() -> pl.Expr:
    """Between 02:00 and 06:00 Shanghai time on the loan's day, as UTC."""
    midnight = pl.col("_day").cast(pl.Datetime("us")).dt.replace_time_zone("Asia/Shanghai")
    return (
        midnight.dt.convert_time_zone("UTC") + pl.duration(hours=2) + pl.duration(seconds=pl.col("_seed") % (4 * 3600))
    )


def generate_days(
    first: dt.date,
    last: dt.date,
    loans: int,
    seed: int,
    *,
    history: bool = False,
    attempts: int = 1,
    wallet: str = "alipay",
) -> SyntheticDays:
    """Generate ``loans`` loans spread over the days ``first..last`` and each day's files.

    ``history``: the installments due before each loan's scenario come paid in the snapshot
    (:func:`paid_history`). ``attempts``: debit attempts per due installment (1 to
    :data:`MAX_ATTEMPTS`; the extra ones are failed retries). ``wallet``: who collects Alipay's
    share of the book (``wechat``: WeChat Pay, whose trade bill then arrives instead of Alipay's;
    ``unionpay``: UnionPay, whose zipped clearing files arrive instead).
    """
    if not 1 <= attempts <= MAX_ATTEMPTS:
        raise ValueError(f"attempts must be between 1 and {MAX_ATTEMPTS}, not {attempts}")
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    frame = loan_book(days, loans, seed, wallet)
    loans_frame = frame.select(LOAN_COLUMNS).with_columns(pl.col("term_months").cast(pl.Int64))
    installments = build_installments(loans_frame)
    if history:
        installments = paid_history(installments, frame, seed)
    due = (
        frame.join(installments.rename({"installment_no": "_due_no"}), on=["contract_no", "_due_no"], how="left")
        .with_columns(
            _owed=pl.sum_horizontal("principal_due_fen", "interest_due_fen", "fee_due_fen", "penalty_due_fen"),
            _at=_morning_utc(),
        )
        .sort("contract_no")
    )
    instructions_frame, lines_frame, expected_frame = scenario_rows(due, attempts)
    files: dict[dt.date, dict[str, bytes]] = {}
    for day in days:
        day_lines = lines_frame.filter(pl.col("day") == day)
        wallet_lines = day_lines.filter(pl.col("channel") == wallet)
        if wallet == "unionpay":  # with two 差错 lines in ZME, which the run sets aside for a person
            errors = wallet_lines.filter(pl.col("status") == "SUCCESS").head(2)
            delivered = unionpay_delivery(day, wallet_lines, errors)
        else:
            bill = alipay_trade_bill if wallet == "alipay" else wechat_trade_bill
            delivered = (f"{wallet}_trade_{day:%Y%m%d}.csv", bill(day, wallet_lines))
        files[day] = {
            delivered[0]: delivered[1],
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
                        *[
                            {
                                "business_date": day,
                                "subject": "channel",
                                "subject_key": f"channel|{silent}|{day.isoformat()}",
                                "expected_outcome": "MISSING_FILE",
                                "scenario": "missing_file",
                            }
                            for silent in ("abc", *(("alipay",) if wallet != "alipay" else ()))
                        ],
                    ],
                    schema=EXPECTED_SCHEMA,
                ),
            ]
        )
    # Invalid lines are known by file and line number, which only the written file decides.
    line_keys = pl.concat(
        [
            _line_numbers(lines_frame.filter((pl.col("channel") == "icbc") & (pl.col("day") == day))).with_columns(
                subject_key=format_text("invalid|{}", pl.col("txn_id")),
                line_key=format_text("icbc|line|icbc_result_{}.txt|{}", pl.lit(f"{day:%Y%m%d}"), pl.col("line_no")),
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
    return SyntheticDays(
        loans_frame, installments, instructions_frame, files, expected_frame.sort("subject_key"), lines_frame
    )


def paid_history(installments: pl.DataFrame, frame: pl.DataFrame, seed: int) -> pl.DataFrame:
    """``installments`` with what each has had paid before the day (``<part>_paid_fen``, ``paid_at``
    UTC), as a servicing snapshot says: those due before their loan's scenario installment are paid
    as :data:`HISTORY_WEIGHTS` draws, the others nothing.

    Paid on time: on the due date or within the grace days; late: 4 to 13 days after (before the
    day still, since the installment before a scenario's falls due a month or more earlier); partly:
    half of what was due, penalty → fee → interest → principal. ``frame`` is the :func:`loan_book`.
    """
    loans = frame.select("contract_no", "_due_no", _loan=pl.col("_i").cast(pl.Int64))
    book = installments.join(loans, on="contract_no", how="left", maintain_order="left")
    key = pl.col("_loan") * 64 + pl.col("installment_no")  # a term has at most 24 installments
    fate = _draw(key, seed, 21, 1000)
    weights = HISTORY_WEIGHTS
    earlier = pl.col("installment_no") < pl.col("_due_no")
    unpaid = fate < weights["unpaid"]
    partial = ~unpaid & (fate < weights["unpaid"] + weights["partial"])
    late = ~unpaid & ~partial & (fate < weights["unpaid"] + weights["partial"] + weights["late"])
    on_time_days = (_draw(key, seed, 22, 10) - 6).clip(lower_bound=0)  # mostly the due date itself
    days_after = pl.when(late).then(_draw(key, seed, 23, 10) + 4).otherwise(on_time_days)
    owed = pl.sum_horizontal([pl.col(f"{part}_due_fen") for part in ALLOCATION_ORDER])
    target = pl.when(~earlier | unpaid).then(0).when(partial).then(owed // 2).otherwise(owed)
    midnight = (pl.col("due_date") + pl.duration(days=days_after)).cast(pl.Datetime("us"))
    paid_at = (
        midnight.dt.replace_time_zone("Asia/Shanghai").dt.convert_time_zone("UTC")
        + pl.duration(hours=2)
        + pl.duration(seconds=_draw(key, seed, 24, 4 * 3600))
    )
    return (
        book.with_columns(_target=target)
        .with_columns(
            **_allocated(pl.col("_target")),
            paid_at=pl.when(pl.col("_target") > 0).then(paid_at),
        )
        .drop("_due_no", "_loan", "_target")
    )


def _allocated(total: pl.Expr) -> dict[str, pl.Expr]:
    """``<part>_paid_fen`` for ``total`` fen spread over the parts in :data:`ALLOCATION_ORDER`,
    each part taking what is left up to what it has due."""
    paid: dict[str, pl.Expr] = {}
    before = pl.lit(0, pl.Int64)
    for part in ALLOCATION_ORDER:
        due = pl.col(f"{part}_due_fen")
        paid[part] = (total - before).clip(lower_bound=0).clip(upper_bound=due).cast(pl.Int64)
        before = before + due
    return {f"{part}_paid_fen": paid[part] for part in ("principal", "interest", "fee", "penalty")}


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


def _instruction_id(seq: int) -> pl.Expr:
    return format_text("P{}{}", pl.col("contract_no").str.slice(1), pl.lit(f"{seq:02d}"))


def _txn_id(seq: int) -> pl.Expr:
    """Unique per loan and line: day, loan index and line number, plus four digits of noise
    (UnionPay's: the 21 digits of an ACP query id, three of noise)."""
    noise = (pl.col("_seed") * 7 + seq) % 10_000
    loan, line = pl.col("_i").cast(pl.String).str.pad_start(10, "0"), pl.lit(f"{seq:02d}")
    usual = format_text(
        "{}22{}{}{}", pl.col("_day").dt.strftime("%Y%m%d"), loan, line, noise.cast(pl.String).str.pad_start(4, "0")
    )
    short_noise = (noise % 1000).cast(pl.String).str.pad_start(3, "0")
    query_id = format_text("{}{}{}{}", pl.col("_day").dt.strftime("%y%m%d"), loan, line, short_noise)
    return pl.when(pl.col("bound_channel") == "unionpay").then(query_id).otherwise(usual)


def _masked_account() -> pl.Expr:
    account = pl.col("bound_account")
    return account.str.slice(0, 3) + pl.lit("****") + account.str.slice(-4)


class _Day:
    """Collects the instructions, channel lines and expected outcomes the scenarios emit."""

    def __init__(self) -> None:
        self.instructions: list[pl.DataFrame] = []
        self.lines: list[pl.DataFrame] = []
        self.expected: list[pl.DataFrame] = []

    def instruct(
        self,
        d: pl.DataFrame,
        seq: int,
        amount: pl.Expr,
        status: str | pl.Expr = "success",
        code: str | None = None,
        offset: int = 0,
    ) -> None:
        self.instructions.append(
            d.select(
                instruction_id=_instruction_id(seq),
                contract_no=pl.col("contract_no"),
                installment_no=pl.col("_due_no").cast(pl.Int64),
                channel=pl.col("bound_channel"),
                account=pl.col("bound_account"),
                amount_fen=amount.cast(pl.Int64),
                requested_at=pl.col("_at") + pl.duration(seconds=offset),
                platform_status=status if isinstance(status, pl.Expr) else pl.lit(status),
                platform_code=pl.lit(code, pl.String),
            )
        )

    def line(
        self,
        d: pl.DataFrame,
        seq: int,
        reference: pl.Expr,
        amount: pl.Expr,
        outcome: str | pl.Expr,
        *,
        status: str = "SUCCESS",
        kind: str = "debit",
        offset: int = 30,
        shown: pl.Expr | None = None,
        reason: tuple[pl.Expr, pl.Expr] | None = None,
        refund_no: pl.Expr | None = None,
        memo: pl.Expr | None = None,
        corrupt: bool = False,
    ) -> None:
        lines = d.select(
            day=pl.col("_day"),
            channel=pl.col("bound_channel"),
            kind=pl.lit(kind),
            txn_id=_txn_id(seq),
            reference=reference.cast(pl.String),
            account=shown if shown is not None else pl.col("bound_account"),
            name=pl.col("borrower_name"),
            amount_fen=amount.cast(pl.Int64),
            status=pl.lit(status),
            reason_code=reason[0] if reason else pl.lit("", pl.String),
            reason_text=reason[1] if reason else pl.lit("", pl.String),
            settled_at=pl.col("_at") + pl.duration(seconds=offset),
            refund_no=refund_no if refund_no is not None else pl.lit(None, pl.String),
            memo=memo if memo is not None else pl.lit(None, pl.String),
            corrupt_time=pl.lit(corrupt),
            _outcome=outcome if isinstance(outcome, pl.Expr) else pl.lit(outcome),
            _scenario=pl.col("_scenario"),
        )
        self.lines.append(lines.drop("_outcome", "_scenario"))
        key = (
            format_text("invalid|{}", pl.col("txn_id"))
            if corrupt
            else format_text("{}|{}|{}|{}", "channel", "kind", "txn_id", pl.col("refund_no").fill_null(""))
        )
        self.expected.append(
            lines.select(
                business_date=pl.col("day"),
                subject=pl.lit("record"),
                subject_key=key,
                expected_outcome=pl.col("_outcome"),
                scenario=pl.col("_scenario"),
            )
        )

    def unanswered(self, d: pl.DataFrame, seq: int, outcome: str) -> None:
        self.expected.append(
            d.select(
                business_date=pl.col("_day"),
                subject=pl.lit("instruction"),
                subject_key=format_text("instruction|{}", _instruction_id(seq)),
                expected_outcome=pl.lit(outcome),
                scenario=pl.col("_scenario"),
            )
        )


def retried_failures(out: _Day, due: pl.DataFrame, attempts: int) -> None:
    """``attempts - 1`` failed debits of each due installment on a channel listing failures, before
    its scenario's own: each an instruction the platform recorded failed (3001) and a failed line
    (余额不足) that must be ``DEBIT_FAILED``. On Alipay a failed debit leaves no line, so none is made."""
    d = due.filter(pl.col("bound_channel").is_in(LISTS_FAILURES)).with_columns(_scenario=pl.lit("retry"))
    code, words = FAILURES[0]
    for k in range(attempts - 1):
        seq = RETRY_FIRST_SEQ + k
        before = -(attempts - 1 - k) * RETRY_SPACING_S
        out.instruct(d, seq, pl.col("_owed"), "failed", code, offset=before)
        out.line(d, seq, _instruction_id(seq), pl.col("_owed"), "DEBIT_FAILED", status="FAILED",
                 reason=(pl.lit(code), pl.lit(words)), offset=before + 30)  # fmt: skip


def scenario_rows(due: pl.DataFrame, attempts: int = 1) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Instructions, channel lines and expected outcomes of every loan's scenario, vectorised;
    with ``attempts`` > 1, each due installment's failed retries first (:func:`retried_failures`)."""
    out = _Day()
    retried_failures(out, due, attempts)
    owed = pl.col("_owed")
    half = owed // 2

    def of(*names: str) -> pl.DataFrame:
        return due.filter(pl.col("_scenario").is_in(list(names)))

    failure = pl.col("_seed") % len(FAILURES)
    reason = (_pick(tuple(code for code, _ in FAILURES), failure), _pick(tuple(text for _, text in FAILURES), failure))
    first_reason = (pl.lit(FAILURES[0][0]), pl.lit(FAILURES[0][1]))

    d = of("matched", "late")
    out.instruct(d, 1, owed)
    late = pl.when(pl.col("_scenario") == "late").then(pl.lit("LATE_PAYMENT")).otherwise(pl.lit("MATCHED"))
    out.line(d, 1, _instruction_id(1), owed, late)

    d = of("failed")
    out.instruct(d, 1, owed, "failed", None)
    out.line(d, 1, _instruction_id(1), owed, "DEBIT_FAILED", status="FAILED", reason=reason)

    d = of("split_both_paid")
    out.instruct(d, 1, half)
    out.instruct(d, 2, owed - half, offset=5)
    out.line(d, 1, _instruction_id(1), half, "MATCHED")
    out.line(d, 2, _instruction_id(2), owed - half, "MATCHED", offset=60)

    d = of("partial")
    out.instruct(d, 1, half)
    out.instruct(d, 2, owed - half, "failed", "3001", offset=5)
    out.line(d, 1, _instruction_id(1), half, "PARTIAL_PAYMENT")
    out.line(d, 2, _instruction_id(2), owed - half, "DEBIT_FAILED", status="FAILED", reason=first_reason, offset=60)

    d = of("overpayment")
    out.instruct(d, 1, owed + 5000)
    out.line(d, 1, _instruction_id(1), owed + 5000, "OVERPAYMENT")

    d = of("duplicate")
    out.instruct(d, 1, owed)
    out.instruct(d, 2, owed, offset=5)
    out.line(d, 1, _instruction_id(1), owed, "MATCHED")
    out.line(d, 2, _instruction_id(2), owed, "DUPLICATE_DEBIT", offset=90)

    d = of("status_mismatch")
    recorded = pl.when(pl.col("_seed") % 2 == 0).then(pl.lit("failed")).otherwise(pl.lit("unknown"))
    out.instruct(d, 1, owed, recorded, "TIMEOUT")
    out.line(d, 1, _instruction_id(1), owed, "STATUS_MISMATCH")

    d = of("silent_success")
    out.instruct(d, 1, owed)
    out.unanswered(d, 1, "STATUS_MISMATCH")

    d = of("missing_result")
    out.instruct(d, 1, owed)
    out.unanswered(d, 1, "MISSING_RESULT")

    d = of("amount_mismatch")
    out.instruct(d, 1, owed)
    out.line(d, 1, _instruction_id(1), owed - 100, "AMOUNT_MISMATCH")

    d = of("account_mismatch")
    other_card = format_text("621700{}", (pl.col("_seed") % 10**13).cast(pl.String).str.pad_start(13, "0"))
    out.instruct(d, 1, owed)
    out.line(d, 1, _instruction_id(1), owed, "ACCOUNT_MISMATCH", shown=other_card)

    d = of("reversal")
    out.instruct(d, 1, owed)
    out.line(d, 1, _instruction_id(1), owed, "MATCHED")
    out.line(d, 1, _instruction_id(1), owed, "REVERSAL", kind="refund", offset=3600,
             refund_no=format_text("R{}", _instruction_id(1)))  # fmt: skip

    d = of("invalid")
    out.instruct(d, 1, owed)
    out.line(d, 1, _instruction_id(1), owed, "INVALID_RECORD", corrupt=True)

    d = of("unmatched")
    foreign = format_text("X{}", (pl.col("_seed") % 10**15).cast(pl.String).str.pad_start(15, "0"))
    out.line(d, 1, foreign, owed, "UNMATCHED_DEBIT", shown=_masked_account())

    d = of("ambiguous")
    out.instruct(d, 1, owed, "unknown")
    out.instruct(d, 2, owed, "unknown", offset=600)
    out.line(d, 1, pl.lit(None, pl.String), owed, "AMBIGUOUS_MATCH", shown=_masked_account(), offset=900)

    d = of("fallback")
    out.instruct(d, 1, owed)
    out.line(d, 1, pl.lit(None, pl.String), owed, "MATCHED", shown=_masked_account())

    d = of("memo")
    out.line(d, 1, pl.lit(None, pl.String), owed, "MATCHED", shown=_masked_account(),
             memo=format_text("{} 主动还款", pl.col("contract_no")))  # fmt: skip

    instructions = (
        pl.concat(out.instructions).sort("instruction_id")
        if out.instructions
        else pl.DataFrame(schema=INSTRUCTION_DTYPES)
    )
    lines = pl.concat(out.lines) if out.lines else pl.DataFrame(schema=LINE_SCHEMA)
    expected = pl.concat(out.expected) if out.expected else pl.DataFrame(schema=EXPECTED_SCHEMA)
    return instructions, lines.cast(pl.Schema(LINE_SCHEMA)), expected.cast(pl.Schema(EXPECTED_SCHEMA))


def _fee_fen(fen: pl.Expr) -> pl.Expr:
    """The fee on ``fen`` to the fen, half up."""
    return (fen * FEE_PER_MILLE + 500) // 1000


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
    totals = [
        f"交易合计：{debit.height}笔，商家实收共{fen_to_yuan_text(int(debit['amount_fen'].sum()))}元，服务费共0.00元",
        f"退款合计：{refund.height}笔，商家实收退款共-{fen_to_yuan_text(int(refund['amount_fen'].sum()))}元，服务费共0.00元",
    ]
    return _alipay_bill("业务明细", day, body, totals)


def _alipay_bill(kind: str, day: dt.date, body: pl.DataFrame, totals: list[str]) -> bytes:
    """An Alipay merchant bill as downloaded: ``#`` preamble with the period, the rows, ``#`` footer
    with the control totals and export time; GBK, CRLF."""
    next_day = day + dt.timedelta(days=1)
    rule = "-" * 41
    preamble = (
        f"#支付宝{kind}查询\n#账号：[20889000000000010156]\n"
        f"#起始日期：[{day:%Y年%m月%d日} 00:00:00]   终止日期：[{next_day:%Y年%m月%d日} 00:00:00]\n"
        f"#{rule}{kind}列表{rule[:-1]}\n"
    )
    footer = "".join(
        [f"#{rule}{kind}列表结束{rule[:-5]}\n", *[f"#{line}\n" for line in totals],
         f"#导出时间：[{next_day:%Y年%m月%d日} 09:00:00]\n"]
    )  # fmt: skip
    return (preamble + body.write_csv(quote_style="never") + footer).replace("\n", "\r\n").encode("gb18030")


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
            fen_to_yuan_text(int(ordered["amount_fen"].sum()) + total_error_fen),
            str(success.height),
            fen_to_yuan_text(int(success["amount_fen"].sum())),
        ]
    )
    text = summary + "\n" + body.write_csv(separator="|", include_header=False, quote_style="never")
    return text.encode("gb18030")


def sample_lines(day: dt.date, count: int, seed: int, refund_every: int = 50, fail_every: int = 7) -> pl.DataFrame:
    """``count`` channel lines of one day, vectorised: the shape :func:`alipay_trade_bill` and the
    other writers take. Every ``refund_every``-th line is a refund of the line before it; every
    ``fail_every``-th line failed (with a code and words), for the writers of files listing failures."""
    i = pl.int_range(0, count, dtype=pl.Int64)
    start = dt.datetime.combine(day, dt.time(0, 5), dt.UTC) - dt.timedelta(hours=8)
    refund = (i % refund_every) == (refund_every - 1)
    failed = ((i % fail_every) == (fail_every - 1)) & ~refund
    original = pl.when(refund).then(i - 1).otherwise(i)
    amount = ((i * 7919 + seed) % 500_000) + 100
    codes, words = tuple(code for code, _ in FAILURES), tuple(text for _, text in FAILURES)
    return pl.select(
        day=pl.lit(day),
        channel=pl.lit("sample"),
        kind=pl.when(refund).then(pl.lit("refund")).otherwise(pl.lit("debit")),
        txn_id=format_text("{}22{}", pl.lit(f"{day:%Y%m%d}"), original.cast(pl.String).str.pad_start(11, "0")),
        reference=format_text("P{}", original.cast(pl.String).str.pad_start(14, "0")),
        account=format_text("6222****{}", (original % 10_000).cast(pl.String).str.pad_start(4, "0")),
        name=pl.concat_str(_pick(SURNAMES, i % len(SURNAMES)), _pick(GIVEN, (i // 20) % len(GIVEN))),
        amount_fen=pl.when(refund).then(((i - 1) * 7919 + seed) % 500_000 + 100).otherwise(amount).cast(pl.Int64),
        status=pl.when(failed).then(pl.lit("FAILED")).otherwise(pl.lit("SUCCESS")),
        reason_code=pl.when(failed).then(_pick(codes, i % len(codes))).otherwise(pl.lit("")),
        reason_text=pl.when(failed).then(_pick(words, i % len(words))).otherwise(pl.lit("")),
        settled_at=pl.lit(start) + pl.duration(seconds=i * 86_000 // max(count, 1)),
        refund_no=pl.when(refund).then(format_text("R{}", i.cast(pl.String).str.pad_start(12, "0"))),
        memo=pl.when(i % 97 == 5).then(
            format_text("C{} 主动还款", (i % 100_000).cast(pl.String).str.pad_start(8, "0"))
        ),
        corrupt_time=pl.lit(False),
    )


def alipay_account_bill(day: dt.date, lines: pl.DataFrame, fee_fen_each: int = 10) -> bytes:
    """An Alipay merchant account bill (账务明细, signcustomer) of the same successes as
    :func:`alipay_trade_bill`: income and expense columns, a running balance, and one service-fee
    line (收费) that is neither debit nor refund. Refund lines carry the original trade's number."""
    ok = lines.filter(pl.col("status") == "SUCCESS").sort("settled_at", "txn_id")
    debits = ok.filter(pl.col("kind") == "debit")
    fee = fee_fen_each * debits.height
    last = ok["settled_at"].max() if ok.height else dt.datetime.combine(day, dt.time(0), dt.UTC)
    signed = pl.when(pl.col("kind") == "refund").then(-pl.col("amount_fen")).otherwise(pl.col("amount_fen"))
    rows = ok.select(
        "txn_id",
        "reference",
        "kind",
        "settled_at",
        "account",
        "memo",
        signed.alias("signed"),
    )
    fee_row = pl.DataFrame(
        {
            "txn_id": [f"{day:%Y%m%d}30FEE"],
            "reference": [None],
            "kind": ["fee"],
            "settled_at": [last],
            "account": [None],
            "memo": ["服务费"],
            "signed": [-fee],
        },
        schema=rows.schema,
    )
    rows = pl.concat([rows, fee_row]).with_row_index("serial", offset=1)
    income = pl.when(pl.col("signed") > 0).then(fen_expr_to_yuan_text("signed")).otherwise(pl.lit(""))
    expense = pl.when(pl.col("signed") < 0).then(fen_expr_to_yuan_text("signed")).otherwise(pl.lit(""))
    body = rows.select(
        format_text("{}{}\t", pl.lit(f"{day:%Y%m%d}"), pl.col("serial").cast(pl.String).str.pad_start(12, "0")).alias(
            "账务流水号"
        ),
        (pl.col("txn_id") + "\t").alias("业务流水号"),
        (pl.col("reference").fill_null("") + "\t").alias("商户订单号"),
        pl.lit("贷款还款").alias("商品名称"),
        _shanghai("settled_at", "%Y-%m-%d %H:%M:%S").alias("发生时间"),
        pl.col("account").fill_null("").alias("对方账号"),
        income.alias("收入金额（+元）"),
        expense.alias("支出金额（-元）"),
        fen_expr_to_yuan_text(pl.col("signed").cum_sum() + 1_000_000_00).alias("账户余额（元）"),
        pl.lit("快捷支付").alias("交易渠道"),
        pl.col("kind").replace_strict({"debit": "在线支付", "refund": "退款", "fee": "收费"}).alias("业务类型"),
        pl.col("memo").fill_null("").alias("备注"),
    )
    incomes, expenses = rows.filter(pl.col("signed") > 0), rows.filter(pl.col("signed") < 0)
    totals = [
        f"收入合计：{incomes.height}笔，共{fen_to_yuan_text(int(incomes['signed'].sum()))}元",
        f"支出合计：{expenses.height}笔，共{fen_to_yuan_text(int(expenses['signed'].sum()))}元",
    ]
    return _alipay_bill("账务明细", day, body, totals)


def _fixed(column: str | pl.Expr, width: int, align: str = "left", fill: str = " ") -> pl.Expr:
    """Text padded to ``width`` GBK bytes (a Chinese character takes two)."""
    text = (pl.col(column) if isinstance(column, str) else column).fill_null("")
    chars = pl.lit(width) - text.str.count_matches(r"[^\x00-\x7f]")
    return text.str.pad_end(chars, fill) if align == "left" else text.str.pad_start(chars, fill)


def bank_fixed_file(day: dt.date, lines: pl.DataFrame, total_error_fen: int = 0) -> bytes:
    """A fixed-width bank 回盘 (layout ``bank_fixed_v1``): widths in GBK bytes, amounts in fen."""
    ordered = lines.sort("settled_at", "txn_id").with_row_index("seq", offset=1)
    success = ordered.filter(pl.col("status") == "SUCCESS")
    body = ordered.select(
        pl.concat_str(
            pl.lit("D"),
            _fixed(pl.col("seq").cast(pl.String), 8, "right", "0"),
            _fixed("reference", 32),
            _fixed("account", 20),
            _fixed(pl.col("name").str.slice(0, 1) + pl.lit("*"), 20),
            _fixed(pl.col("amount_fen").cast(pl.String), 15, "right", "0"),
            pl.when(pl.col("status") == "SUCCESS").then(pl.lit("00")).otherwise(pl.lit("01")),
            _fixed(pl.when(pl.col("reason_code") != "").then(pl.lit("E") + pl.col("reason_code")), 6),
            _fixed("reason_text", 40),
            _fixed("txn_id", 32),
            _shanghai("settled_at", "%Y%m%d%H%M%S"),
        ).alias("line")
    )
    summary = "".join(
        [
            "H",
            f"B{day:%Y%m%d}001".ljust(16),
            f"{day:%Y%m%d}",
            str(ordered.height).zfill(8),
            str(int(ordered["amount_fen"].sum()) + total_error_fen).zfill(15),
            str(success.height).zfill(8),
            str(int(success["amount_fen"].sum())).zfill(15),
        ]
    )
    text = summary + "\r\n" + "\r\n".join(body["line"].to_list()) + "\r\n"
    return text.encode("gb18030")


#: The merchant id of the generated UnionPay files (15 digits, as ACP merchant ids are).
UNIONPAY_MERCHANT = "898310048990001"


def unionpay_zm_name(day: dt.date) -> str:
    """The clearing file's name carries its settlement date: ``INN{yymmdd}88ZM_{merchant}``."""
    return f"INN{day:%y%m%d}88ZM_{UNIONPAY_MERCHANT}"


def unionpay_zme_name(day: dt.date) -> str:
    return f"INN{day:%y%m%d}88ZME_{UNIONPAY_MERCHANT}"


def _signed12(fen: pl.Expr, credit: pl.Expr) -> pl.Expr:
    """A sign letter (``C`` credit, ``D`` debit) and 12 digits of fen: 商户手续费, 结算金额, 清算净额."""
    letter = pl.when(credit).then(pl.lit("C")).otherwise(pl.lit("D"))
    return letter + fen.abs().cast(pl.String).str.pad_start(12, "0")


def unionpay_zm_file(day: dt.date, lines: pl.DataFrame) -> bytes:
    """A UnionPay ACP clearing file (ZM) of the day's successes: GBK, CRLF, 42 fixed-width fields
    each followed by a space, times ``MMDDhhmmss`` without a year. A line's kind is its 交易类型
    (11 代收, 04 退货); a refund names its original by 原交易查询流水号 and 原始交易订单号. The 交易代码
    values written (S56, S31) are placeholders: their list is not published and nothing reads them.
    Fees are 0.6 % of the amount, to the fen; the sign letters are this generator's assumption."""
    ok = lines.filter(pl.col("status") == "SUCCESS").sort("settled_at", "txn_id").with_row_index("trace")
    refund = pl.col("kind") == "refund"
    fee = _fee_fen(pl.col("amount_fen"))
    blank = pl.lit("")
    fields = [
        (pl.when(refund).then(pl.lit("S31")).otherwise(pl.lit("S56")), 3),
        (pl.lit("48021000"), 11), (pl.lit("48021000"), 11),
        ((pl.col("trace") % 999_999 + 1).cast(pl.String).str.pad_start(6, "0"), 6),
        (_shanghai("settled_at", "%m%d%H%M%S"), 10),
        (pl.col("account"), 19),
        (pl.col("amount_fen").cast(pl.String).str.pad_start(12, "0"), 12),
        (pl.lit("6012"), 4), (pl.lit("07"), 2),
        (pl.when(refund).then(pl.col("refund_no")).otherwise(pl.col("txn_id")), 21),
        (blank, 2),
        (pl.when(refund).then(format_text("RF{}", pl.col("refund_no"))).otherwise(pl.col("reference")), 32),
        (pl.lit("01"), 2), (blank, 6), (blank, 10),
        (_signed12(fee, refund), 13),
        (_signed12(pl.col("amount_fen"), ~refund), 13),
        (blank, 4), (blank, 15),
        (pl.when(refund).then(pl.lit("04")).otherwise(pl.lit("11")), 2),
        (pl.when(refund).then(pl.lit("00")).otherwise(pl.lit("02")), 2),
        (pl.lit("000501"), 6), (pl.lit("01"), 2), (blank, 4), (blank, 32), (pl.lit("0"), 1),
        (pl.when(refund).then(pl.col("txn_id")), 21),
        (pl.lit(UNIONPAY_MERCHANT), 15), (blank, 1), (blank, 15), (blank, 32), (blank, 13),
        (_signed12(pl.col("amount_fen") - fee, ~refund), 13),
        (blank, 8), (pl.col("memo"), 32), (blank, 13), (blank, 13), (blank, 12), (blank, 2), (blank, 1),
        (pl.when(refund).then(pl.col("reference")), 32), (blank, 98),
    ]  # fmt: skip
    too_long = ok.select(
        pl.any_horizontal([_fixed(text, width).str.len_chars() > width for text, width in fields]).alias("_over")
    )["_over"]
    if too_long.any():  # a field that overflows would shift every field after it: refuse, never truncate
        raise ValueError(f"{int(too_long.sum())} line(s) hold a value longer than its ZM field")
    body = ok.select(pl.concat_str([_fixed(text, width) for text, width in fields], separator=" ").alias("line"))
    return ("\r\n".join(body["line"].to_list()) + ("\r\n" if body.height else "")).encode("gb18030")


def unionpay_zme_file(day: dt.date, lines: pl.DataFrame) -> bytes:
    """A ZME file (差错) of ``lines``: 22 fixed-width fields each followed by a space; the first
    eight as in ZM (交易代码 ``E22`` here, a placeholder), the rest blank."""
    widths = [3, 11, 11, 6, 10, 19, 12, 4, 2, 2, 6, 10, 4, 12, 13, 13, 15, 15, 1, 12, 2, 135]
    ordered = lines.sort("settled_at", "txn_id").with_row_index("trace")
    known = [
        pl.lit("E22"), pl.lit("48021000"), pl.lit("48021000"),
        (pl.col("trace") % 999_999 + 1).cast(pl.String).str.pad_start(6, "0"),
        _shanghai("settled_at", "%m%d%H%M%S"), pl.col("account"),
        pl.col("amount_fen").cast(pl.String).str.pad_start(12, "0"), pl.lit("6012"),
    ]  # fmt: skip
    texts = [*known, *[pl.lit("")] * (len(widths) - len(known))]
    body = ordered.select(
        pl.concat_str([_fixed(t, w) for t, w in zip(texts, widths, strict=True)], separator=" ").alias("line")
    )
    return ("\r\n".join(body["line"].to_list()) + ("\r\n" if body.height else "")).encode("gb18030")


def unionpay_delivery(day: dt.date, lines: pl.DataFrame, errors: pl.DataFrame | None = None) -> tuple[str, bytes]:
    """The day's clearing files as UnionPay delivers them: ``{merchant}_{YYYYMMDD}.zip`` holding ZM,
    ZME and an RD summary report (a few lines of text, which nothing reads)."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(unionpay_zm_name(day), unionpay_zm_file(day, lines))
        adjustments = errors if errors is not None else lines.clear()
        archive.writestr(unionpay_zme_name(day), unionpay_zme_file(day, adjustments))
        ok = lines.filter(pl.col("status") == "SUCCESS")
        report = f"商户代码:{UNIONPAY_MERCHANT}\r\n清算日期:{day:%Y%m%d}\r\n交易笔数:{ok.height}\r\n"
        archive.writestr(f"INN{day:%y%m%d}88RD_{UNIONPAY_MERCHANT}", report.encode("gb18030"))
    return f"{UNIONPAY_MERCHANT}_{day:%Y%m%d}.zip", buffer.getvalue()


def offline_repayments_file(lines: pl.DataFrame) -> bytes:
    """Store and staff entries (layout ``offline_repayments``): UTF-8 CSV, contract no per line."""
    ok = lines.filter((pl.col("status") == "SUCCESS") & (pl.col("kind") == "debit")).sort("settled_at", "txn_id")
    body = ok.select(
        pl.lit("S0012").alias("门店编号"),
        pl.lit("店员甲").alias("经办人"),
        pl.col("txn_id").alias("收款流水号"),
        pl.col("memo").str.extract(r"^(\S+)", 1).fill_null(pl.col("reference")).alias("合同号"),
        fen_expr_to_yuan_text("amount_fen").alias("还款金额"),
        _shanghai("settled_at", "%Y-%m-%d %H:%M:%S").alias("收款时间"),
        pl.lit("现金").alias("收款方式"),
        pl.lit("").alias("备注"),
    )
    return body.write_csv(quote_style="never").encode("utf-8")


#: The columns of WeChat Pay's trade bill, by bill type (current layout, as published): ALL has 27;
#: SUCCESS leaves out the refund columns; REFUND adds the refund's request and success times.
WECHAT_COLUMNS = {
    "ALL": (
        "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
        "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "微信退款单号", "商户退款单号", "退款金额",
        "充值券退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率", "订单金额",
        "申请退款金额", "费率备注",
    ),
    "SUCCESS": (
        "交易时间", "公众账号ID", "商户号", "特约商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
        "交易状态", "付款银行", "货币种类", "应结订单金额", "代金券金额", "商品名称", "商户数据包", "手续费", "费率",
        "订单金额", "费率备注",
    ),
}  # fmt: skip
WECHAT_COLUMNS["REFUND"] = (
    *WECHAT_COLUMNS["ALL"][:14], "退款申请时间", "退款成功时间", *WECHAT_COLUMNS["ALL"][14:]
)  # fmt: skip
WECHAT_SUMMARY = {
    "ALL": (
        "总交易单数", "应结订单总金额", "退款总金额", "充值券退款总金额", "手续费总金额", "订单总金额",
        "申请退款总金额",
    ),
    "SUCCESS": ("总交易单数", "应结订单总金额", "手续费总金额", "订单总金额"),
}  # fmt: skip
WECHAT_SUMMARY["REFUND"] = WECHAT_SUMMARY["ALL"]
#: The early layout of the ALL bill (V2 downloadbill before 免充值券): other names, fewer columns.
WECHAT_EARLY_COLUMNS = (
    "交易时间", "公众账号ID", "商户号", "子商户号", "设备号", "微信订单号", "商户订单号", "用户标识", "交易类型",
    "交易状态", "付款银行", "货币种类", "总金额", "代金券或立减优惠金额", "微信退款单号", "商户退款单号", "退款金额",
    "代金券或立减优惠退款金额", "退款类型", "退款状态", "商品名称", "商户数据包", "手续费", "费率",
)  # fmt: skip
WECHAT_EARLY_SUMMARY = ("总交易单数", "总交易额", "总退款金额", "总代金券或立减优惠退款金额", "手续费总金额")
def _fee_text(fen: pl.Expr) -> pl.Expr:
    """A fee of ``fen × 0.6 %`` in yuan with five decimals, as WeChat's bill writes 手续费."""
    millis = fen * FEE_PER_MILLE  # in 1/1000 fen = 1/100,000 yuan
    whole = (millis.abs() // 100_000).cast(pl.String)
    return format_text("{}.{}", whole, (millis.abs() % 100_000).cast(pl.String).str.pad_start(5, "0"))


def _fee_total_text(fen: int) -> str:
    """:func:`_fee_text` of a total, for a summary line."""
    millis = fen * FEE_PER_MILLE
    return f"{'-' if millis < 0 else ''}{abs(millis) // 100_000}.{abs(millis) % 100_000:05d}"


def wechat_trade_bill(
    day: dt.date, lines: pl.DataFrame, bill_type: str = "ALL", tab: bool = False, early: bool = False
) -> bytes:
    """A WeChat Pay trade bill (交易账单) of the day's successes: UTF-8, every value prefixed by a
    backtick, then the summary table (总交易单数 …). ``bill_type``: ``ALL``, ``SUCCESS`` (payments
    only) or ``REFUND`` (refunds only). ``tab``: as a spreadsheet saves it, TAB-separated and
    without the backticks. ``early``: the early ALL layout (总金额, 总交易额…). A refund line carries
    the payment's ids, 0.00 as its order amount and its amount as 退款金额."""
    ok = lines.filter(pl.col("status") == "SUCCESS").sort("settled_at", "txn_id")
    if bill_type == "SUCCESS":
        ok = ok.filter(pl.col("kind") == "debit")
    elif bill_type == "REFUND":
        ok = ok.filter(pl.col("kind") == "refund")
    refund = pl.col("kind") == "refund"
    paid = pl.when(refund).then(0).otherwise(pl.col("amount_fen"))
    refunded = pl.when(refund).then(pl.col("amount_fen")).otherwise(0)
    at = _shanghai("settled_at", "%Y-%m-%d %H:%M:%S")
    values = {
        "交易时间": at, "公众账号ID": pl.lit("wx2421b1c4370ec43b"), "商户号": pl.lit("1900000109"),
        "特约商户号": pl.lit("0"), "设备号": pl.lit(""), "微信订单号": pl.col("txn_id"),
        "商户订单号": pl.col("reference").fill_null(""),
        "用户标识": format_text("oUpF8u{}", pl.col("txn_id").str.slice(-8)),
        "交易类型": pl.lit("PAP"), "交易状态": pl.when(refund).then(pl.lit("REFUND")).otherwise(pl.lit("SUCCESS")),
        "付款银行": pl.lit("CMB_DEBIT"), "货币种类": pl.lit("CNY"), "应结订单金额": fen_expr_to_yuan_text(paid),
        "代金券金额": pl.lit("0.00"), "退款申请时间": pl.when(refund).then(at).otherwise(pl.lit("")),
        "退款成功时间": pl.when(refund).then(at).otherwise(pl.lit("")),
        "微信退款单号": pl.col("refund_no").fill_null(""),
        "商户退款单号": pl.when(refund).then(format_text("MR{}", pl.col("refund_no"))).otherwise(pl.lit("")),
        "退款金额": fen_expr_to_yuan_text(refunded), "充值券退款金额": pl.lit("0.00"),
        "退款类型": pl.when(refund).then(pl.lit("ORIGINAL")).otherwise(pl.lit("")),
        "退款状态": pl.when(refund).then(pl.lit("SUCCESS")).otherwise(pl.lit("")), "商品名称": pl.lit("贷款还款"),
        "商户数据包": pl.col("memo").fill_null(""),
        "手续费": pl.when(refund).then(pl.lit("-") + _fee_text(pl.col("amount_fen"))).otherwise(
            _fee_text(pl.col("amount_fen"))),
        "费率": pl.lit("0.60%"), "订单金额": fen_expr_to_yuan_text(paid),
        "申请退款金额": fen_expr_to_yuan_text(refunded), "费率备注": pl.lit(""),
    }  # fmt: skip
    if early:
        values |= {"子商户号": values["特约商户号"], "总金额": values["应结订单金额"]}
        values |= {"代金券或立减优惠金额": pl.lit("0.00"), "代金券或立减优惠退款金额": pl.lit("0.00")}
    mark = "" if tab else "`"
    delimiter = "\t" if tab else ","
    columns = WECHAT_EARLY_COLUMNS if early else WECHAT_COLUMNS[bill_type]
    body = ok.select([(pl.lit(mark) + values[name]).alias(name) for name in columns])
    debit_fen = int(ok.filter(~refund)["amount_fen"].sum())
    refund_fen = int(ok.filter(refund)["amount_fen"].sum())
    sums = {
        "总交易单数": str(ok.height), "应结订单总金额": fen_to_yuan_text(debit_fen),
        "退款总金额": fen_to_yuan_text(refund_fen), "充值券退款总金额": "0.00",
        "手续费总金额": _fee_total_text(debit_fen - refund_fen),
        "订单总金额": fen_to_yuan_text(debit_fen),
        "申请退款总金额": fen_to_yuan_text(refund_fen),
    }  # fmt: skip
    if early:
        sums |= {"总交易额": sums["应结订单总金额"], "总退款金额": sums["退款总金额"]}
        sums |= {"总代金券或立减优惠退款金额": "0.00"}
    summary = WECHAT_EARLY_SUMMARY if early else WECHAT_SUMMARY[bill_type]
    text = (
        body.write_csv(separator=delimiter, quote_style="never")
        + delimiter.join(summary) + "\n"
        + delimiter.join(mark + sums[name] for name in summary) + "\n"
    )  # fmt: skip
    return text.replace("\n", "\r\n").encode("utf-8")


def wechat_fundflow_bill(day: dt.date, lines: pl.DataFrame) -> bytes:
    """A WeChat Pay fund-flow bill (资金账单) of the day's successes: a line per payment (收入), per
    refund (支出) and per payment's fee (扣除交易手续费, 支出), with the running balance, then the
    summary table (资金流水总笔数 …)."""
    ok = lines.filter(pl.col("status") == "SUCCESS").sort("settled_at", "txn_id")
    refund = pl.col("kind") == "refund"
    fee = _fee_fen(pl.col("amount_fen"))  # to the fen, as the balance moves
    moves = pl.concat(
        [
            ok.select(
                "settled_at", "txn_id", pl.col("refund_no"),
                pl.when(refund).then(pl.lit("退款")).otherwise(pl.lit("交易")).alias("_kind"),
                pl.when(refund).then(-pl.col("amount_fen")).otherwise(pl.col("amount_fen")).alias("_fen"),
                pl.lit(0).alias("_order"),
            ),
            ok.filter(~refund).select(
                "settled_at", "txn_id", pl.col("refund_no"), pl.lit("扣除交易手续费").alias("_kind"),
                (-fee).alias("_fen"), pl.lit(1).alias("_order"),
            ),
        ]
    ).sort("settled_at", "txn_id", "_order")  # fmt: skip
    moves = moves.with_row_index("_n").with_columns(_balance=pl.col("_fen").cum_sum())
    income, expense = moves.filter(pl.col("_fen") > 0), moves.filter(pl.col("_fen") < 0)
    body = moves.select(
        (pl.lit("`") + _shanghai("settled_at", "%Y-%m-%d %H:%M:%S")).alias("记账时间"),
        (pl.lit("`") + pl.when(pl.col("_kind") == "退款").then(pl.col("refund_no")).otherwise(pl.col("txn_id")))
        .alias("微信支付业务单号"),
        format_text("`{}{}", pl.lit(f"{day:%Y%m%d}"), pl.col("_n").cast(pl.String).str.pad_start(10, "0"))
        .alias("资金流水单号"),
        (pl.lit("`") + pl.when(pl.col("_kind") == "退款").then(pl.lit("退款")).otherwise(pl.lit("交易")))
        .alias("业务名称"),
        (pl.lit("`") + pl.col("_kind")).alias("业务类型"),
        (pl.lit("`") + pl.when(pl.col("_fen") > 0).then(pl.lit("收入")).otherwise(pl.lit("支出"))).alias("收支类型"),
        (pl.lit("`") + fen_expr_to_yuan_text(pl.col("_fen").abs())).alias("收支金额(元)"),
        (pl.lit("`") + fen_expr_to_yuan_text("_balance")).alias("账户结余(元)"),
        pl.lit("`system").alias("资金变更提交申请人"),
        pl.lit("`").alias("备注"),
        pl.lit("`").alias("业务凭证号"),
    )  # fmt: skip
    summary = ["资金流水总笔数", "收入笔数", "收入金额", "支出笔数", "支出金额"]
    values = [f"{moves.height}.0", f"{income.height}.0", fen_to_yuan_text(int(income["_fen"].sum())),
              f"{expense.height}.0", fen_to_yuan_text(int(-expense["_fen"].sum()))]  # fmt: skip
    text = body.write_csv(quote_style="never") + ",".join(summary) + "\n" + ",".join("`" + v for v in values) + "\n"
    return text.replace("\n", "\r\n").encode("utf-8")


def processor_sectioned_file(day: dt.date, lines: pl.DataFrame, split_every: int = 5) -> bytes:
    """A processor's sectioned file (layout ``processor_sectioned``): the date, a summary section
    (a row per terminal and transaction type: lines and yuan), then the details. Every
    ``split_every``-th successful debit is split among two accounts (分账): two lines with the same
    宝付交易号, parts 1 and 2, whose amounts add up to the payment's."""
    ordered = lines.sort("settled_at", "txn_id").with_row_index("_n")
    refund = pl.col("kind") == "refund"
    split = (pl.col("_n") % split_every == split_every - 1) & ~refund & (pl.col("status") == "SUCCESS")
    split = split & (pl.col("amount_fen") >= 2)
    first = ordered.with_columns(
        _part=pl.lit("1"),
        _fen=pl.when(split).then(pl.col("amount_fen") // 2).otherwise(pl.col("amount_fen")),
        _terminal=pl.when(pl.col("_n") % 3 == 0).then(pl.lit("T0002")).otherwise(pl.lit("T0001")),
    )
    second = first.filter(split).with_columns(_part=pl.lit("2"), _fen=pl.col("amount_fen") - pl.col("_fen"))
    details = pl.concat([first, second]).sort("_n", "_part")
    body = details.select(
        pl.col("_terminal").alias("终端号"),
        pl.when(refund).then(pl.lit("退款")).otherwise(pl.lit("代扣")).alias("交易类型"),
        pl.col("reference").fill_null("").alias("商户订单号"),
        pl.col("txn_id").alias("宝付交易号"),
        pl.col("_part").alias("分账序号"),
        fen_expr_to_yuan_text("_fen").alias("交易金额"),
        pl.when(pl.col("status") == "SUCCESS").then(pl.lit("成功")).otherwise(pl.lit("失败")).alias("交易状态"),
        pl.col("reason_text").fill_null("").alias("失败原因"),
        _shanghai("settled_at", "%Y-%m-%d %H:%M:%S").alias("完成时间"),
        pl.col("account").alias("银行卡号"),
        pl.col("refund_no").fill_null("").alias("退款单号"),
    )
    summary = (
        body.group_by("终端号", "交易类型")
        .agg(pl.len().alias("总笔数"), (pl.col("交易金额").str.replace(".", "", literal=True).cast(pl.Int64)).sum())
        .sort("终端号", "交易类型")
        .with_columns(pl.col("总笔数").cast(pl.String), 总金额=fen_expr_to_yuan_text("交易金额"))
        .select("终端号", "交易类型", "总笔数", "总金额")
    )
    text = (
        f"商户号|800000123|对账日期|{day:%Y%m%d}\n汇总信息\n"
        + summary.write_csv(separator="|", quote_style="never")
        + "明细信息\n"
        + body.write_csv(separator="|", quote_style="never")
    )
    return text.encode("utf-8")
