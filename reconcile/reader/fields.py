"""Fields: the layout's field specs as polars expressions over the cells: amounts (never through a
float), times, maps, constants; what could not be read, per line; failure reasons; split lines
of one payment read as one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from reconcile.codes import FAILURE_WORDS, FailureReason
from reconcile.layouts import AmountField, DatetimeField, FieldSpec, LayoutSpec, MapField
from reconcile.money import yuan_expr_to_fen
from reconcile.reader.cells import plain_yuan
from reconcile.reader.decoding import FileRejected
from reconcile.settings import BUSINESS_TZ, ChannelConfig
from reconcile.text import format_text
from reconcile.timezones import local_to_utc

CANONICAL_TEXT_FIELDS = (
    "channel_txn_id",
    "reference",
    "account_shown",
    "memo",
    "failure_code",
    "failure_text",
    "refund_request_no",
)


def empty_records() -> pl.DataFrame:
    schema: dict[str, Any] = {
        "source_file": pl.String,
        "file_sha256": pl.String,
        "line_no": pl.Int64,
        "raw_line": pl.String,
        "channel": pl.String,
        "record_kind": pl.String,
        "status": pl.String,
        "amount_fen": pl.Int64,
        "settled_at": pl.Datetime("us", "UTC"),
        "failure_reason": pl.String,
    }
    schema.update({name: pl.String for name in CANONICAL_TEXT_FIELDS})
    return pl.DataFrame(schema=schema)


#: ``record_kind`` of lines that are neither debits nor refunds (withdrawals, fees, transfers):
#: they count in control totals, then are set aside.
SKIP_KIND = "skip"


#: How far before its settlement date a time without a year may lie (a clearing file's days).
YEARLESS_WINDOW_DAYS = 31


def parse_amount(source: pl.Expr, spec: AmountField, plain: bool = False) -> pl.Expr:
    """Amount text → signed Int64 fen (null when unreadable), as the field's spec says.

    ``amount``: ``yuan`` (``¥``/``￥``, thousands separators and ``元`` allowed) or ``fen`` (integer);
    ``decimal = ","``: comma decimals (``1.234,56``); ``sign_letters``: a leading or trailing
    letter giving the sign (``{ "D" = "-", "C" = "+" }``). ``plain``: every text of the column is
    known to be plain yuan (:func:`_plain_yuan_columns`).
    """
    if plain:
        return yuan_expr_to_fen(source, plain=True)
    text = source.str.strip_chars()
    sign: pl.Expr = pl.lit(1)
    if letters := spec.sign_letters:
        letter = pl.coalesce(text.str.extract(r"^([A-Za-z]+)", 1), text.str.extract(r"([A-Za-z]+)$", 1))
        factor = letter.replace_strict(
            {key: -1 if value == "-" else 1 for key, value in letters.items()}, default=None, return_dtype=pl.Int64
        )
        sign = pl.when(letter.is_null()).then(pl.lit(1)).otherwise(factor)
        text = text.str.replace_all(r"^[A-Za-z]+|[A-Za-z]+$", "").str.strip_chars()
    if spec.decimal == ",":
        text = text.str.replace_all(r"[.\s]", "").str.replace(",", ".", literal=True)
    if spec.amount == "fen":
        cleaned = text.str.replace_all(r"[,\s]", "")
        value: pl.Expr = pl.when(cleaned.str.contains(r"^[+-]?\d+$")).then(cleaned.cast(pl.Int64, strict=False))
    else:
        value = yuan_expr_to_fen(text)
    return value * sign if spec.sign_letters else value


@dataclass(frozen=True)
class _Field:
    """How one canonical field is read: its value, where its text is unreadable (given the parsed
    column, so the parse runs once) and what to say there."""

    parsed: pl.Expr
    unreadable: Callable[[pl.Expr], pl.Expr] | None = None
    message: pl.Expr | None = None


def yuan_columns(fields: dict[str, FieldSpec]) -> list[str]:
    """The columns read as yuan amounts with no sign letters or comma decimals."""
    return sorted(
        {
            column
            for spec in fields.values()
            if isinstance(spec, AmountField) and spec.amount == "yuan" and not spec.sign_letters
            and spec.decimal is None and spec.fallback is None
            for column in spec.columns()
        }
    )  # fmt: skip


def _plain_yuan_columns(table: pl.DataFrame, fields: dict[str, FieldSpec]) -> set[str]:
    columns = yuan_columns(fields)
    if not columns or table.height == 0:
        return set()
    found = table.lazy().select([plain_yuan(column) for column in columns]).collect().row(0, named=True)
    return {column for column in columns if found[f"_plain:{column}"]}


def _field_expr(
    target: str,
    spec: FieldSpec,
    day: dt.date | None,
    plain: frozenset[str] | set[str] = frozenset(),
    kind: pl.Expr | None = None,
) -> _Field:
    """One canonical field from the layout's columns; ``plain``: columns of plain yuan text;
    ``kind``: the line's record kind (for an amount read from another column on refund lines)."""
    if isinstance(spec, AmountField) and spec.income is not None and spec.expense is not None:
        # separate income and expense columns: one signed amount; a blank side counts as zero, so
        # the difference is null exactly where a side is unreadable
        income, expense = pl.col(spec.income), pl.col(spec.expense)
        parsed = (
            parse_amount(income.fill_null("0"), spec, spec.income in plain)
            - parse_amount(expense.fill_null("0"), spec, spec.expense in plain).abs()
        )
        message = format_text("{}: {} / {} is not an amount", pl.lit(target), income, expense)
        return _Field(parsed, lambda column: column.is_null(), message)
    assert spec.column is not None  # the spec says so (reconcile.layouts)
    source = pl.col(spec.column)
    if spec.fallback is not None:
        source = source.fill_null(pl.col(spec.fallback))
    if isinstance(spec, AmountField) and spec.column_for_kind and kind is not None:
        for line_kind, column in spec.column_for_kind.items():
            source = pl.when(kind == line_kind).then(pl.col(column)).otherwise(source)
        parsed = parse_amount(source, spec)
        message = format_text("{}: {} is not an amount in yuan", pl.lit(target), source)
    elif isinstance(spec, AmountField):
        parsed = parse_amount(source, spec, spec.column in plain and spec.fallback is None)
        what = "an integer number of fen" if spec.amount == "fen" else "an amount in yuan"
        message = format_text("{}: {} is not {}", pl.lit(target), source, pl.lit(what))
        if spec.sign_from is not None:  # the sign is written in a column of its own
            signs = {text: -1 if sign == "-" else 1 for text, sign in spec.sign_from.map.items()}
            sign_text = pl.col(spec.sign_from.column)
            factor = sign_text.replace_strict(signs, default=None, return_dtype=pl.Int64)
            wrong_sign = format_text(
                "{}: {} {} is not one of {}", pl.lit(target), pl.lit(spec.sign_from.column),
                sign_text.fill_null("(blank)"), pl.lit(", ".join(spec.sign_from.map)),
            )  # fmt: skip
            message = pl.when(parsed.is_not_null() & factor.is_null()).then(wrong_sign).otherwise(message)
            parsed = parsed.abs() * factor
    elif isinstance(spec, DatetimeField):
        parsed = _local_time(source, spec, day)
        within = f" within {YEARLESS_WINDOW_DAYS} days before the settlement date" if spec.year_from else ""
        message = format_text(
            "{}: {} is not a time of the form {}", pl.lit(target), source, pl.lit(spec.datetime + within)
        )
    elif isinstance(spec, MapField):
        parsed = source.replace_strict(spec.map, default=spec.default, return_dtype=pl.String)
        if spec.blank is not None:
            parsed = pl.when(source.is_null()).then(pl.lit(spec.blank)).otherwise(parsed)
        elif spec.default is not None:  # a blank cell takes the default too
            parsed = parsed.fill_null(pl.lit(spec.default))
        message = format_text("{}: unknown value {}", pl.lit(target), source)
    else:
        return _Field(source)
    return _Field(parsed, lambda column: source.is_not_null() & column.is_null(), message)


def _local_time(source: pl.Expr, spec: DatetimeField, day: dt.date | None) -> pl.Expr:
    """Shanghai wall-clock text → naive datetime, localised later (:func:`local_to_utc`, for the
    whole column at once). ``year_from = "business_date"``: the text has no year (a clearing
    file's ``MMDDhhmmss``); it is the settlement date's year, or the year before when that would
    put the time after the settlement date (December lines in a January file)."""
    fmt = spec.datetime
    if spec.year_from == "business_date":
        if day is None:
            return pl.lit(None, pl.Datetime("us"))
        this_year = (pl.lit(f"{day.year:04d}") + source).str.to_datetime("%Y" + fmt, strict=False)
        last_year = (pl.lit(f"{day.year - 1:04d}") + source).str.to_datetime("%Y" + fmt, strict=False)
        chosen = pl.when(this_year.dt.date() > pl.lit(day)).then(last_year).otherwise(this_year)
        # a settlement file holds the days just before its date: a time outside that month is damage
        # (or a line of another file), unreadable rather than a year off
        return pl.when(chosen.dt.date() >= pl.lit(day - dt.timedelta(days=YEARLESS_WINDOW_DAYS))).then(chosen)
    return source.str.to_datetime(fmt, strict=False)


def canonical_records(
    table: pl.DataFrame,
    layout: LayoutSpec,
    channel: str,
    name: str,
    sha: str,
    day: dt.date | None,
    plain: set[str] | None = None,
) -> pl.DataFrame:
    """Map the layout's columns to canonical fields; keep parse failures as ``_parse_error``.
    ``plain``: the amount columns known to hold plain yuan only (found here when not given).

    Also kept for the control totals: ``_signed_fen`` (the amount before ``absolute``) and
    ``_kind_raw`` (the text ``record_kind`` was read from).
    """
    fields = layout.fields
    constants = layout.constant
    amounts = [spec for spec in fields.values() if isinstance(spec, AmountField)]
    by_kind = {column for spec in amounts for column in (spec.column_for_kind or {}).values()}
    needed = dict.fromkeys(
        column for spec in fields.values() if not spec.optional for column in spec.columns() if column not in by_kind
    )
    missing = [column for column in needed if column not in table.columns]
    if missing:
        raise FileRejected(f"the header lacks the columns {', '.join(missing)}")
    # optional columns, and those of one kind of line only, may be absent (another bill type)
    absent = {c for spec in fields.values() for c in spec.columns() if c not in table.columns and c not in needed}
    if absent:  # another bill type of the channel: the field is blank
        table = table.with_columns([pl.lit(None, pl.String).alias(column) for column in sorted(absent)])
    exprs: list[pl.Expr] = []
    parsed_once: list[pl.Expr] = []
    checks: list[tuple[pl.Expr, pl.Expr]] = []  # (unreadable here, what to say)
    if plain is None:
        plain = _plain_yuan_columns(table, fields)
    kind_spec = fields.get("record_kind")
    kind = _field_expr("record_kind", kind_spec, day).parsed if isinstance(kind_spec, MapField) else None
    for target, spec in fields.items():
        field = _field_expr(target, spec, day, plain, kind)
        parsed = field.parsed
        if field.unreadable is not None and field.message is not None:
            parsed_once.append(parsed.alias(f"__{target}"))
            parsed = pl.col(f"__{target}")
            checks.append((field.unreadable(parsed), field.message))
        if target == "amount_fen":
            exprs.append(parsed.alias("_signed_fen"))
            if isinstance(spec, AmountField) and spec.absolute:
                parsed = parsed.abs()
        if target == "record_kind" and spec.column is not None:
            exprs.append(pl.col(spec.column).alias("_kind_raw"))
        exprs.append(parsed.alias(target))
    # lazily, so an expression used twice (the cleaned amount text, say) is computed once
    unreadable = pl.any_horizontal([check for check, _ in checks]) if checks else pl.lit(False)
    table = table.lazy().with_columns(parsed_once).with_columns(_failed=unreadable).collect()
    times = [f"__{target}" for target, spec in fields.items() if isinstance(spec, DatetimeField)]
    naive_nulls = [table[column].null_count() for column in times]
    table = table.with_columns([local_to_utc(table[column], BUSINESS_TZ.key) for column in times])
    if [table[column].null_count() for column in times] != naive_nulls:
        table = table.with_columns(_failed=unreadable)  # a wall-clock time the zone skipped is unreadable too
    for target, value in constants.items():
        exprs.append(pl.lit(value, pl.String).alias(target))
    kind_only = {target: spec.only_for_kind for target, spec in fields.items() if spec.only_for_kind is not None}
    # on lines of other kinds the field is blank: a map's ``blank`` value, else nothing
    other_kinds = {t: s.blank if isinstance(s, MapField) else None for t, s in fields.items() if t in kind_only}
    frame = table.select(
        pl.lit(name).alias("source_file"),
        pl.lit(sha).alias("file_sha256"),
        "line_no",
        "raw_line",
        pl.lit(channel).alias("channel"),
        *exprs,
        _parse_error=_parse_errors(table, checks),
    )
    for column in (*CANONICAL_TEXT_FIELDS, "_kind_raw"):
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(column))
    if "_signed_fen" not in frame.columns:
        frame = frame.with_columns(_signed_fen=pl.col("amount_fen") if "amount_fen" in frame.columns else pl.lit(None))
    if kind_only:  # e.g. the account serial is the refund's own number, but only on refund lines
        frame = frame.with_columns(
            [
                pl.when(pl.col("record_kind") == kind)
                .then(pl.col(target))
                .otherwise(pl.lit(other_kinds[target], pl.String))
                .alias(target)
                for target, kind in kind_only.items()
            ]
        )
    frame = frame.with_columns(_failure_reasons(layout, frame))
    schema = empty_records().schema
    missing_fields = [
        name for name in ("record_kind", "status", "amount_fen", "settled_at") if name not in frame.columns
    ]
    if missing_fields:
        raise FileRejected(f"the layout maps no column to {', '.join(missing_fields)}")
    currency = pl.col("currency") if "currency" in fields else pl.lit(None, pl.String)
    split = pl.col("split_part") if "split_part" in fields else pl.lit(None, pl.String)
    fee = pl.col("fee_fen").cast(pl.Int64) if "fee_fen" in fields else pl.lit(None, pl.Int64)
    net = pl.col("settled_net_fen").cast(pl.Int64) if "settled_net_fen" in fields else pl.lit(None, pl.Int64)
    return frame.select(
        [*[pl.col(name).cast(dtype) for name, dtype in schema.items()], "_parse_error", "_signed_fen", "_kind_raw",
         currency.alias("_currency"), split.alias("_split"), fee.alias("_fee"), net.alias("_net")]
    )  # fmt: skip


def combine_splits(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | None]:
    """Split lines (分账) of one payment read as one record: lines of the same transaction, kind
    and refund number, with different part numbers, the same status and the same reference,
    become one record with their amounts added (its line number and text the first part's).

    A split payment that cannot be put together whole is never read in part: when a part number
    repeats, a part could not be read, or the parts disagree on status or reference, every line of
    it is invalid, saying which, so no half payment is matched."""
    key = pl.concat_str(
        [pl.col(c).fill_null("") for c in ("channel_txn_id", "record_kind", "refund_request_no")], separator="\x1f"
    )
    parts = frame.with_columns(_key=key).filter(pl.col("_split").is_not_null())
    groups = (
        parts.group_by("_key")
        .agg(
            pl.len().alias("_n"),
            pl.col("_split").n_unique().alias("_parts"),
            pl.col("_parse_error").is_not_null().any().alias("_unread"),
            pl.col("status").n_unique().alias("_statuses"),
            pl.col("reference").n_unique().alias("_references"),
        )
        .filter(pl.col("_n") > 1)
    )
    if not groups.height:
        return frame, None
    why = (
        pl.when(pl.col("_unread")).then(pl.lit("split payment: another of its parts could not be read, so none is"))
        .when(pl.col("_n") != pl.col("_parts")).then(pl.lit("split payment: a part number appears twice"))
        .when(pl.col("_statuses") > 1).then(pl.lit("split payment: its parts disagree on the status"))
        .when(pl.col("_references") > 1).then(pl.lit("split payment: its parts disagree on the reference"))
    )  # fmt: skip
    groups = groups.with_columns(_why=why)
    broken = groups.filter(pl.col("_why").is_not_null()).select("_key", "_why")
    whole = groups.filter(pl.col("_why").is_null()).select("_key")
    chosen = parts.join(whole, on="_key", how="semi").sort("line_no")
    merged = chosen.group_by("_key", maintain_order=True).agg(
        *[pl.col(c).first() for c in frame.columns if c not in ("amount_fen", "_signed_fen")],
        pl.col("amount_fen").sum(),
        pl.col("_signed_fen").sum(),
    )
    rest = frame.join(chosen.select("line_no"), on="line_no", how="anti")
    if broken.height:
        rest = (
            rest.with_columns(_key=key)
            .join(broken, on="_key", how="left")
            .with_columns(_parse_error=pl.coalesce("_parse_error", "_why"))
            .drop("_key", "_why")
        )
    combined = pl.concat([rest, merged.select(frame.columns)]).sort("line_no")
    note = (
        f"{merged.height} payment(s) arrived as {chosen.height} split lines (分账) and were read as one each"
        if merged.height
        else None
    )
    return combined, note


def currency_error(stated: pl.Expr, channel: ChannelConfig) -> pl.Expr:
    """Why a line's stated currency is not the channel's (null when it is, or when none is stated):
    an amount in euros is never read as yuan."""
    code = stated.str.strip_chars().str.to_uppercase()
    return (
        pl.when(code.is_not_null() & (code != "") & (code != channel.currency))
        .then(format_text("currency: {} is not this channel's currency ({})", stated, pl.lit(channel.currency)))
        .otherwise(None)
    )


def _parse_errors(table: pl.DataFrame, checks: list[tuple[pl.Expr, pl.Expr]]) -> pl.Series:
    """Per row, what could not be read (``"settled_at: ... ; amount_fen: ..."``), else null;
    ``_failed`` says which rows to look at.

    The words are written only for the rows that failed, not computed for every row and dropped.
    """
    errors = pl.repeat(None, table.height, dtype=pl.String, eager=True).alias("_parse_error")
    failed = table["_failed"]
    if checks and failed.any():
        said = table.filter(failed).select(
            pl.concat_str([pl.when(unreadable).then(message) for unreadable, message in checks], separator="; ",
                          ignore_nulls=True)
        ).to_series()  # fmt: skip
        errors = errors.scatter(failed.arg_true(), said)
    return errors


def _failure_reasons(layout: LayoutSpec, frame: pl.DataFrame) -> pl.Series:
    """Per row, the failure on the shared list (null for successes): code table first, then
    failure words; a failure nobody can map is ``OTHER``.

    Only the failed rows are looked at, and the words once per distinct text, not once per line.
    """
    reasons = pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias("failure_reason")
    failed = (
        frame.select("status", "failure_code", "failure_text")
        .with_row_index("_row")
        .filter(pl.col("status") == "FAILED")
    )
    if not failed.height:
        return reasons
    codes = layout.reason_codes
    by_code = pl.col("failure_code").replace_strict(codes, default=None, return_dtype=pl.String)
    texts = failed["failure_text"].drop_nulls().unique().to_list()
    meaning = {text: next((r.value for words, r in FAILURE_WORDS if words in text), None) for text in texts}
    by_words = pl.col("failure_text").replace_strict(
        {text: reason for text, reason in meaning.items() if reason}, default=None, return_dtype=pl.String
    )
    mapped = failed.select(by_code.fill_null(by_words).fill_null(pl.lit(FailureReason.OTHER.value))).to_series()
    return reasons.scatter(failed["_row"], mapped)
