"""Resolutions that move the books: held money refunded by hand, or applied by hand to an installment.

Two of a reviewer's resolutions change money, not only an exception's status:

- ``REFUNDED`` — finance paid the held money back to the borrower outside the channel's files (a
  bank transfer): it leaves suspense. One ledger entry of kind ``release`` per place the money is
  held (``amount = held = −h``).
- ``APPLIED_MANUALLY`` — finance decided whose money it is and applied it to an installment: it
  leaves suspense and pays that installment. Entries of kind ``manual``: ``−h`` held where it is
  held, then one entry on the target installment carrying the whole amount, allocated over its
  parts in the allocation order (``amount = parts``, nothing held); dated as the original payment
  settled, so lateness is judged by when the borrower paid.

Every entry keeps ``amount = parts + held``; an application nets to zero money, a refund to minus
what left. The entries are dated on the exception's business date, so the date's books — and its
summary's suspense line — show what is still held; a date's rerun keeps them (they are not the
run's) unless the money they moved is no longer held there (:func:`voided`).

The other resolutions (channel corrected, written off, no action, other) record a decision and move
nothing. Worked example: an overpayment held 50.00 on C1 #3; ``APPLIED_MANUALLY`` to C1 #4 (owing
933.33: penalty 0, fee 0, interest 100.00, principal 833.33, order penalty → principal) gives
``manual #1: C1 #3 amount −50.00 held −50.00`` and ``manual #2: C1 #4 amount 50.00 interest 50.00``.
"""

from __future__ import annotations

import polars as pl

from reconcile.books import INSTALLMENT_KEY, PARTS
from reconcile.matching import LEDGER_COLUMNS, allocate_payments
from reconcile.money import fen_to_yuan_text

#: The resolutions that move money, and the ledger kind of their entries.
MOVES_BOOKS = {"REFUNDED": "release", "APPLIED_MANUALLY": "manual"}
#: Ledger kinds a run writes (and a rerun of the date replaces); the others are a reviewer's.
RUN_KINDS = ("payment", "reversal")
#: Kinds whose time says when an installment was paid (the borrower's payment, or one applied by hand).
PAYING_KINDS = ("payment", "manual")

DECISION_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "exception_key": pl.String,
    "resolution_code": pl.String,
    "channel": pl.String,
    "channel_txn_id": pl.String,
    "contract_no": pl.String,  # the exception's contract (the default target of an application)
    "target_contract_no": pl.String,
    "target_installment_no": pl.Int64,
}
#: The ledger of the decisions' transactions (every kind), summed per place.
HELD_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    c: LEDGER_COLUMNS[c]
    for c in ("channel", "channel_txn_id", "kind", "seq", "reference", "contract_no", "installment_no", "held_fen",
              "settled_at")
}  # fmt: skip
TARGET_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "contract_no": pl.String,
    "installment_no": pl.Int64,
    **{f"{p}_due_fen": pl.Int64 for p in PARTS},
    **{f"{p}_paid_fen": pl.Int64 for p in PARTS},
}
#: A reviewer's ledger entries have the columns of every entry.
ENTRY_SCHEMA = LEDGER_COLUMNS
TXN = ["channel", "channel_txn_id"]


def plan_adjustments(
    decisions: pl.DataFrame, ledger: pl.DataFrame, targets: pl.DataFrame, order: tuple[str, ...]
) -> tuple[pl.DataFrame, dict[str, str]]:
    """The ledger entries of the decisions that move the books, and a problem per decision that
    cannot (keyed by exception key); the caller refuses the whole review when there are problems.

    ``decisions`` (:data:`DECISION_SCHEMA`): only ``REFUNDED`` and ``APPLIED_MANUALLY`` rows matter.
    ``ledger`` (:data:`HELD_SCHEMA`): every entry of their transactions. ``targets``
    (:data:`TARGET_SCHEMA`): the installments of the contracts an application may name, as paid now.
    """
    moving = decisions.filter(pl.col("resolution_code").is_in(list(MOVES_BOOKS)))
    problems: dict[str, str] = {}
    if moving.height == 0:
        return pl.DataFrame(schema=ENTRY_SCHEMA), problems
    places = (
        ledger.group_by(*TXN, "contract_no", "installment_no")
        .agg(pl.col("held_fen").sum(), pl.col("reference").drop_nulls().first(), pl.col("settled_at").min())
        .filter(pl.col("held_fen") > 0)
        .sort(*TXN, "contract_no", "installment_no", nulls_last=True)
    )
    held = places.group_by(TXN).agg(pl.col("held_fen").sum().alias("held_total_fen"))
    next_seq = ledger.group_by(*TXN, "kind").agg(pl.col("seq").max().alias("seq_before"))
    moving = moving.join(held, on=TXN, how="left").with_columns(pl.col("held_total_fen").fill_null(0))
    for row in moving.filter(pl.col("held_total_fen") <= 0).iter_rows(named=True):
        problems[row["exception_key"]] = (
            "nothing is held for this exception, so there is no money to refund or apply; "
            "choose a resolution that moves nothing"
        )
    moving = moving.filter(pl.col("held_total_fen") > 0).with_columns(
        kind=pl.col("resolution_code").replace_strict(MOVES_BOOKS, return_dtype=pl.String)
    )
    moving = moving.join(next_seq, on=[*TXN, "kind"], how="left").with_columns(pl.col("seq_before").fill_null(0))
    # out of suspense: minus what is held, at each place it is held
    out = (
        moving.select(*TXN, "kind", "seq_before", "resolution_code")
        .join(places, on=TXN)
        .with_columns(
            seq=pl.col("seq_before") + pl.int_range(1, pl.len() + 1).over(TXN), amount_fen=-pl.col("held_fen")
        )
        .with_columns(held_fen=-pl.col("held_fen"), outcome=pl.col("resolution_code"))
    )
    applying = moving.filter(pl.col("kind") == "manual").with_columns(
        target_contract_no=pl.coalesce("target_contract_no", "contract_no")
    )
    into = _into_installments(applying, out, targets, order, problems)
    entries = pl.concat([_conform(out), _conform(into)]).filter(
        ~pl.col("channel_txn_id").is_in(_refused(moving, problems))
    )
    return entries.sort(*TXN, "kind", "seq"), problems


def _refused(moving: pl.DataFrame, problems: dict[str, str]) -> list[str]:
    return moving.filter(pl.col("exception_key").is_in(list(problems)))["channel_txn_id"].to_list()


def _into_installments(
    applying: pl.DataFrame, out: pl.DataFrame, targets: pl.DataFrame, order: tuple[str, ...], problems: dict[str, str]
) -> pl.DataFrame:
    """The entry paying each application's target installment (its whole held amount, which it
    must owe); the first installment of the contract still owing when none is named."""
    if applying.height == 0:
        return pl.DataFrame(schema=ENTRY_SCHEMA)
    owing = targets.with_columns(
        owed_fen=pl.sum_horizontal([pl.col(f"{p}_due_fen") - pl.col(f"{p}_paid_fen") for p in PARTS])
    )
    first_owing = (
        owing.filter(pl.col("owed_fen") > 0)
        .group_by("contract_no")
        .agg(pl.col("installment_no").min().alias("first_owing"))
    )
    chosen = applying.join(first_owing, left_on="target_contract_no", right_on="contract_no", how="left").with_columns(
        target_installment_no=pl.coalesce("target_installment_no", "first_owing")
    )
    known_contracts = set(targets["contract_no"].unique().to_list())
    known = set(targets.select(INSTALLMENT_KEY).iter_rows())
    fine = []
    for row in chosen.iter_rows(named=True):
        contract, number = row["target_contract_no"], row["target_installment_no"]
        if contract is None:
            problems[row["exception_key"]] = "name the contract to apply the held money to"
        elif contract not in known_contracts:
            problems[row["exception_key"]] = f"contract {contract!r} is not in the books"
        elif number is None:
            problems[row["exception_key"]] = f"contract {contract} has no installment still owing"
        elif (contract, number) not in known:
            problems[row["exception_key"]] = f"contract {contract} has no installment {number}"
        else:
            fine.append(row)
    if not fine:
        return pl.DataFrame(schema=ENTRY_SCHEMA)
    settled = out.group_by(TXN).agg(pl.col("settled_at").min(), pl.col("reference").first(), pl.col("seq").max())
    payments = (
        pl.DataFrame(fine, schema=chosen.schema)
        .join(settled, on=TXN)
        .select(
            *TXN,
            "exception_key",
            "reference",
            pl.col("target_contract_no").alias("contract_no"),
            pl.col("target_installment_no").alias("installment_no"),
            pl.col("held_total_fen").alias("amount_fen"),
            "settled_at",
            (pl.col("seq") + 1).alias("seq"),
        )
    )
    allocated = allocate_payments(payments, targets, order)
    for row in allocated.filter(pl.col("held_fen") > 0).iter_rows(named=True):
        owed = row["applied_fen"]
        problems[row["exception_key"]] = (
            f"installment {row['installment_no']} of {row['contract_no']} owes {fen_to_yuan_text(owed)} yuan "
            f"(after what is applied before it), less than the {fen_to_yuan_text(row['amount_fen'])} yuan held; "
            "name another installment"
        )
    return allocated.filter(pl.col("held_fen") == 0).with_columns(
        kind=pl.lit("manual"), outcome=pl.lit("APPLIED_MANUALLY")
    )


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.select(
        [
            pl.col(c).cast(t) if c in frame.columns else pl.lit(0 if c.endswith("_fen") else None, t).alias(c)
            for c, t in ENTRY_SCHEMA.items()
        ]
    )


def voided(ledger: pl.DataFrame) -> pl.DataFrame:
    """The transactions whose reviewer's entries no longer stand: somewhere the date's ledger now
    holds less than they took out (a rerun of the date placed the money after all, or holds less).

    ``ledger`` (``channel``, ``channel_txn_id``, ``kind``, ``contract_no``, ``installment_no``,
    ``held_fen``): every entry of the date's transactions that have a reviewer's entry. → ``channel``,
    ``channel_txn_id``, ``held_by_run_fen`` (what the run's own entries hold there now).
    """
    reviewed = ledger.filter(~pl.col("kind").is_in(RUN_KINDS)).select(TXN).unique()
    places = (
        ledger.join(reviewed, on=TXN, how="semi")
        .group_by(*TXN, "contract_no", "installment_no")
        .agg(
            pl.col("held_fen").sum().alias("net_fen"),
            pl.col("held_fen").filter(pl.col("kind").is_in(RUN_KINDS)).sum().alias("held_by_run_fen"),
        )
    )
    return (
        places.group_by(TXN)
        .agg((pl.col("net_fen") < 0).any().alias("short"), pl.col("held_by_run_fen").sum())
        .filter(pl.col("short"))
        .select(*TXN, "held_by_run_fen")
        .sort(TXN)
    )
