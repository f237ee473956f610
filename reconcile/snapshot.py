"""The servicing-system snapshot: text columns in, typed frames and row errors out.

Amounts are yuan text with two decimals; dates ISO; times ISO, where a time without an offset is
Shanghai time. A bad row becomes an error naming its file, line and reason; the caller decides
that any error refuses the whole snapshot (nothing is half-imported).

``installments.csv`` may also say what each installment has had paid before reconciliation began
(:data:`OPENING_COLUMNS`, each optional: an absent column or an empty cell is 0, or no time), so a
platform's paid history is not taken for overdue on the first run. Example::

    contract_no,installment_no,due_date,principal_due,interest_due,fee_due,penalty_due,principal_paid,interest_paid,paid_at
    C001,1,2026-02-15,934.72,200.00,0.00,0.00,934.72,200.00,2026-02-15T03:00:05+08:00
    C001,2,2026-03-15,953.41,181.31,0.00,0.00,,100.00,2026-03-16T09:12:00
    C001,3,2026-04-15,972.48,162.24,0.00,0.00,,,

Installment 1 was paid in full on its due date, 2 has had 100.00 of its interest (paid at a Shanghai
wall-clock time), 3 nothing; ``fee_paid`` and ``penalty_paid`` are absent, so 0.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandera.polars as pa
import polars as pl

from reconcile.books import installment_status_expr
from reconcile.masking import (
    mask_account,
    mask_id_number,
    mask_name,
    mask_numbers_in_text_expr,
    mask_phone,
)
from reconcile.money import yuan_expr_to_fen
from reconcile.schedule import build_installments
from reconcile.text import format_text
from schemas.frames import InstallmentFrame, InstructionFrame, LoanFrame

LOAN_COLUMNS = [
    "contract_no",
    "borrower_name",
    "id_number",
    "phone",
    "principal",
    "annual_rate",
    "term_months",
    "repayment_method",
    "start_date",
    "grace_days",
    "bound_channel",
    "bound_account",
]
INSTALLMENT_COLUMNS = [
    "contract_no",
    "installment_no",
    "due_date",
    "principal_due",
    "interest_due",
    "fee_due",
    "penalty_due",
]
#: The optional columns of installments.csv: what each part has had paid (yuan text) and when the
#: last of it was paid (ISO time, Shanghai wall clock unless it has an offset).
PAID_PARTS = ("principal", "interest", "fee", "penalty")
OPENING_COLUMNS = [*(f"{part}_paid" for part in PAID_PARTS), "paid_at"]
#: The typed opening columns every parsed installments frame carries (0 and null when not given).
OPENING_FRAME_COLUMNS = [*(f"{part}_paid_fen" for part in PAID_PARTS), "paid_at"]
INSTRUCTION_COLUMNS = [
    "instruction_id",
    "contract_no",
    "installment_no",
    "channel",
    "account",
    "amount",
    "requested_at",
    "platform_status",
    "platform_code",
]


@dataclass(frozen=True)
class Snapshot:
    """A parsed snapshot. ``installments`` has the :class:`InstallmentFrame` columns plus
    :data:`OPENING_FRAME_COLUMNS` (what the servicing system says was paid; 0 and null when it
    says nothing). ``errors``: file, line_no, column, reason — empty when the snapshot is good."""

    loans: pl.DataFrame
    installments: pl.DataFrame
    instructions: pl.DataFrame
    errors: pl.DataFrame


ERROR_SCHEMA: dict[str, Any] = {"file": pl.String, "line_no": pl.Int64, "column": pl.String, "reason": pl.String}


def _missing_columns(name: str, frame: pl.DataFrame, wanted: list[str]) -> pl.DataFrame:
    missing = [column for column in wanted if column not in frame.columns]
    return pl.DataFrame(
        [
            {"file": name, "line_no": 1, "column": column, "reason": "column missing from the header"}
            for column in missing
        ],
        schema=ERROR_SCHEMA,
    )


def _parse_errors(name: str, frame: pl.DataFrame, checks: dict[str, tuple[pl.Expr, str | pl.Expr]]) -> pl.DataFrame:
    """Rows where a text cell is present but did not parse (or broke the check's rule)."""
    parts = [
        frame.filter(failed).select(
            pl.lit(name).alias("file"),
            pl.col("line_no"),
            pl.lit(column).alias("column"),
            format_text(
                "{} {}",
                pl.col(f"{column}__raw").fill_null("(empty)"),
                reason if isinstance(reason, pl.Expr) else pl.lit(reason),
            ).alias("reason"),
        )
        for column, (failed, reason) in checks.items()
    ]
    return pl.concat(parts) if parts else pl.DataFrame(schema=ERROR_SCHEMA)


def _schema_errors(name: str, frame: pl.DataFrame, model: type[pa.DataFrameModel]) -> pl.DataFrame:
    try:
        model.validate(frame.drop("line_no"), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        lines = frame.select("line_no").with_row_index("index").with_columns(pl.col("index").cast(pl.Int32))
        return cases.join(lines, on="index", how="left").select(
            pl.lit(name).alias("file"),
            pl.col("line_no").fill_null(1),
            pl.col("column").cast(pl.String),
            format_text("{} failed {}", _quoted_safely(), pl.col("check")).alias("reason"),
        )
    return pl.DataFrame(schema=ERROR_SCHEMA)


#: Snapshot columns that hold personal data: a bad value is quoted masked, never as it was.
PERSONAL_COLUMNS = {"borrower_name": mask_name, "id_number": mask_id_number, "phone": mask_phone,
                    "bound_account": mask_account, "account": mask_account}  # fmt: skip


def _quoted_safely() -> pl.Expr:
    """A failing value as an error may quote it: masked when its column is personal, and any card,
    ID or phone number inside other text masked too."""
    value = pl.col("failure_case").cast(pl.String)
    masked = pl.struct("column", value.alias("value")).map_elements(
        lambda row: PERSONAL_COLUMNS.get(row["column"], str)(row["value"] or ""), return_dtype=pl.String
    )
    personal = pl.col("column").cast(pl.String).is_in(list(PERSONAL_COLUMNS))
    return pl.when(personal).then(masked).otherwise(mask_numbers_in_text_expr(value))


def _with_raw(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.with_columns([pl.col(c).alias(f"{c}__raw") for c in columns if c in frame.columns])


def _bad(column: str, parsed: pl.Expr) -> pl.Expr:
    return pl.col(f"{column}__raw").is_not_null() & parsed.is_null() | pl.col(f"{column}__raw").is_null()


def _iso_time_utc(column: str) -> pl.Expr:
    """ISO time text → UTC (microseconds); without an offset it is Shanghai wall clock; null if not a time."""
    text = pl.col(column).str.strip_chars()
    with_offset = text.str.contains(r"([+-]\d{2}:?\d{2}|Z)$")
    return (
        pl.when(with_offset)
        .then(
            text.str.replace(r"Z$", "+00:00")
            .str.replace("T", " ")
            .str.to_datetime("%Y-%m-%d %H:%M:%S%z", strict=False)
            .dt.convert_time_zone("UTC")
        )
        .otherwise(
            text.str.replace("T", " ")
            .str.to_datetime("%Y-%m-%d %H:%M:%S", time_zone="Asia/Shanghai", strict=False)
            .dt.convert_time_zone("UTC")
        )
        .dt.cast_time_unit("us")
    )


def _given(column: str) -> pl.Expr:
    """An optional cell that says something (neither missing nor blank)."""
    return pl.col(f"{column}__raw").fill_null("") != ""


def _with_opening_paid(installments: pl.DataFrame) -> pl.DataFrame:
    """The optional paid columns typed: fen (0 when absent or empty) and ``paid_at`` (UTC, null when
    absent or empty). A cell that does not parse stays null, for :func:`_opening_paid_errors`."""
    frame = installments.with_columns(
        [pl.lit(None, pl.String).alias(f"{c}__raw") for c in OPENING_COLUMNS if c not in installments.columns]
    )
    return frame.with_columns(
        **{
            f"{part}_paid_fen": pl.when(_given(f"{part}_paid"))
            .then(yuan_expr_to_fen(f"{part}_paid__raw"))
            .otherwise(pl.lit(0, pl.Int64))
            for part in PAID_PARTS
        },
        paid_at=pl.when(_given("paid_at")).then(_iso_time_utc("paid_at__raw")),
    )


def _opening_paid_errors(installments: pl.DataFrame) -> list[pl.DataFrame]:
    """A paid part that is not an amount, negative or more than its due part; a ``paid_at`` that is
    not a time, or that is given while nothing is paid."""
    checks: list[tuple[str, pl.Expr, str | pl.Expr]] = []
    for part in PAID_PARTS:
        paid, due, column = pl.col(f"{part}_paid_fen"), pl.col(f"{part}_due_fen"), f"{part}_paid"
        more = format_text("is more than {}_due {}", pl.lit(part), pl.col(f"{part}_due__raw"))
        checks += [
            (column, _given(column) & paid.is_null(), "is not an amount in yuan"),
            (column, paid < 0, "is negative"),
            (column, paid > due, more),
        ]
    nothing_paid = pl.sum_horizontal([pl.col(f"{part}_paid_fen").fill_null(0) for part in PAID_PARTS]) == 0
    checks += [
        ("paid_at", _given("paid_at") & pl.col("paid_at").is_null(), "is not an ISO time"),
        ("paid_at", _given("paid_at") & nothing_paid, "is given while nothing is paid"),
    ]
    # one pass over the whole file finds the few rows any check fails; each check reads only those
    failing = installments.filter(pl.any_horizontal([failed.fill_null(False) for _, failed, _ in checks]))
    return [_parse_errors("installments.csv", failing, {column: (failed, reason)}) for column, failed, reason in checks]


def parse_snapshot(
    loans_text: pl.DataFrame, installments_text: pl.DataFrame | None, instructions_text: pl.DataFrame
) -> Snapshot:
    """Typed loans, installments (built from the loans when not given) and instructions.

    Inputs are all-text frames with a ``line_no`` column (the header is line 1).
    """
    errors = [
        _missing_columns("loans.csv", loans_text, LOAN_COLUMNS),
        _missing_columns("instructions.csv", instructions_text, INSTRUCTION_COLUMNS),
    ]
    if installments_text is not None:
        errors.append(_missing_columns("installments.csv", installments_text, INSTALLMENT_COLUMNS))
    if any(error.height for error in errors):
        empty = pl.DataFrame()
        return Snapshot(empty, empty, empty, pl.concat(errors))

    raw = _with_raw(loans_text, ["principal", "term_months", "start_date", "grace_days"])
    typed = {
        "principal_fen": yuan_expr_to_fen("principal"),
        "term_months": pl.col("term_months").cast(pl.Int64, strict=False),
        "start_date": pl.col("start_date").str.to_date("%Y-%m-%d", strict=False),
        "grace_days": pl.col("grace_days").cast(pl.Int64, strict=False),
    }
    loans = raw.with_columns(**typed)
    errors.append(
        _parse_errors(
            "loans.csv",
            loans,
            {
                "principal": (_bad("principal", pl.col("principal_fen")), "is not an amount in yuan"),
                "term_months": (_bad("term_months", pl.col("term_months")), "is not a whole number"),
                "start_date": (_bad("start_date", pl.col("start_date")), "is not a date YYYY-MM-DD"),
                "grace_days": (_bad("grace_days", pl.col("grace_days")), "is not a whole number"),
            },
        )
    )
    loans = loans.select("line_no", *LoanFrame.to_schema().columns.keys())
    errors.append(_schema_errors("loans.csv", loans, LoanFrame))

    if installments_text is None:
        bad_lines = (
            pl.concat([e.select("line_no").cast(pl.Int64) for e in errors if e.height])["line_no"]
            if any(e.height for e in errors)
            else pl.Series("line_no", [], pl.Int64)
        )
        good_loans = loans.drop_nulls().filter(~pl.col("line_no").is_in(bad_lines.to_list()))
        installments = build_installments(good_loans.drop("line_no")).with_columns(
            line_no=pl.lit(0, pl.Int64),
            **{f"{part}_paid_fen": pl.lit(0, pl.Int64) for part in PAID_PARTS},
            paid_at=pl.lit(None, pl.Datetime("us", "UTC")),
        )
    else:
        raw = _with_raw(installments_text, INSTALLMENT_COLUMNS + OPENING_COLUMNS)
        installments = raw.with_columns(
            installment_no=pl.col("installment_no").cast(pl.Int64, strict=False),
            due_date=pl.col("due_date").str.to_date("%Y-%m-%d", strict=False),
            principal_due_fen=yuan_expr_to_fen("principal_due"),
            interest_due_fen=yuan_expr_to_fen("interest_due"),
            fee_due_fen=yuan_expr_to_fen("fee_due"),
            penalty_due_fen=yuan_expr_to_fen("penalty_due"),
        )
        errors.append(
            _parse_errors(
                "installments.csv",
                installments,
                {
                    "installment_no": (_bad("installment_no", pl.col("installment_no")), "is not a whole number"),
                    "due_date": (_bad("due_date", pl.col("due_date")), "is not a date YYYY-MM-DD"),
                    **{
                        f"{part}_due": (_bad(f"{part}_due", pl.col(f"{part}_due_fen")), "is not an amount in yuan")
                        for part in ("principal", "interest", "fee", "penalty")
                    },
                },
            )
        )
        installments = _with_opening_paid(installments)
        errors.extend(_opening_paid_errors(installments))
        installments = installments.select(
            "line_no", *InstallmentFrame.to_schema().columns.keys(), *OPENING_FRAME_COLUMNS
        )
        errors.append(_schema_errors("installments.csv", installments, InstallmentFrame))
        orphans = installments.join(loans.select("contract_no"), on="contract_no", how="anti")
        errors.append(
            orphans.select(
                pl.lit("installments.csv").alias("file"),
                "line_no",
                pl.lit("contract_no").alias("column"),
                format_text("{} is not a contract in loans.csv", pl.col("contract_no")).alias("reason"),
            )
        )

    raw = _with_raw(instructions_text, ["installment_no", "amount", "requested_at"])
    instructions = raw.with_columns(
        installment_no=pl.col("installment_no").cast(pl.Int64, strict=False),
        amount_fen=yuan_expr_to_fen("amount"),
        requested_at=_iso_time_utc("requested_at"),
        platform_code=pl.col("platform_code").replace("", None),
    )
    errors.append(
        _parse_errors(
            "instructions.csv",
            instructions,
            {
                "installment_no": (_bad("installment_no", pl.col("installment_no")), "is not a whole number"),
                "amount": (_bad("amount", pl.col("amount_fen")), "is not an amount in yuan"),
                "requested_at": (_bad("requested_at", pl.col("requested_at")), "is not an ISO time"),
            },
        )
    )
    instructions = instructions.select("line_no", *InstructionFrame.to_schema().columns.keys())
    errors.append(_schema_errors("instructions.csv", instructions, InstructionFrame))
    known = installments.select("contract_no", "installment_no")
    orphans = instructions.drop_nulls(["contract_no", "installment_no"]).join(
        known, on=["contract_no", "installment_no"], how="anti"
    )
    errors.append(
        orphans.select(
            pl.lit("instructions.csv").alias("file"),
            "line_no",
            pl.lit("installment_no").alias("column"),
            format_text("installment {} of {} does not exist", pl.col("installment_no"), pl.col("contract_no")).alias(
                "reason"
            ),
        )
    )
    # One reason per cell: a parse failure explains the null that the schema then reports.
    all_errors = (
        pl.concat([e.select(list(ERROR_SCHEMA)).cast(pl.Schema(ERROR_SCHEMA)) for e in errors])
        .unique(subset=["file", "line_no", "column"], keep="first", maintain_order=True)
        .sort("file", "line_no", "column")
    )
    return Snapshot(
        loans=loans.drop("line_no"),
        installments=installments.drop("line_no"),
        instructions=instructions.drop("line_no"),
        errors=all_errors,
    )


def installments_as_imported(
    installments: pl.DataFrame, loans: pl.DataFrame, as_of: dt.date | None = None
) -> pl.DataFrame:
    """The installment rows an import writes: what is due and its last day of grace
    (``overdue_after``), the snapshot's opening amounts (``opening_<part>_paid_fen``,
    ``opening_paid_at``), and the current state they give before any ledger: ``<part>_paid_fen`` =
    opening, ``paid_at`` = the opening time if it is paid in full (else null), and ``status`` —
    ``DUE``, ``PARTIALLY_PAID``, ``PAID`` or ``PAID_LATE`` — and ``OVERDUE`` only as of ``as_of``,
    the latest night the books were reconciled (None for a book never reconciled: the first night
    marks them).

    ``installments`` is :attr:`Snapshot.installments`, ``loans`` :attr:`Snapshot.loans`.
    """
    grace = loans.select("contract_no", "grace_days")
    owed = pl.sum_horizontal([pl.col(f"{part}_due_fen") - pl.col(f"{part}_paid_fen") for part in PAID_PARTS])
    return (
        installments.join(grace, on="contract_no", how="left", maintain_order="left")
        .with_columns(overdue_after=pl.col("due_date") + pl.duration(days=pl.col("grace_days")))
        .with_columns(
            **{f"opening_{part}_paid_fen": pl.col(f"{part}_paid_fen") for part in PAID_PARTS},
            opening_paid_at=pl.col("paid_at"),
            paid_at=pl.when(owed <= 0).then(pl.col("paid_at")),
        )
        .with_columns(status=installment_status_expr(as_of))
        .drop("grace_days")
    )
