"""Reading channel files, as declared by a layout, into canonical channel records.

A layout (see ``reconcile/channels.toml``) is data: encoding, how to find the header, which lines
are comments or a summary, column → canonical field with its parser, status and reason tables,
control totals and where the file states its business date. :func:`parse_channel_file` takes a
file's bytes and returns what the product makes of it — a :class:`ParsedFile` — without raising
for bad data: an unreadable or inconsistent file is *rejected* with a reason, a bad line becomes
an invalid row with its line number, raw text and the check it failed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pandera.polars as pa
import polars as pl

from reconcile.codes import FAILURE_WORDS, FailureReason
from reconcile.iso20022 import ISO_REASONS, NotIso20022, message_kind, parse_iso20022
from reconcile.money import AmountError, yuan_expr_to_fen, yuan_text_to_fen
from reconcile.settings import ChannelConfig
from schemas.frames import ChannelRecordFrame

CANONICAL_TEXT_FIELDS = (
    "channel_txn_id",
    "reference",
    "account_shown",
    "memo",
    "failure_code",
    "failure_text",
    "refund_request_no",
)
_CELL_PADDING = ' \t\u3000\ufeff"'
_E_NOTATION = r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$"


@dataclass(frozen=True)
class ControlTotal:
    """A control total the file states, and what its rows add up to."""

    applies_to: str
    stated_count: int
    stated_fen: int
    counted: int
    summed_fen: int

    @property
    def agrees(self) -> bool:
        return self.stated_count == self.counted and self.stated_fen == self.summed_fen


@dataclass(frozen=True)
class ParsedFile:
    """What one file holds.

    ``rejected_reason``: None for an accepted file; otherwise why the whole file is refused (and
    then ``records`` is empty). ``invalid``: bad lines of an accepted file, one row per line with
    ``line_no``, ``raw_line``, ``check`` and ``message``. ``rows``: data lines read.
    """

    source_file: str
    sha256: str
    channel: str
    layout: str
    business_date: dt.date | None
    rows: int
    records: pl.DataFrame
    invalid: pl.DataFrame
    control_totals: tuple[ControlTotal, ...] = ()
    rejected_reason: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class FileRejected(Exception):
    """Raised inside the reader to abandon a file; it never leaves this module."""


def empty_invalid() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "source_file": pl.String,
            "file_sha256": pl.String,
            "channel": pl.String,
            "line_no": pl.Int64,
            "raw_line": pl.String,
            "reference": pl.String,
            "check": pl.String,
            "message": pl.String,
        }
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


def normalise_header(cell: str) -> str:
    """NFKC (full-width ``（元）`` → ``(元)``), padding and TABs stripped."""
    return unicodedata.normalize("NFKC", cell).strip(_CELL_PADDING)


def decode_text(data: bytes, encoding: str) -> str:
    """Bytes to text: BOM stripped, strict decoding; a NUL byte means binary."""
    if not data.strip():
        raise FileRejected("the file is empty")
    if b"\x00" in data[:4096]:
        raise FileRejected("the file is binary, not text (it contains NUL bytes)")
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        raise FileRejected(
            f"the file cannot be decoded as {encoding} at byte {error.start}: is it the right encoding?"
        ) from None


def parse_channel_file(
    name: str,
    data: bytes,
    sha256: str,
    channel: ChannelConfig,
    layout: dict[str, Any],
    business_date: dt.date | None,
) -> ParsedFile:
    """Parse one file of ``channel`` filed under ``business_date``; never raises for bad data.

    ``business_date`` None (``recon inspect``) accepts whatever date the file states.
    """
    try:
        return _parse(name, data, sha256, channel, layout, business_date)
    except FileRejected as rejection:
        return ParsedFile(
            source_file=name,
            sha256=sha256,
            channel=channel.channel_id,
            layout=channel.layout,
            business_date=None,
            rows=0,
            records=empty_records(),
            invalid=empty_invalid(),
            rejected_reason=str(rejection),
        )


def _parse(
    name: str,
    data: bytes,
    sha256: str,
    channel: ChannelConfig,
    layout: dict[str, Any],
    business_date: dt.date | None,
) -> ParsedFile:
    if layout.get("format") == "iso20022":
        return _parse_iso20022(name, data, sha256, channel, business_date)
    text = decode_text(data, layout.get("encoding", "utf-8"))
    lines = text.splitlines()
    delimiter = layout["delimiter"]
    comment = layout.get("comment_prefix")
    summary_prefix = layout.get("summary_prefix")
    record_prefix = layout.get("record_prefix")

    header_index, columns = _find_columns(lines, layout, delimiter, comment)
    preamble = [line for line in lines[: max(header_index, 0)] if comment and line.startswith(comment)]
    footer: list[str] = []
    summary: list[str] | None = None
    data_lines: list[tuple[int, str]] = []
    for index in range(header_index + 1, len(lines)):
        line = lines[index]
        if not line.strip():
            continue
        if comment and line.startswith(comment):
            footer.append(line)
        elif summary_prefix and line.startswith(summary_prefix + delimiter):
            if summary is not None:
                raise FileRejected(f"line {index + 1}: a second summary line")
            summary = [cell.strip(_CELL_PADDING) for cell in line.split(delimiter)]
        elif record_prefix and not line.startswith(record_prefix + delimiter):
            raise FileRejected(f"line {index + 1}: neither a summary nor a detail line: {line[:60]!r}")
        else:
            data_lines.append((index + 1, line))
    if summary_prefix and summary is None:
        raise FileRejected("the summary line (batch totals) is missing: the file may be truncated")

    file_date = _stated_business_date(layout, preamble, summary)
    if file_date is not None and business_date is not None and file_date != business_date:
        raise FileRejected(
            f"the file is for business date {file_date.isoformat()}, but it was filed under {business_date.isoformat()}"
        )

    raw = pl.DataFrame(
        {
            "line_no": pl.Series([n for n, _ in data_lines], dtype=pl.Int64),
            "raw_line": pl.Series([line for _, line in data_lines], dtype=pl.String),
        }
    )
    cells = raw.with_columns(_cells=pl.col("raw_line").str.split(delimiter))
    width_ok = cells["_cells"].list.len() == len(columns)
    wrong_width = cells.filter(~width_ok)
    cells = cells.filter(width_ok)
    table = cells.with_columns(pl.col("_cells").list.to_struct(fields=[f"c{i}" for i in range(len(columns))])).unnest(
        "_cells"
    )
    table = table.rename({f"c{i}": column for i, column in enumerate(columns)})
    table = table.with_columns([pl.col(column).str.strip_chars(_CELL_PADDING).replace("", None) for column in columns])

    canonical = _canonical(table, layout, channel.channel_id, name, sha256)
    totals = _control_totals(layout, footer, summary, canonical)
    disagreeing = [total for total in totals if not total.agrees]
    if disagreeing:
        total = disagreeing[0]
        unreadable = ""
        if wrong_width.height:
            line_no, cells = wrong_width.row(0)[0], wrong_width["_cells"][0].len()
            unreadable = (
                f"; {wrong_width.height} line(s) could not be read, the first at line {line_no} "
                f"({cells} fields where the layout has {len(columns)})"
            )
        unparsed = canonical.filter(pl.col("_parse_error").is_not_null())
        if unparsed.height:
            unreadable += f"; line {unparsed['line_no'][0]}: {unparsed['_parse_error'][0]}"
        raise FileRejected(
            f"control totals disagree ({total.applies_to}): the file states {total.stated_count} rows "
            f"and {total.stated_fen} fen, its rows hold {total.counted} and {total.summed_fen} fen{unreadable}"
        )
    if table.height == 0 and wrong_width.height == 0 and not totals:
        raise FileRejected("the file has a header but no records and no control totals")

    width_invalid = wrong_width.select(
        pl.lit(name).alias("source_file"),
        pl.lit(sha256).alias("file_sha256"),
        pl.lit(channel.channel_id).alias("channel"),
        "line_no",
        "raw_line",
        pl.lit(None, pl.String).alias("reference"),
        pl.lit("field_count").alias("check"),
        pl.format(
            "the line has {} fields, the layout expects {}", pl.col("_cells").list.len(), pl.lit(len(columns))
        ).alias("message"),
    )
    good, invalid = _validate(canonical, channel.channel_id, name, sha256)
    return ParsedFile(
        source_file=name,
        sha256=sha256,
        channel=channel.channel_id,
        layout=channel.layout,
        business_date=file_date or business_date,
        rows=len(data_lines),
        records=good,
        invalid=pl.concat([width_invalid, invalid]).sort("line_no"),
        control_totals=tuple(totals),
    )


def _find_columns(
    lines: list[str], layout: dict[str, Any], delimiter: str, comment: str | None
) -> tuple[int, list[str]]:
    """The header's line index (-1 when the layout has fixed columns) and the column names."""
    if "columns" in layout:
        return -1, list(layout["columns"])
    wanted = [normalise_header(name) for name in layout["header_contains"]]
    for index, line in enumerate(lines):
        if comment and line.startswith(comment):
            continue
        cells = [normalise_header(cell) for cell in line.split(delimiter)]
        if all(name in cells for name in wanted):
            return index, cells
    raise FileRejected(f"no header row with the columns {', '.join(wanted)}: is this the right layout?")


def _stated_business_date(layout: dict[str, Any], preamble: list[str], summary: list[str] | None) -> dt.date | None:
    spec = layout.get("business_date")
    if not spec:
        return None
    text: str | None = None
    if spec["source"] == "preamble":
        for line in preamble:
            match = re.search(spec["pattern"], line)
            if match:
                text = match.group("date")
                break
    elif spec["source"] == "summary" and summary is not None and len(summary) > spec["field"]:
        text = summary[spec["field"]]
    if text is None:
        raise FileRejected("the file does not state its business date where the layout says it does")
    try:
        return dt.datetime.strptime(text, spec["format"]).date()
    except ValueError:
        raise FileRejected(f"the stated business date {text!r} is not a date") from None


def _canonical(table: pl.DataFrame, layout: dict[str, Any], channel: str, name: str, sha: str) -> pl.DataFrame:
    """Map the layout's columns to canonical fields; keep parse failures as ``_parse_error``."""
    fields: dict[str, dict[str, Any]] = layout.get("fields", {})
    constants: dict[str, str] = layout.get("constant", {})
    missing = [spec["column"] for spec in fields.values() if spec["column"] not in table.columns]
    if missing:
        raise FileRejected(f"the header lacks the columns {', '.join(missing)}")
    exprs: list[pl.Expr] = []
    errors: list[pl.Expr] = []
    for target, spec in fields.items():
        source = pl.col(spec["column"])
        if "fallback" in spec:
            source = source.fill_null(pl.col(spec["fallback"]))
        if spec.get("amount") == "yuan":
            parsed = yuan_expr_to_fen(source)
            if spec.get("absolute"):
                parsed = parsed.abs()
            errors.append(
                pl.when(source.is_not_null() & parsed.is_null()).then(
                    pl.format("{}: {} is not an amount in yuan", pl.lit(target), source)
                )
            )
        elif "datetime" in spec:
            parsed = source.str.to_datetime(spec["datetime"], time_zone="Asia/Shanghai", strict=False)
            parsed = parsed.dt.convert_time_zone("UTC").dt.cast_time_unit("us")
            errors.append(
                pl.when(source.is_not_null() & parsed.is_null()).then(
                    pl.format("{}: {} is not a time of the form {}", pl.lit(target), source, pl.lit(spec["datetime"]))
                )
            )
        elif "map" in spec:
            parsed = source.replace_strict(spec["map"], default=None, return_dtype=pl.String)
            errors.append(
                pl.when(source.is_not_null() & parsed.is_null()).then(
                    pl.format("{}: unknown value {}", pl.lit(target), source)
                )
            )
        else:
            parsed = source
        exprs.append(parsed.alias(target))
    for target, value in constants.items():
        exprs.append(pl.lit(value, pl.String).alias(target))
    frame = table.select(
        pl.lit(name).alias("source_file"),
        pl.lit(sha).alias("file_sha256"),
        "line_no",
        "raw_line",
        pl.lit(channel).alias("channel"),
        *exprs,
        pl.concat_str(errors, separator="; ", ignore_nulls=True).alias("_parse_error")
        if errors
        else pl.lit(None, pl.String).alias("_parse_error"),
    )
    for column in CANONICAL_TEXT_FIELDS:
        if column not in frame.columns:
            frame = frame.with_columns(pl.lit(None, pl.String).alias(column))
    frame = frame.with_columns(_parse_error=pl.col("_parse_error").replace("", None))
    frame = frame.with_columns(failure_reason=_failure_reason_expr(layout))
    schema = empty_records().schema
    missing_fields = [
        name for name in ("record_kind", "status", "amount_fen", "settled_at") if name not in frame.columns
    ]
    if missing_fields:
        raise FileRejected(f"the layout maps no column to {', '.join(missing_fields)}")
    return frame.select([*[pl.col(name).cast(dtype) for name, dtype in schema.items()], pl.col("_parse_error")])


def _failure_reason_expr(layout: dict[str, Any]) -> pl.Expr:
    """Code table first, then failure words; a failure nobody can map is ``OTHER``."""
    codes: dict[str, str] = layout.get("reason_codes", {})
    by_code = pl.col("failure_code").replace_strict(codes, default=None, return_dtype=pl.String)
    by_words: pl.Expr = pl.lit(None, pl.String)
    for words, reason in reversed(FAILURE_WORDS):
        by_words = (
            pl.when(pl.col("failure_text").str.contains(words, literal=True))
            .then(pl.lit(reason.value))
            .otherwise(by_words)
        )
    mapped = by_code.fill_null(by_words).fill_null(pl.lit(FailureReason.OTHER.value))
    return pl.when(pl.col("status") == "FAILED").then(mapped).otherwise(None)


def _control_totals(
    layout: dict[str, Any], footer: list[str], summary: list[str] | None, canonical: pl.DataFrame
) -> list[ControlTotal]:
    """Control totals checked on the rows as read, before any row is dropped."""
    totals = []
    for spec in layout.get("control_totals", []):
        if spec["source"] == "footer":
            found = [m for line in footer if (m := re.search(spec["pattern"], line))]
            if not found:
                raise FileRejected("the footer with the control totals is missing: the file may be truncated")
            count_text, amount_text = found[0].group("count"), found[0].group("amount")
        else:
            assert summary is not None
            try:
                count_text, amount_text = summary[spec["count_field"]], summary[spec["amount_field"]]
            except IndexError:
                raise FileRejected("the summary line has too few fields") from None
        try:
            stated_count, stated_fen = int(count_text), abs(yuan_text_to_fen(amount_text))
        except (ValueError, AmountError):
            raise FileRejected(f"the control totals {count_text!r} / {amount_text!r} are not numbers") from None
        rows = canonical
        if spec["applies_to"] in ("debit", "refund"):
            rows = rows.filter(pl.col("record_kind") == spec["applies_to"])
        elif spec["applies_to"] == "success":
            rows = rows.filter(pl.col("status") == "SUCCESS")
        totals.append(
            ControlTotal(
                applies_to=spec["applies_to"],
                stated_count=stated_count,
                stated_fen=stated_fen,
                counted=rows.height,
                summed_fen=int(rows["amount_fen"].fill_null(0).sum()),
            )
        )
    return totals


def _validate(canonical: pl.DataFrame, channel: str, name: str, sha: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into valid records and invalid rows with the check each failed."""
    checks = canonical.with_row_index("_row").with_columns(
        _parse_error=pl.coalesce(
            pl.col("_parse_error"),
            pl.when(pl.col("reference").str.contains(_E_NOTATION)).then(
                pl.format("reference: {} is in E-notation (spreadsheet damage), not an id", pl.col("reference"))
            ),
        )
    )
    failures = [
        checks.filter(pl.col("_parse_error").is_not_null()).select(
            "_row", pl.lit("parse").alias("check"), pl.col("_parse_error").alias("message")
        )
    ]
    parsed_ok = checks.filter(pl.col("_parse_error").is_null())
    duplicate = parsed_ok.filter(
        pl.struct("record_kind", "channel_txn_id", "refund_request_no").is_duplicated()
        & (pl.int_range(pl.len()).over("record_kind", "channel_txn_id", "refund_request_no") > 0)
    )
    failures.append(
        duplicate.select(
            "_row",
            pl.lit("duplicate_record").alias("check"),
            pl.format("transaction {} appears more than once in the file", pl.col("channel_txn_id")).alias("message"),
        )
    )
    candidates = parsed_ok.join(duplicate.select("_row"), on="_row", how="anti")
    try:
        ChannelRecordFrame.validate(candidates.drop("_row", "_parse_error"), lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        if cases.filter(pl.col("index").is_null()).height:
            schema_level = cases.filter(pl.col("index").is_null()).row(0, named=True)
            raise FileRejected(
                f"the file does not fit the record schema: {schema_level['column']} {schema_level['check']}"
            ) from None
        rows = candidates.select("_row").with_row_index("index").with_columns(pl.col("index").cast(pl.Int32))
        failures.append(
            cases.join(rows, on="index").select(
                "_row",
                pl.col("check").cast(pl.String),
                pl.format("{}: {} failed {}", pl.col("column"), pl.col("failure_case"), pl.col("check")).alias(
                    "message"
                ),
            )
        )
    failed = (
        pl.concat(failures)
        .group_by("_row", maintain_order=True)
        .agg(pl.col("check").first(), pl.col("message").str.join("; "))
    )
    invalid = checks.join(failed, on="_row").select(
        pl.lit(name).alias("source_file"),
        pl.lit(sha).alias("file_sha256"),
        pl.lit(channel).alias("channel"),
        "line_no",
        "raw_line",
        "reference",
        "check",
        "message",
    )
    good = checks.join(failed.select("_row"), on="_row", how="anti").drop("_row", "_parse_error")
    return good, invalid


def _parse_iso20022(
    name: str, data: bytes, sha256: str, channel: ChannelConfig, business_date: dt.date | None
) -> ParsedFile:
    """pain.002 / camt.054 through the same validation as the delimited layouts."""
    try:
        kind, stated, rows = parse_iso20022(data)
    except NotIso20022 as error:
        raise FileRejected(str(error)) from None
    if stated is not None and business_date is not None and stated != business_date:
        raise FileRejected(
            f"the file is for business date {stated.isoformat()}, but it was filed under {business_date.isoformat()}"
        )
    amount = yuan_expr_to_fen("amount")
    codes = {code: reason.value for code, reason in ISO_REASONS.items()}
    canonical = rows.select(
        pl.lit(name).alias("source_file"),
        pl.lit(sha256).alias("file_sha256"),
        "line_no",
        "raw_line",
        pl.lit(channel.channel_id).alias("channel"),
        "record_kind",
        "status",
        amount.alias("amount_fen"),
        "settled_at",
        pl.when(pl.col("status") == "FAILED")
        .then(pl.col("failure_code").replace_strict(codes, default=FailureReason.OTHER.value, return_dtype=pl.String))
        .alias("failure_reason"),
        "channel_txn_id",
        "reference",
        "account_shown",
        pl.lit(None, pl.String).alias("memo"),
        "failure_code",
        "failure_text",
        pl.lit(None, pl.String).alias("refund_request_no"),
        pl.when(pl.col("amount").is_not_null() & amount.is_null())
        .then(pl.format("amount: {} is not an amount with at most two decimals", pl.col("amount")))
        .alias("_parse_error"),
    )
    canonical = canonical.select([*[pl.col(c).cast(t) for c, t in empty_records().schema.items()], "_parse_error"])
    good, invalid = _validate(canonical, channel.channel_id, name, sha256)
    return ParsedFile(
        source_file=name,
        sha256=sha256,
        channel=channel.channel_id,
        layout=f"iso20022 {kind}",
        business_date=stated or business_date,
        rows=rows.height,
        records=good,
        invalid=invalid,
    )


def identify_layout(data: bytes, layouts: dict[str, dict[str, Any]]) -> str | None:
    """The layout whose signature the file's content carries, or None.

    XML is recognised by its ISO 20022 message namespace; delimited files by a header row with
    the layout's column names, or by a summary line and detail lines with the layout's prefixes.
    Only the first 64 KiB are looked at; decoding errors there are ignored (the parser is strict).
    """
    kind = message_kind(data) if data.lstrip()[:1] == b"<" else None
    for name, layout in layouts.items():
        if layout.get("format") == "iso20022":
            if kind in ("pain.002", "camt.054"):
                return name
            continue
        head = data[:65536]
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        text = head.decode(layout.get("encoding", "utf-8"), errors="ignore")
        lines = text.splitlines()[:200]
        delimiter = layout.get("delimiter", ",")
        if "header_contains" in layout:
            wanted = {normalise_header(column) for column in layout["header_contains"]}
            if any(wanted <= {normalise_header(cell) for cell in line.split(delimiter)} for line in lines):
                return name
        elif layout.get("summary_prefix") and layout.get("record_prefix"):
            summary = f"{layout['summary_prefix']}{delimiter}"
            detail = f"{layout['record_prefix']}{delimiter}"
            width = len(layout.get("columns", []))
            if (
                lines
                and lines[0].startswith(summary)
                and all(
                    line.startswith(detail) and line.count(delimiter) + 1 == width
                    for line in lines[1:6]
                    if line.strip()
                )
            ):
                return name
    return None
