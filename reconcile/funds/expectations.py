"""One expected settlement per channel × merchant × business date, from the reconciled records.

What a channel owes for a date is what it collected for us that date: every successful debit it
reported (matched or not — unmatched and duplicate money was collected all the same, and is held
by us once it arrives), less its successful refunds, less its fee when the fee is netted out of the
payout. The fee is the rule's (:class:`reconcile.funds.rules.FeeRule`), per debit, plus one
per-payout charge; what the channel says it charged, where it says so (its settlement lines, or a
fee billed apart on the statement), is kept beside it and used for the net: the channel pays what
it says it charged, and a difference from the rule is a ``FEE_VARIANCE`` of its own.
"""

from __future__ import annotations

import polars as pl

from reconcile.funds.rules import PPM, FundsRules
from reconcile.funds.workdays import windows
from schemas.frames import MAX_LINE_FEN
from schemas.funds import ExpectationFrame

#: Columns of the collections the expectations are summed from (the date's channel records).
COLLECTION_COLUMNS = ("channel", "merchant_id", "business_date", "record_kind", "status", "amount_fen")
GROUP = ["channel", "merchant_id", "business_date"]


def fee_taken_expr() -> pl.Expr:
    """The fee taken out of the payout: the channel's stated one, else the rule's; none when billed apart."""
    return pl.when(pl.col("fee_netted")).then(pl.coalesce("fee_reported_fen", "fee_expected_fen")).otherwise(0)


def expectation_key_expr() -> pl.Expr:
    """``channel|merchant|YYYY-MM-DD``: the same date's settlement is always the same key."""
    return pl.concat_str(
        pl.col("channel"), pl.col("merchant_id"), pl.col("business_date").cast(pl.String), separator="|"
    )


def fee_parameters(rules: FundsRules) -> pl.DataFrame:
    """One row per channel with funds rules: its fee rule in numbers, its first merchant id."""
    return pl.DataFrame(
        [(channel, spec.fee.ppm, spec.fee.min_fen, spec.fee.cap_fen or MAX_LINE_FEN, spec.fee.refund_returns_fee,
          spec.fee.per_payout_fen, spec.merchant_ids[0]) for channel, spec in rules.settlement.items()],
        schema={"channel": pl.String, "_ppm": pl.Int64, "_min": pl.Int64, "_cap": pl.Int64, "_returns": pl.Boolean,
                "_per_payout": pl.Int64, "_merchant": pl.String},
        orient="row",
    )  # fmt: skip


#: A date's collections summed, before windows and the channels' stated fees: what the funds
#: stage keeps per channel × merchant × date (``funds_collections``), so that no later night reads
#: a date's records again.
COLLECTED_SCHEMA: dict[str, pl.DataType] = {
    "channel": pl.String(), "merchant_id": pl.String(), "business_date": pl.Date(), "debits": pl.Int64(),
    "gross_fen": pl.Int64(), "refunds": pl.Int64(), "refunds_fen": pl.Int64(), "fee_expected_fen": pl.Int64(),
}  # fmt: skip


def collected(collections: pl.DataFrame, rules: FundsRules) -> pl.DataFrame:
    """``collections`` (:data:`COLLECTION_COLUMNS`, and ``n``: how many records of that amount,
    1 when absent) summed per channel × merchant × business date of the channels with funds rules,
    with the rule's fee: per debit ``rate`` half up, at least ``min_fen``, at most ``cap_fen``; a
    refund gives its fee back where the rule says; plus one per-payout charge. A merchant id the
    record does not carry is the channel's first configured one."""
    n = pl.col("n") if "n" in collections.columns else pl.lit(1, dtype=pl.Int64)
    successes = collections.filter(pl.col("status") == "SUCCESS").join(fee_parameters(rules), on="channel")
    debit = (pl.col("record_kind") == "debit").cast(pl.Int64)
    refund = 1 - debit
    each = ((pl.col("amount_fen") * pl.col("_ppm") + PPM // 2) // PPM).clip(pl.col("_min"), pl.col("_cap"))
    back = refund * pl.col("_returns").cast(pl.Int64)
    summed = successes.with_columns(merchant_id=pl.coalesce("merchant_id", "_merchant")).group_by(GROUP).agg(
        debits=(debit * n).sum(),
        gross_fen=(pl.col("amount_fen") * debit * n).sum(),
        refunds=(refund * n).sum(),
        refunds_fen=(pl.col("amount_fen") * refund * n).sum(),
        fee_expected_fen=(each * (debit - back) * n).sum() + pl.col("_per_payout").first(),
    )
    return summed.with_columns(
        pl.col("debits", "gross_fen", "refunds", "refunds_fen").cast(pl.Int64),
        fee_expected_fen=pl.col("fee_expected_fen").clip(lower_bound=0).cast(pl.Int64),
    ).select(list(COLLECTED_SCHEMA)).sort(GROUP)


def expectations(
    collections: pl.DataFrame, rules: FundsRules, reported_fees: pl.DataFrame | None = None
) -> pl.DataFrame:
    """``collections`` (:data:`COLLECTION_COLUMNS`) → one :class:`ExpectationFrame` row per
    channel × merchant × business date of the channels with funds rules (see :func:`collected`
    and :func:`expected_from`)."""
    return expected_from(collected(collections, rules), rules, reported_fees)


#: What a channel says of a date apart from its fee (``stated`` of :func:`expected_from`).
STATED = ("gross_stated_fen", "net_stated_fen", "payout_stated_fen")


def expected_from(
    sums: pl.DataFrame,
    rules: FundsRules,
    reported_fees: pl.DataFrame | None = None,
    stated: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """The dates' sums (:data:`COLLECTED_SCHEMA`) as expectations: windows, and the net the
    channel should pay. ``reported_fees`` (``channel``, ``merchant_id``, ``business_date``,
    ``fee_fen``): what the channels say they charged; several lines for one date add up.
    ``stated`` (``channel``, ``merchant_id``, ``business_date`` and any of :data:`STATED`): what
    they say they collected, settle net and paid out, shown beside ours."""
    netted = {channel: spec.fee.netted for channel, spec in rules.settlement.items()}
    summed = sums.filter(pl.col("channel").is_in(list(rules.settlement))).with_columns(
        fee_netted=pl.col("channel").replace_strict(netted, return_dtype=pl.Boolean),
    )
    if reported_fees is None or reported_fees.is_empty():
        summed = summed.with_columns(fee_reported_fen=pl.lit(None, dtype=pl.Int64))
    else:
        told = reported_fees.group_by(GROUP).agg(fee_reported_fen=pl.col("fee_fen").sum().cast(pl.Int64))
        summed = summed.join(told, on=GROUP, how="left")
    if stated is not None and not stated.is_empty():
        summed = summed.join(stated.select(*GROUP, *[c for c in STATED if c in stated.columns]), on=GROUP, how="left")
    summed = summed.with_columns([pl.lit(None, pl.Int64).alias(c) for c in STATED if c not in summed.columns])
    framed = windows(summed, rules.rules).with_columns(
        expectation_key=expectation_key_expr(),
        net_fen=(pl.col("gross_fen") - pl.col("refunds_fen") - fee_taken_expr()).cast(pl.Int64),
    )
    ordered = framed.select(list(ExpectationFrame.to_schema().columns)).sort(GROUP)
    return ExpectationFrame.validate(ordered)
