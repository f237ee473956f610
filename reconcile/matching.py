"""Matching a business date's channel records to instructions and installments.

A worked day. Loan C1 owes 1,134.72 on installment 3, due today; the platform sent instruction
I1 for it through Alipay and I2 (a retry) through the bank. Alipay's bill lists I1 as paid
1,134.72; the bank's result file lists I2 as paid too, one minute later.

- Pass ``exact_reference`` finds both records by their echoed instruction id.
- Settlement takes payments on an installment in settled-time order (then channel, then channel
  transaction id): I1 pays the installment off (``MATCHED``); I2 finds nothing left to pay:
  ``DUPLICATE_DEBIT``, 1,134.72 held for refund.
- A bank line for instruction I3 says 余额不足: ``DEBIT_FAILED`` with reason
  ``INSUFFICIENT_FUNDS`` and action ``RETRY``; the installment stays open.
- An Alipay line with an order number we never issued and no contract in its memo:
  ``UNMATCHED_DEBIT``, held in suspense.
- Instruction I4 went to the bank, whose file lists every instruction, but has no line:
  ``MISSING_RESULT``.

The passes run in order; each takes the records still unplaced and returns the ones it placed:

1. ``exact_reference`` — the record echoes an instruction id we issued.
2. ``borrower_memo`` — a repayment the borrower started (app, store) carries the contract no in
   its memo; it pays the oldest open installment of that contract, and what that installment
   cannot take spills to the next open one, and so on (one ledger row per installment reached,
   numbered ``seq``); what the whole contract cannot take is ``OVERPAYMENT``, held. One that finds
   its installment already paid that day (the auto-debit came first) is ``DUPLICATE_DEBIT``, held
   whole, not a prepayment of the next. A borrower
   who pays 1,500.00 against C2 owing 1,000.00 on installments 4 and 5: installment 4 is paid,
   5 gets 500.00 and stays open (``PARTIAL_PAYMENT``); a later refund undoes 5 first, then 4.
3. ``fallback`` — no usable reference: same channel, same amount, an account that agrees, an
   instruction requested within the window before settlement. One candidate: matched with a score;
   several: ``AMBIGUOUS_MATCH`` (held, never a guess); none: ``UNMATCHED_DEBIT`` (held).

Then the rules that give each record its outcome: when several fire, the first in
:data:`reconcile.codes.OUTCOME_PRECEDENCE` wins and the others are kept as ``flags``.
Refunds (``REVERSAL``) undo the payment they name: what it applied comes off the installment in
reverse allocation order, what it had held is released.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

import polars as pl

from reconcile.codes import OUTCOME_PRECEDENCE, Outcome
from reconcile.keys import instruction_key_expr, record_key_expr
from reconcile.masking import accounts_agree_expr
from reconcile.settings import Settings, business_date_bounds_utc
from reconcile.text import format_text

PARTS = ("penalty", "fee", "interest", "principal")


@dataclass(frozen=True)
class MatchInput:
    """The three views of a business date, plus what earlier dates settled.

    ``records``: valid channel records of the date's accepted files (ChannelRecordFrame).
    ``instructions``: instructions that may be answered on the date (InstructionFrame).
    ``installments``: installments of every contract involved, with ``<part>_due_fen``,
    ``<part>_paid_fen`` as settled before the date, ``due_date`` and ``grace_days`` (and, if the
    caller has it at hand, the loan's ``bound_account``: then ``loans`` is not consulted for it).
    ``loans``: ``contract_no``, ``bound_channel``, ``bound_account``.
    ``prior_payments``: earlier ledger payments (for refunds of them): ``channel``,
    ``channel_txn_id``, ``reference``, ``contract_no``, ``installment_no``, ``<part>_fen``,
    ``held_fen``.
    ``answering_channels``: channels whose file for the date was accepted.
    ``invalid_references``: references read from invalid lines; their instructions are answered
    (by an ``INVALID_RECORD``), not missing.
    """

    business_date: dt.date
    records: pl.DataFrame
    instructions: pl.DataFrame
    installments: pl.DataFrame
    loans: pl.DataFrame
    prior_payments: pl.DataFrame
    answering_channels: frozenset[str]
    invalid_references: frozenset[str] = frozenset()


@dataclass(frozen=True)
class MatchResult:
    """``outcomes``: one row per record and per due instruction left without one (OutcomeFrame
    plus context columns). ``ledger``: the date's payments and reversals (LedgerFrame)."""

    outcomes: pl.DataFrame
    ledger: pl.DataFrame
    pass_counts: dict[str, int]


PLACEMENT_SCHEMA = {
    "_row": pl.UInt32,
    "_ins": pl.UInt32,  # the instruction's row in MatchInput.instructions (null: none)
    "instruction_id": pl.String,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "match_pass": pl.String,
    "score": pl.Int64,
    "candidates": pl.Int64,
    "placement": pl.String,
    "candidate_ids": pl.String,
    "candidate_scores": pl.String,
    "instr_amount_fen": pl.Int64,
    "instr_account": pl.String,
    "platform_status": pl.String,
    "platform_code": pl.String,
}


def _placed(frame: pl.DataFrame) -> pl.DataFrame:
    if "candidate_ids" not in frame.columns:
        frame = frame.with_columns(candidate_ids=pl.col("instruction_id").cast(pl.String))
    for name in ("candidate_scores", "instr_account", "platform_status", "platform_code"):
        if name not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(name))
    if "instr_amount_fen" not in frame.columns:
        frame = frame.with_columns(instr_amount_fen=pl.lit(None, pl.Int64))
    if "_ins" not in frame.columns:
        frame = frame.with_columns(_ins=pl.lit(None, pl.UInt32))
    return frame.select([pl.col(name).cast(dtype) for name, dtype in PLACEMENT_SCHEMA.items()])


def pass_exact_reference(debits: pl.DataFrame, data: MatchInput, settings: Settings) -> pl.DataFrame:
    """Records whose reference is one of our instruction ids.

    Unlike the later passes it returns every record, in row order (most are placed here, so the
    others are found by a mask rather than a join): ``placement`` is null where no id matched.
    """
    joined = debits.select("_row", "reference").join(
        data.instructions.select(
            "_ins",
            "instruction_id",
            "contract_no",
            "installment_no",
            pl.col("amount_fen").alias("instr_amount_fen"),
            pl.col("account").alias("instr_account"),
            "platform_status",
            "platform_code",
        ),
        left_on="reference",
        right_on="instruction_id",
        how="left",
        maintain_order="left",
    )
    hit = pl.col("_ins").is_not_null()
    return _placed(
        joined.with_columns(
            instruction_id=pl.when(hit).then(pl.col("reference")),
            match_pass=pl.when(hit).then(pl.lit("exact_reference")),
            score=pl.when(hit).then(pl.lit(100)),
            candidates=pl.when(hit).then(pl.lit(1)),
            placement=pl.when(hit).then(pl.lit("matched")),
        )
    )


def pass_borrower_memo(debits: pl.DataFrame, data: MatchInput, settings: Settings) -> pl.DataFrame:
    """Successful records without an instruction whose memo names a contract: its oldest open installment."""
    remaining = _installment_remaining(data.installments)
    oldest_open = (
        remaining.filter(pl.col("remaining_fen") > 0)
        .sort("contract_no", "installment_no")
        .group_by("contract_no", maintain_order=True)
        .agg(pl.col("installment_no").first())
    )
    with_contract = debits.filter(pl.col("status") == "SUCCESS").with_columns(
        memo_contract=pl.col("memo").str.extract(r"([A-Za-z0-9_-]+)", 1)
    )
    joined = with_contract.join(oldest_open, left_on="memo_contract", right_on="contract_no", how="inner")
    return _placed(
        joined.with_columns(
            instruction_id=pl.lit(None, pl.String),
            contract_no=pl.col("memo_contract"),
            match_pass=pl.lit("borrower_memo"),
            score=pl.lit(100),
            candidates=pl.lit(1),
            placement=pl.lit("matched"),
        )
    )


def fallback_score_expr(settings: Settings) -> pl.Expr:
    """Score a candidate 0–100: amount 40 (exact) or 25 (within tolerance), account 40 when the
    channel shows one that agrees, time up to 20 (the sooner after the request, the more)."""
    window_us = settings.fallback_window_days * 86_400 * 1_000_000
    lag_us = (pl.col("settled_at") - pl.col("requested_at")).dt.total_microseconds()
    amount = pl.when(pl.col("amount_fen") == pl.col("instr_amount_fen")).then(40).otherwise(25)
    account = pl.when(pl.col("account_shown").is_not_null()).then(40).otherwise(0)
    timing = (20 * (1 - lag_us / max(window_us, 1))).floor().cast(pl.Int64)
    return (amount + account + timing).clip(0, 100).cast(pl.Int64)


def pass_fallback(debits: pl.DataFrame, data: MatchInput, settings: Settings) -> pl.DataFrame:
    """Records without a usable reference: same channel, an account that agrees (by the characters
    the channel shows), an amount within tolerance, requested within the window before settlement.

    Candidates scoring at least the threshold compete: a clear best is matched with its score;
    several within the margin of the best make an ``AMBIGUOUS_MATCH`` (never a guess).
    """
    window = dt.timedelta(days=settings.fallback_window_days)
    unreferenced = debits.filter(pl.col("reference").is_null() & (pl.col("status") == "SUCCESS")).select(
        "_row", "channel", "amount_fen", "account_shown", "settled_at",
        pl.col("account_shown").str.slice(-4).alias("_tail"),
    )  # fmt: skip
    instructions = data.instructions.select(
        "_ins", "instruction_id", "contract_no", "installment_no", "channel",
        pl.col("amount_fen").alias("instr_amount_fen"), pl.col("account").alias("instr_account"), "requested_at",
        "platform_status", "platform_code", pl.col("account").str.slice(-4).alias("_tail"),
    )  # fmt: skip
    # Shown accounts narrow the search by their visible tail; without one, only exact amounts qualify.
    by_account = unreferenced.filter(pl.col("_tail").is_not_null()).join(
        instructions, on=["channel", "_tail"], how="inner"
    )
    by_amount = unreferenced.filter(pl.col("_tail").is_null()).join(
        instructions.drop("_tail"), left_on=["channel", "amount_fen"], right_on=["channel", "instr_amount_fen"],
        how="inner",
    ).with_columns(instr_amount_fen=pl.col("amount_fen"))  # fmt: skip
    candidates = pl.concat([by_account.drop("_tail"), by_amount.drop("_tail")], how="diagonal_relaxed")
    candidates = candidates.filter(
        accounts_agree_expr("account_shown", "instr_account")
        & ((pl.col("amount_fen") - pl.col("instr_amount_fen")).abs() <= settings.amount_tolerance_fen)
        & (pl.col("requested_at") <= pl.col("settled_at"))
        & (pl.col("requested_at") >= pl.col("settled_at") - window)
    ).with_columns(score=fallback_score_expr(settings))
    candidates = candidates.filter(pl.col("score") >= settings.fallback_threshold).with_columns(
        best=pl.col("score").max().over("_row")
    )
    contenders = candidates.filter(pl.col("score") >= pl.col("best") - settings.ambiguity_margin)
    placed = (
        contenders.sort("_row", pl.col("score"), "instruction_id", descending=[False, True, False])
        .group_by("_row", maintain_order=True)
        .agg(
            pl.col("_ins").first(),
            pl.col("instruction_id").first(),
            pl.col("contract_no").first(),
            pl.col("installment_no").first(),
            pl.col("score").first(),
            pl.col("instr_amount_fen").first(),
            pl.col("instr_account").first(),
            pl.col("platform_status").first(),
            pl.col("platform_code").first(),
            pl.len().alias("candidates"),
            pl.col("instruction_id").str.join(",").alias("candidate_ids"),
            format_text("{} ({})", "instruction_id", "score").str.join(", ").alias("candidate_scores"),
        )
    )
    ambiguous = pl.col("candidates") > 1
    return _placed(
        placed.with_columns(
            _ins=pl.when(ambiguous).then(None).otherwise(pl.col("_ins")),
            instruction_id=pl.when(ambiguous).then(None).otherwise(pl.col("instruction_id")),
            contract_no=pl.when(ambiguous).then(None).otherwise(pl.col("contract_no")),
            installment_no=pl.when(ambiguous).then(None).otherwise(pl.col("installment_no")),
            **{
                name: pl.when(ambiguous).then(None).otherwise(pl.col(name))
                for name in ("instr_amount_fen", "instr_account", "platform_status", "platform_code")
            },
            match_pass=pl.lit("fallback"),
            placement=pl.when(ambiguous).then(pl.lit("ambiguous")).otherwise(pl.lit("matched")),
        )
    )


PASSES = (
    ("exact_reference", pass_exact_reference),
    ("borrower_memo", pass_borrower_memo),
    ("fallback", pass_fallback),
)


def _installment_remaining(installments: pl.DataFrame) -> pl.DataFrame:
    owed = pl.sum_horizontal([pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen") for p in PARTS])
    return installments.select("contract_no", "installment_no", remaining_fen=owed)


def place_debits(debits: pl.DataFrame, data: MatchInput, settings: Settings) -> tuple[pl.DataFrame, dict[str, int]]:
    """Run the passes in order over the debit records; every record leaves with one placement.

    ``debits`` are numbered by ``_row`` from 0 in order; the placements come back in that order.
    """
    (first_name, first_pass), *later_passes = PASSES
    placements = first_pass(debits, data, settings)
    placed_first = placements["placement"].is_not_null()
    counts: dict[str, int] = {first_name: int(placed_first.sum())}
    left = debits.filter(~placed_first)
    later = []
    for name, match_pass in later_passes:
        placed = match_pass(left, data, settings)
        counts[name] = placed.height
        later.append(placed)
        if placed.height:
            left = left.join(placed.select("_row"), on="_row", how="anti")
    counts["unplaced"] = left.height
    later.append(
        _placed(
            left.select("_row").with_columns(
                instruction_id=pl.lit(None),
                contract_no=pl.lit(None),
                installment_no=pl.lit(None),
                match_pass=pl.lit("none"),
                score=pl.lit(0),
                candidates=pl.lit(0),
                placement=pl.lit("unmatched"),
            )
        )
    )
    rest = pl.concat(later)
    if rest.height == 0:
        return placements, counts
    # the later passes' few placements go into their rows
    columns = [
        placements[name].scatter(rest["_row"], rest[name]) if name != "_row" else placements[name]
        for name in placements.columns
    ]
    return pl.DataFrame(columns), counts


def allocate_payments(payments: pl.DataFrame, installments: pl.DataFrame, order: tuple[str, ...]) -> pl.DataFrame:
    """Apply payments to their installments in settled-time order, each in allocation order.

    For one installment owing ``R`` before the date, payments ``p1..pk`` (sorted by settled time,
    channel, transaction id) with running total ``S``: payment ``k`` applies
    ``min(R, S_k) - min(R, S_{k-1})`` and holds the rest. The parts fill in allocation order the
    same way, on running totals, so no loop and no dependence on row order.
    """
    remaining_parts = installments.select(
        "contract_no",
        "installment_no",
        *[(pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen")).alias(f"{p}_owed_fen") for p in PARTS],
        # for the lateness and account rules (the loan's bound account, when the caller joined it)
        *[c for c in ("due_date", "grace_days", "bound_account") if c in installments.columns],
    )
    joined = payments.join(remaining_parts.with_row_index("_inst"), on=["contract_no", "installment_no"], how="left")
    # the installment's row number groups its payments as well as its key does, and sorts faster
    by_number = joined["_inst"].null_count() == 0
    group = ["_inst"] if by_number else ["contract_no", "installment_no"]
    sorted_payments = joined.sort(*group, "settled_at", "channel", "channel_txn_id")
    owed_total = pl.sum_horizontal([pl.col(f"{p}_owed_fen") for p in PARTS]).clip(lower_bound=0)
    # Rows are sorted by installment: a group starts where the installment changes. Running totals
    # within a group are the global running total minus what came before the group (no hashing).
    starts = pl.any_horizontal([pl.col(c) != pl.col(c).shift() for c in group]).fill_null(True)
    ends = pl.any_horizontal([pl.col(c) != pl.col(c).shift(-1) for c in group]).fill_null(True)
    frame = (
        sorted_payments.with_columns(
            owed_total_fen=owed_total,
            _running=pl.col("amount_fen").cum_sum(),
            _start=starts,
            _end=ends,
        )
        .with_columns(  # the running total before the group and at its end, carried over its rows
            _before=pl.when("_start").then(pl.col("_running") - pl.col("amount_fen")).forward_fill(),
            _through=pl.when("_end").then(pl.col("_running")).backward_fill(),
        )
        .with_columns(
            cum_after=pl.col("_running") - pl.col("_before"),
            _group_total=pl.col("_through") - pl.col("_before"),
        )
        .with_columns(cum_before=pl.col("cum_after") - pl.col("amount_fen"))
    )
    frame = frame.with_columns(
        applied_after=pl.min_horizontal("owed_total_fen", "cum_after"),
        applied_before=pl.min_horizontal("owed_total_fen", "cum_before"),
    )
    offset: pl.Expr = pl.lit(0, pl.Int64)
    part_columns = []
    for part in order:
        owed = pl.col(f"{part}_owed_fen").clip(lower_bound=0)
        after = (pl.col("applied_after") - offset).clip(lower_bound=0, upper_bound=None)
        before = (pl.col("applied_before") - offset).clip(lower_bound=0, upper_bound=None)
        part_columns.append((pl.min_horizontal(after, owed) - pl.min_horizontal(before, owed)).alias(f"{part}_fen"))
        offset = offset + owed
    frame = frame.with_columns(part_columns).with_columns(
        applied_fen=pl.col("applied_after") - pl.col("applied_before"),
        paid_off_by_day_end=pl.col("_group_total") >= pl.col("owed_total_fen"),
        already_paid_before=pl.col("applied_before") >= pl.col("owed_total_fen"),
    )
    return frame.with_columns(held_fen=pl.col("amount_fen") - pl.col("applied_fen")).drop(
        "_running", "_start", "_end", "_before", "_through", "_group_total", "_inst"
    )


def allocate_spilling(payments: pl.DataFrame, installments: pl.DataFrame, order: tuple[str, ...]) -> pl.DataFrame:
    """:func:`allocate_payments`, where a payment with ``spills`` (a repayment naming only its
    contract) carries what its installment cannot take on to the contract's next open installment.

    One row per payment and installment it reaches, numbered ``seq`` from 1. Rounds: allocate;
    each spilling payment still holding money on its latest installment keeps there only what it
    applied and sends the rest, with its own settled time, to the next installment that was open
    before the date, unless it applied nothing on its first installment (paid off earlier that day:
    a duplicate, held whole). A segment that spills had paid its installment off, so shrinking it to what it
    applied changes nothing for the payments after it. Rounds end when nothing moves (at most one
    per installment); what no installment takes is held on the last one.
    """
    payments = payments.with_columns(seq=pl.lit(1, pl.Int64))
    spilling = payments.filter(pl.col("spills"))["contract_no"].unique()
    if spilling.len() == 0:
        return allocate_payments(payments.drop("spills"), installments, order).with_columns(spills=pl.lit(False))
    moving = pl.col("contract_no").is_in(spilling.implode())
    settled = allocate_payments(payments.filter(~moving).drop("spills"), installments, order)
    states = installments.filter(moving)
    owed = pl.sum_horizontal([pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen") for p in PARTS])
    next_open = (
        states.filter(owed > 0)
        .select("contract_no", pl.col("installment_no").alias("_next"))
        .sort("contract_no", "_next")
    )
    segments = payments.filter(moving)
    while True:
        allocated = allocate_payments(segments, states, order)
        # a repayment whose first installment was already paid when it came (an auto-debit got
        # there first) is a duplicate, held whole: it does not move on to prepay the next one
        duplicate = (pl.col("seq") == 1) & (pl.col("applied_fen") == 0)
        tips = allocated.filter(pl.col("spills") & (pl.col("held_fen") > 0) & ~duplicate).filter(
            pl.col("seq") == pl.col("seq").max().over("_row")
        )
        onward = (
            tips.sort("installment_no")
            .join_asof(
                next_open.with_columns(_after=pl.col("_next") - 1).sort("_after"),
                left_on="installment_no",
                right_on="_after",
                by="contract_no",
                strategy="forward",
                check_sortedness=False,
            )
            .filter(pl.col("_next").is_not_null())
        )
        if onward.height == 0:
            break
        shrunk = onward.select("_row", "seq", _keep=pl.col("applied_fen"))
        segments = (
            segments.join(shrunk, on=["_row", "seq"], how="left")
            .with_columns(amount_fen=pl.coalesce("_keep", "amount_fen"))
            .drop("_keep")
        )
        segments = pl.concat(
            [
                segments,
                onward.select(
                    [
                        pl.col("_next").alias("installment_no") if c == "installment_no"
                        else pl.col("held_fen").alias("amount_fen") if c == "amount_fen"
                        else (pl.col("seq") + 1).alias("seq") if c == "seq"
                        else pl.col(c)
                        for c in segments.columns
                    ]
                ),
            ]
        )  # fmt: skip
    return pl.concat([settled.with_columns(spills=pl.lit(False)), allocated], how="diagonal_relaxed")


def reverse_payments(refunds: pl.DataFrame, originals: pl.DataFrame, order: tuple[str, ...]) -> pl.DataFrame:
    """Undo what each refund's original payment applied, then release what it held.

    One row per refund and installment the original reached (``seq``; a refund whose original is
    unknown gets one row). The latest installment is undone first, each in reverse allocation
    order; ``released_fen`` (the refund beyond what was applied) sits on the first row undone.
    """
    joined = refunds.join(originals, on=["channel", "reference"], how="left", suffix="_orig")
    segment = pl.sum_horizontal([pl.col(f"{p}_fen_orig").fill_null(0) for p in PARTS])
    joined = joined.with_columns(seq=pl.col("seq").fill_null(1), _segment=segment).sort(
        "record_key", "seq", descending=[False, True]
    )
    reached = pl.col("_segment").cum_sum().over("record_key")
    share = pl.min_horizontal("amount_fen", reached) - pl.min_horizontal("amount_fen", reached - pl.col("_segment"))
    joined = joined.with_columns(_share=share)
    left: pl.Expr = pl.col("_share")
    parts = []
    for part in reversed(order):
        taken = pl.min_horizontal(left, pl.col(f"{part}_fen_orig").fill_null(0))
        parts.append((-taken).alias(f"{part}_fen"))
        left = left - taken
    frame = joined.with_columns(parts)
    unapplied = -pl.sum_horizontal([pl.col(f"{p}_fen") for p in PARTS])
    first_undone = pl.int_range(pl.len()).over("record_key") == 0
    released = pl.col("amount_fen") - pl.col("_share").sum().over("record_key")
    return frame.with_columns(
        unapplied_fen=unapplied,
        released_fen=pl.when(first_undone).then(released).otherwise(0),
        original_found=pl.col("contract_no").is_not_null(),
    ).drop("_segment", "_share")


def _scatter_by_row(frame: pl.DataFrame, height: int) -> list[pl.Series]:
    """Columns of ``frame`` (keyed by ``_row``) as full-length columns in row order, null elsewhere."""
    rows = frame["_row"]
    columns = []
    for name in frame.columns:
        if name == "_row":
            continue
        full = pl.repeat(None, height, dtype=frame.schema[name], eager=True).alias(name)
        columns.append(full.scatter(rows, frame[name]) if frame.height else full)
    return columns


def _with_outcome(frame: pl.DataFrame, flag_exprs: dict[Outcome, pl.Expr]) -> pl.DataFrame:
    """``outcome``: the first rule that fired in precedence order; ``flags``: the others, in order.

    The rules are evaluated once, as boolean columns; the flag text is built only for the rows
    where more than one fired (few), and is empty elsewhere.
    """
    ordered = [code for code in OUTCOME_PRECEDENCE if code in flag_exprs]
    names = [f"_fired_{code.value}" for code in ordered]
    frame = frame.with_columns(
        [flag_exprs[code].fill_null(False).alias(n) for code, n in zip(ordered, names, strict=True)]
    )
    # the first rule that fired, as its position (integers are cheap to carry through the chain)
    first: pl.Expr = pl.lit(len(ordered), pl.UInt8)
    for position, name in reversed(list(enumerate(names))):
        first = pl.when(pl.col(name)).then(pl.lit(position, pl.UInt8)).otherwise(first)
    codes = {position: code.value for position, code in enumerate(ordered)} | {len(ordered): Outcome.MATCHED.value}
    outcome = first.replace_strict(codes, return_dtype=pl.String)
    several = pl.sum_horizontal(names) > 1
    frame = frame.with_columns(outcome=outcome, _several=several)
    many = frame.with_row_index("_at").filter(pl.col("_several"))
    text = many.select(
        "_at",
        pl.concat_str(
            [pl.when(pl.col(n)).then(pl.lit(code.value)) for code, n in zip(ordered, names, strict=True)],
            separator=",",
            ignore_nulls=True,
        )
        .str.splitn(",", 2)
        .struct.field("field_1")
        .alias("flags"),
    )
    flags = pl.repeat("", frame.height, dtype=pl.String, eager=True).alias("flags")
    if text.height:
        flags = flags.scatter(text["_at"], text["flags"])
    return frame.drop(*names, "_several").with_columns(flags)


def match_day(data: MatchInput, settings: Settings) -> MatchResult:
    """One outcome per record and due instruction; the ledger of the date's payments and reversals.

    Rows come in no particular order (ordering a million wide rows costs more than matching them);
    their content never depends on the order of the input.
    """
    # instructions are numbered by row: placements name theirs by number, so which were answered
    # is a mask, not a join on their ids
    data = replace(data, instructions=data.instructions.with_row_index("_ins"))
    records = data.records.with_columns(record_key=record_key_expr())
    # an integer row id joins placements and allocations back several times faster than the key text
    debits = records.filter(pl.col("record_kind") == "debit").with_row_index("_row")
    refunds = records.filter(pl.col("record_kind") == "refund")

    # Decisions are taken on a narrow frame in row order; the wide record columns are put back once.
    core = debits.select(
        "_row", "channel", "status", "reference", "amount_fen", "settled_at", "account_shown", "channel_txn_id", "memo"
    )  # fmt: skip
    placements, pass_counts = place_debits(core, data, settings)
    placed = core.hstack(placements.drop("_row"))
    matched_success = placed.select(
        "_row", "contract_no", "installment_no", "amount_fen", "settled_at", "channel", "channel_txn_id",
        "reference", spills=pl.col("match_pass") == "borrower_memo",
        _take=(pl.col("placement") == "matched") & (pl.col("status") == "SUCCESS"),
    ).filter("_take").drop("_take")  # fmt: skip
    segments = allocate_spilling(
        matched_success,
        data.installments,
        settings.allocation_order,
    )  # fmt: skip
    # one row per payment: its first installment names it; money adds up over the installments it
    # reached; what it holds and whether it left an installment open are the last one's
    spilled = segments.filter(pl.col("seq") > 1)["_row"].unique()
    allocation = segments.filter(pl.col("seq") == 1)
    if spilled.len():
        totals = (
            segments.filter(pl.col("_row").is_in(spilled.implode()))
            .sort("_row", "seq")
            .group_by("_row")
            .agg(
                *[pl.col(f"{p}_fen").sum() for p in PARTS],
                pl.col("applied_fen").sum(),
                pl.col("held_fen").last(),
                pl.col("paid_off_by_day_end").last(),
                pl.col("installment_no").last().alias("last_installment_no"),
            )
        )
        allocation = allocation.with_columns(last_installment_no=pl.lit(None, pl.Int64)).update(totals, on="_row")
    settled = (
        allocation.select(
            "_row",
            "contract_no",
            "installment_no",
            *[f"{p}_fen" for p in PARTS],
            "applied_fen",
            "held_fen",
            "paid_off_by_day_end",
            "already_paid_before",
            "due_date",
            "grace_days",
            *[c for c in ("bound_account", "last_installment_no") if c in allocation.columns],
        )
        .pipe(
            lambda frame: (
                frame
                if "bound_account" in frame.columns
                else frame.join(data.loans.select("contract_no", "bound_account"), on="contract_no", how="left")
            )
        )
        .drop("contract_no", "installment_no")
    )
    placed = placed.hstack(_scatter_by_row(settled, placed.height))

    success = pl.col("status") == "SUCCESS"
    # late: settled after the last day of grace (a Shanghai date); the few distinct such days are
    # turned into the UTC instant their next day starts, so no row needs a time-zone conversion
    grace_ends = (pl.col("due_date") + pl.duration(days=pl.col("grace_days"))).alias("_grace_ends")
    last_days = placed.select(grace_ends.unique().drop_nulls())["_grace_ends"].to_list()
    late_from = grace_ends.replace_strict(
        {day: business_date_bounds_utc(day)[1] for day in last_days},
        default=None,
        return_dtype=pl.Datetime("us", "UTC"),
    )
    shown_account = pl.coalesce(pl.col("account_shown"), pl.col("instr_account"))
    placed = placed.with_columns(_shown=shown_account)
    flags = {
        Outcome.UNMATCHED_DEBIT: success & (pl.col("placement") == "unmatched"),
        Outcome.AMBIGUOUS_MATCH: success & (pl.col("placement") == "ambiguous"),
        Outcome.DUPLICATE_DEBIT: success & pl.col("already_paid_before").fill_null(False),
        Outcome.ACCOUNT_MISMATCH: success
        & pl.col("bound_account").is_not_null()
        & ~accounts_agree_expr("_shown", "bound_account"),
        Outcome.AMOUNT_MISMATCH: pl.col("instr_amount_fen").is_not_null()
        & (pl.col("amount_fen") != pl.col("instr_amount_fen")),
        Outcome.STATUS_MISMATCH: pl.col("platform_status").is_not_null()
        & (
            (success & (pl.col("platform_status") != "success")) | (~success & (pl.col("platform_status") == "success"))
        ),
        Outcome.OVERPAYMENT: success & (pl.col("applied_fen") > 0) & (pl.col("held_fen") > 0),
        Outcome.PARTIAL_PAYMENT: success & (pl.col("applied_fen") > 0) & ~pl.col("paid_off_by_day_end").fill_null(True),
        Outcome.LATE_PAYMENT: success
        & (pl.col("applied_fen") > 0)
        & (pl.col("settled_at") >= late_from).fill_null(False),
        Outcome.DEBIT_FAILED: ~success,
    }
    held_when_unplaced = pl.when(success).then(pl.col("amount_fen")).otherwise(0)
    placed = placed.hstack(debits.select([c for c in debits.columns if c not in placed.columns]))
    debit_outcomes = _with_outcome(placed, flags).with_columns(
        subject=pl.lit("record"),
        subject_key=pl.col("record_key"),
        applied_fen=pl.col("applied_fen").fill_null(0),
        held_fen=pl.col("held_fen").fill_null(held_when_unplaced),
        received_fen=pl.when(success).then(pl.col("amount_fen")).otherwise(0),
        reversed_fen=pl.lit(0, pl.Int64),
    )

    # Reversals: refunds of today's payments or of earlier ones.
    todays_payments = segments.select(
        "channel",
        "channel_txn_id",
        "seq",
        "reference",
        "contract_no",
        "installment_no",
        *[f"{p}_fen" for p in PARTS],
        "held_fen",
    )
    named = refunds.select("channel", "reference").drop_nulls().unique()
    candidates = pl.concat([todays_payments, data.prior_payments.select(todays_payments.columns)]).join(
        named, on=["channel", "reference"], how="semi"
    )
    # the payment a refund names: the first with that reference, with every installment it reached
    first = candidates.unique(subset=["channel", "reference"], keep="first", maintain_order=True)
    originals = candidates.join(
        first.select("channel", "reference", "channel_txn_id"), on=["channel", "reference", "channel_txn_id"]
    )
    originals = originals.drop("channel_txn_id").rename(
        {c: f"{c}_orig" for c in [*[f"{p}_fen" for p in PARTS], "held_fen"]}
    )
    reversal_rows = reverse_payments(refunds, originals, settings.allocation_order)
    reversal_rows = reversal_rows.with_columns(
        applied_fen=-pl.col("unapplied_fen"),
        held_fen=-pl.col("released_fen"),
        # the ledger row carries the money it moved: what it undid there, and the release
        ledger_amount_fen=pl.col("unapplied_fen") + pl.col("released_fen"),
    )
    if reversal_rows.height > refunds.height:  # a refund of a payment that reached several installments
        reversal_record = (
            reversal_rows.sort("record_key", "seq")
            .group_by("record_key", maintain_order=True)
            .agg(
                pl.all().exclude([*[f"{p}_fen" for p in PARTS], "applied_fen", "held_fen", "unapplied_fen",
                                  "released_fen"]).first(),
                *[pl.col(f"{p}_fen").sum() for p in PARTS],
                pl.col("applied_fen").sum(), pl.col("held_fen").sum(), pl.col("unapplied_fen").sum(),
                pl.col("released_fen").sum(),
            )
        )  # fmt: skip
    else:
        reversal_record = reversal_rows
    reversal_outcomes = reversal_record.with_columns(
        subject=pl.lit("record"),
        subject_key=pl.col("record_key"),
        outcome=pl.lit(Outcome.REVERSAL.value),
        flags=pl.when(pl.col("original_found")).then(pl.lit("")).otherwise(pl.lit(Outcome.UNMATCHED_DEBIT.value)),
        received_fen=pl.lit(0, pl.Int64),
        reversed_fen=pl.col("amount_fen"),
        match_pass=pl.lit("reversal"),
        placement=pl.when(pl.col("original_found")).then(pl.lit("matched")).otherwise(pl.lit("unmatched")),
    )

    instruction_outcomes = _unanswered_instructions(data, records, placements, settings)
    columns = OUTCOME_COLUMNS
    outcomes = pl.concat(
        [
            _conform(debit_outcomes, columns),
            _conform(reversal_outcomes, columns),
            _conform(instruction_outcomes, columns),
        ],
        how="vertical",
    )

    # payment rows: one per installment a placed payment reached (its outcome is its record's),
    # and the successes no pass placed, held whole
    ledger_side = [c for c in LEDGER_COLUMNS if c in segments.columns]
    placed_rows = segments.select(*ledger_side, outcome=debit_outcomes["outcome"].gather(segments["_row"]))
    unplaced = debit_outcomes.filter((pl.col("received_fen") > 0) & (pl.col("placement") != "matched"))
    payments = pl.concat(
        [
            _conform(placed_rows.with_columns(kind=pl.lit("payment")), LEDGER_COLUMNS),
            _conform(unplaced.with_columns(kind=pl.lit("payment"), seq=pl.lit(1, pl.Int64)), LEDGER_COLUMNS),
        ]
    )
    ledger = pl.concat(
        [
            _conform(payments, LEDGER_COLUMNS),
            _conform(
                reversal_rows.with_columns(
                    kind=pl.lit("reversal"),
                    channel_txn_id=pl.coalesce(pl.col("refund_request_no"), pl.col("channel_txn_id")),
                    amount_fen=pl.col("ledger_amount_fen"),
                    outcome=pl.lit(Outcome.REVERSAL.value),
                ),
                LEDGER_COLUMNS,
            ),
        ]
    )
    return MatchResult(outcomes=outcomes, ledger=ledger, pass_counts=pass_counts)


def _unanswered_instructions(
    data: MatchInput, records: pl.DataFrame, placements: pl.DataFrame, settings: Settings
) -> pl.DataFrame:
    """Instructions requested on the date that no record answers, in a channel whose file arrived."""
    start, end = business_date_bounds_utc(data.business_date)
    answered = pl.repeat(False, data.instructions.height, dtype=pl.Boolean, eager=True)
    placed = placements["_ins"].drop_nulls()
    if placed.len():  # placed by a pass (the exact pass places every debit naming an instruction)
        answered = answered.scatter(placed, True)
    due = data.instructions.with_columns(_answered=answered).filter(
        (pl.col("requested_at") >= start)
        & (pl.col("requested_at") < end)
        & pl.col("channel").is_in(sorted(data.answering_channels))
        & ~pl.col("_answered")
    )
    # also answered: named by a refund, a candidate of an ambiguous record, named by an invalid line
    ambiguous = placements.filter(pl.col("placement") == "ambiguous")
    answering = pl.concat(
        [
            records.filter(pl.col("record_kind") != "debit").select(pl.col("reference").alias("instruction_id")),
            ambiguous.select(pl.col("candidate_ids").str.split(",").alias("instruction_id")).explode("instruction_id"),
            pl.DataFrame({"instruction_id": sorted(data.invalid_references)}, schema={"instruction_id": pl.String}),
        ]
    ).drop_nulls()
    unanswered = due.join(answering, on="instruction_id", how="anti") if answering.height else due
    listing = [c.channel_id for c in settings.channels.values() if c.lists_failures]
    outcome = (
        pl.when(pl.col("channel").is_in(listing))
        .then(pl.lit(Outcome.MISSING_RESULT.value))
        .when(pl.col("platform_status") == "success")
        .then(pl.lit(Outcome.STATUS_MISMATCH.value))
        .otherwise(None)
    )
    return (
        unanswered.with_columns(outcome=outcome)
        .filter(pl.col("outcome").is_not_null())
        .with_columns(
            subject=pl.lit("instruction"),
            subject_key=instruction_key_expr(),
            flags=pl.lit(""),
            reference=pl.col("instruction_id"),
            instr_amount_fen=pl.col("amount_fen"),
            amount_fen=pl.lit(None, pl.Int64),
            applied_fen=pl.lit(0, pl.Int64),
            held_fen=pl.lit(0, pl.Int64),
            received_fen=pl.lit(0, pl.Int64),
            reversed_fen=pl.lit(0, pl.Int64),
            match_pass=pl.lit("instruction"),
            placement=pl.lit("unanswered"),
        )
    )


OUTCOME_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "subject": pl.String,
    "subject_key": pl.String,
    "outcome": pl.String,
    "flags": pl.String,
    "channel": pl.String,
    "record_kind": pl.String,
    "channel_txn_id": pl.String,
    "refund_request_no": pl.String,
    "reference": pl.String,
    "instruction_id": pl.String,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "last_installment_no": pl.Int64,  # a repayment that spilled: the last installment it reached
    "match_pass": pl.String,
    "score": pl.Int64,
    "candidates": pl.Int64,
    "candidate_scores": pl.String,
    "status": pl.String,
    "failure_code": pl.String,
    "failure_text": pl.String,
    "failure_reason": pl.String,
    "platform_status": pl.String,
    "amount_fen": pl.Int64,
    "instr_amount_fen": pl.Int64,
    "received_fen": pl.Int64,
    "applied_fen": pl.Int64,
    "held_fen": pl.Int64,
    "reversed_fen": pl.Int64,
    "penalty_fen": pl.Int64,
    "fee_fen": pl.Int64,
    "interest_fen": pl.Int64,
    "principal_fen": pl.Int64,
    "account_shown": pl.String,
    "bound_account": pl.String,
    "settled_at": pl.Datetime("us", "UTC"),
    "source_file": pl.String,
    "line_no": pl.Int64,
    "raw_line": pl.String,
}

LEDGER_COLUMNS: dict[str, pl.DataType | type[pl.DataType]] = {
    "channel": pl.String,
    "channel_txn_id": pl.String,
    "kind": pl.String,
    "seq": pl.Int64,
    "reference": pl.String,
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    "amount_fen": pl.Int64,
    "penalty_fen": pl.Int64,
    "fee_fen": pl.Int64,
    "interest_fen": pl.Int64,
    "principal_fen": pl.Int64,
    "held_fen": pl.Int64,
    "settled_at": pl.Datetime("us", "UTC"),
    "outcome": pl.String,
}


def _conform(frame: pl.DataFrame, columns: dict[str, pl.DataType | type[pl.DataType]]) -> pl.DataFrame:
    """Select ``columns`` in order, adding nulls (zeros for fen parts) where a frame lacks one."""
    exprs = []
    for name, dtype in columns.items():
        if name in frame.columns:
            exprs.append(pl.col(name).cast(dtype))
        elif name.endswith("_fen") and name not in ("amount_fen", "instr_amount_fen"):
            exprs.append(pl.lit(0, pl.Int64).alias(name))
        else:
            exprs.append(pl.lit(None, dtype).alias(name))
    frame = frame.select(exprs)
    part_columns = [f"{p}_fen" for p in PARTS if f"{p}_fen" in columns]
    return frame.with_columns([pl.col(c).fill_null(0) for c in part_columns])
