"""Reading channel files, as declared by a layout, into canonical channel records.

A layout (see ``reconcile/channels.toml``) is data: encoding, how to find the header, which lines
are comments or a summary, column → canonical field with its parser, status and reason tables,
control totals and where the file states its business date. :func:`parse_channel_file` takes a
file's bytes and returns what the product makes of it — a :class:`ParsedFile` — without raising
for bad data: an unreadable or inconsistent file is *rejected* with a reason, a bad line becomes
an invalid row with its line number, raw text and the check it failed.

How a file is read: strict decoding to UTF-8 (GB18030 for Chinese files through
:mod:`reconcile.gb18030`, BOM stripped; a UTF-8 file is checked by polars' reader itself); polars'
CSV reader cuts it into whole lines and, for delimited layouts, into cells, row for row (no Python
loop over lines); the header is found by its column names; lines are classified (comment, summary,
detail, end of data) by prefix and field count; fixed-width lines are cut at byte offsets of the
layout's encoding; fields are parsed by expressions (amounts never through a float); control totals
are checked on every line as read; then lines of no interest (``record_kind = "skip"``) are set
aside and the rest validated with pandera. The worked layouts are in ``channels.toml``; the README
lists the keys.

A clean file takes shortcuts that give what the general path would (``tests/test_read_paths.py``):
no stripping when no cell can hold padding, no cleaning when every amount is plain yuan, error text
written only for rows that failed, duplicate keys compared only when their hashes meet, times
localised by one offset where the zone keeps one over the file's span.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pandera.polars as pa
import polars as pl

from reconcile.codes import FAILURE_WORDS, FailureReason
from reconcile.gb18030 import gb18030_to_marked_utf8, gb18030_to_utf8
from reconcile.iso20022 import ISO_REASONS, NotIso20022, message_kind, parse_iso20022
from reconcile.layouts import AmountField, ControlTotalSpec, DatetimeField, FieldSpec, LayoutSpec, MapField
from reconcile.masking import mask_numbers_in_text, mask_numbers_in_text_expr
from reconcile.money import YUAN_PATTERN, AmountError, fen_to_yuan_text, yuan_expr_to_fen, yuan_text_to_fen
from reconcile.settings import BUSINESS_TZ, ChannelConfig, Settings
from reconcile.text import CONTROL_CHARACTERS, format_text, printable_text, shortened
from reconcile.timezones import local_to_utc
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
#: A UTF-8 byte-order mark: the file is UTF-8, whatever its layout says.
BOM = b"\xef\xbb\xbf"
_E_NOTATION = r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$"


@dataclass(frozen=True)
class ControlTotal:
    """A control total the file states, and what its rows add up to."""

    applies_to: str
    stated_count: int | None  # None: the file states only the amount
    stated_fen: int
    counted: int
    summed_fen: int
    scope: str | None = None  # a total of some lines only: "终端号 T0001"

    @property
    def agrees(self) -> bool:
        return self.stated_count in (None, self.counted) and self.stated_fen == self.summed_fen


@dataclass(frozen=True)
class ParsedFile:
    """What one file holds.

    ``rejected_reason``: None for an accepted file; otherwise why the whole file is refused (and
    then ``records`` is empty). ``invalid``: bad lines of an accepted file, one row per line with
    ``line_no``, ``raw_line``, ``check`` and ``message``. ``rows``: data lines read. ``skipped``:
    why the file's lines are not counted (the same bytes arrived under another name or date).
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
    skipped: str | None = None

    @property
    def status(self) -> str:
        return "REJECTED" if self.rejected_reason else "SKIPPED" if self.skipped else "ACCEPTED"

    def skip(self, why: str) -> ParsedFile:
        """The same file, its lines set aside because these bytes are counted elsewhere."""
        return replace(self, records=self.records.clear(), invalid=self.invalid.clear(), skipped=why)


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


_NOT_SPACE = re.compile(rb"\S")


def to_utf8(data: bytes, encoding: str, mark: str | None = None) -> tuple[bytes, bool]:
    """The file's bytes as UTF-8: BOM stripped; a NUL byte means binary; other encodings decoded
    strictly and re-encoded. With ``mark``, a GB18030 text gets it after every two-byte character
    (so characters count bytes, as fixed-width layouts do); the second value says whether it did
    (not for an ASCII text, one holding the mark itself, or anything the C loop hands back).

    UTF-8 and pure-ASCII files are not copied: polars' reader checks UTF-8 as it reads the lines
    (:func:`split_lines`), which is where a file that is not UTF-8 after all is rejected.
    """
    if _NOT_SPACE.search(data) is None:
        raise FileRejected("the file is empty")
    if b"\x00" in data[:4096]:
        raise FileRejected("the file is binary, not text (it contains NUL bytes)")
    if data.startswith(BOM):
        data, encoding = data[3:], "utf-8"
    codec = _codec(encoding)
    if codec == "utf8" or data.isascii():
        return data, False
    try:
        if codec == "gb18030":
            marked = gb18030_to_marked_utf8(data, mark) if mark and mark.encode() not in data else None
            return (marked, True) if marked is not None else (gb18030_to_utf8(data), False)
        return data.decode(encoding).encode("utf-8"), False
    except UnicodeDecodeError as error:
        raise _undecodable(data, encoding, error) from None


def _codec(encoding: str) -> str:
    """An encoding's name compared: ``GB-18030`` and ``gb18030``, ``UTF_8`` and ``utf8`` alike."""
    return encoding.lower().replace("-", "").replace("_", "")


def _undecodable(data: bytes, encoding: str, error: UnicodeDecodeError) -> FileRejected:
    line = data.count(b"\n", 0, error.start) + 1
    return FileRejected(
        f"the file cannot be decoded as {encoding} at byte {error.start} (line {line}): is it the right encoding?"
    )


def parse_channel_file(
    name: str,
    data: bytes,
    sha256: str,
    channel: ChannelConfig,
    layout: LayoutSpec,
    business_date: dt.date | None,
) -> ParsedFile:
    """Parse one file of ``channel`` filed under ``business_date``; never raises for bad data.

    ``business_date`` None (``recon inspect``) accepts whatever date the file states.
    """
    try:
        return _parse(name, data, sha256, channel, layout, business_date)
    except FileRejected as rejection:  # a reason may quote the file: never a full card, ID or phone
        return ParsedFile(
            source_file=name,
            sha256=sha256,
            channel=channel.channel_id,
            layout=layout.name,
            business_date=None,
            rows=0,
            records=empty_records(),
            invalid=empty_invalid(),
            rejected_reason=mask_numbers_in_text(str(rejection)),
        )


def _parse(
    name: str,
    data: bytes,
    sha256: str,
    channel: ChannelConfig,
    layout: LayoutSpec,
    business_date: dt.date | None,
) -> ParsedFile:
    if layout.format == "iso20022":
        return _parse_iso20022(name, data, sha256, channel, business_date)
    fixed_width = layout.fixed_width
    utf8, marked = to_utf8(data, layout.encoding, _MARK if fixed_width else None)
    lines = split_lines(utf8)
    marked_lines = None  # fixed width: the lines with a marker after each two-byte character
    if marked:
        marked_lines, lines = lines, lines.str.replace_all(_MARK, "", literal=True)
    one_byte = fixed_width and not marked and utf8.isascii()
    delimiter = layout.delimiter or ""
    comment = layout.comment_prefix

    header_index, columns = _find_columns(lines.head(HEADER_SEARCH_LINES).to_list(), layout, delimiter, comment)
    cells = None if fixed_width else _cells_by_line(utf8, columns, delimiter)
    body, footer, summary = _classify_lines(lines, header_index, layout, cells)
    preamble = lines.head(max(header_index, 0)).to_list()
    file_date = _stated_business_date(layout, name, preamble, summary)
    if file_date is not None and business_date is not None and file_date != business_date:
        raise FileRejected(
            f"the file is for business date {file_date.isoformat()}, but it was filed under {business_date.isoformat()}"
        )

    plain: set[str] | None = None  # amount columns of plain yuan only, when already known
    if fixed_width:
        table, wrong_width = _fixed_width_table(body, columns, layout, marked_lines, one_byte)
    else:
        yuan = _yuan_columns(layout.fields)
        used = _used_columns(layout, columns)
        table, wrong_width, plain = _delimited_table(body, columns, delimiter, used, yuan, layout.value_prefix)
    canonical = _canonical(table, layout, channel.channel_id, name, sha256, file_date or business_date, plain)
    if "currency" in layout.fields:
        canonical = canonical.with_columns(
            _parse_error=pl.concat_str(
                "_parse_error", _currency_error(pl.col("_currency"), channel), separator="; ", ignore_nulls=True
            ).replace("", None)
        )
    canonical = canonical.drop("_currency")
    totals = _control_totals(layout, footer, summary, canonical, table, preamble)
    disagreeing = [total for total in totals if not total.agrees]
    if disagreeing:
        total = disagreeing[0]
        unreadable = ""
        if wrong_width.height:
            first_line, why = wrong_width["line_no"][0], wrong_width["_why"][0]
            unreadable = f"; {wrong_width.height} line(s) could not be read, the first at line {first_line} ({why})"
        unparsed = canonical.filter(pl.col("_parse_error").is_not_null())
        if unparsed.height:
            unreadable += f"; line {unparsed['line_no'][0]}: {unparsed['_parse_error'][0]}"
        raise FileRejected(
            f"control totals disagree ({total.applies_to}{', ' + total.scope if total.scope else ''}): the file states "
            + (f"{total.stated_count} rows and " if total.stated_count is not None else "")
            + f"{total.stated_fen} fen, its rows hold {total.counted} and {total.summed_fen} fen{unreadable}"
        )
    if table.height == 0 and wrong_width.height == 0 and not totals:
        raise FileRejected("the file has a header but no records and no control totals")

    notes: list[str] = []
    aside = canonical.filter(pl.col("record_kind") == SKIP_KIND)
    if aside.height:
        kinds = ", ".join(sorted(set(aside["_kind_raw"].fill_null("(blank)").to_list())))
        notes.append(f"{aside.height} line(s) are neither debits nor refunds ({kinds}) and were left aside")
        canonical = canonical.filter(pl.col("record_kind").ne_missing(SKIP_KIND))
    if "split_part" in layout.fields:
        canonical, combined = _combine_splits(canonical)
        if combined:
            notes.append(combined)
    width_invalid = wrong_width.select(
        pl.lit(name).alias("source_file"),
        pl.lit(sha256).alias("file_sha256"),
        pl.lit(channel.channel_id).alias("channel"),
        "line_no",
        "raw_line",
        pl.lit(None, pl.String).alias("reference"),
        pl.col("_check").alias("check"),
        pl.col("_why").alias("message"),
    )
    good, invalid = _validate(canonical.drop("_signed_fen", "_kind_raw", "_split"), channel.channel_id, name, sha256)
    good, invalid = _set_apart_long_lines(good, pl.concat([width_invalid, invalid]), lines)
    return ParsedFile(
        source_file=name,
        sha256=sha256,
        channel=channel.channel_id,
        layout=layout.name,
        business_date=file_date or business_date,
        rows=body.height,
        records=good,
        invalid=_quoting_little(invalid).sort("line_no"),
        control_totals=tuple(totals),
        notes=tuple(notes),
    )


#: The header row is looked for in the file's first lines only.
HEADER_SEARCH_LINES = 1000
#: No channel file has a line this long (their lines are a few hundred bytes): a longer one is
#: damage or an attack, invalid as a whole whatever its fields hold.
LONGEST_LINE = 64 << 10


def _set_apart_long_lines(
    good: pl.DataFrame, invalid: pl.DataFrame, lines: pl.Series
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Lines longer than :data:`LONGEST_LINE` are invalid lines saying so, whatever else was found."""
    lengths = lines.str.len_bytes()
    if not lengths.len() or lengths.max() <= LONGEST_LINE:  # type: ignore[operator]
        return good, invalid
    long = (
        pl.DataFrame({"line_no": pl.int_range(1, lines.len() + 1, eager=True).cast(pl.Int64), "_bytes": lengths})
        .filter(pl.col("_bytes") > LONGEST_LINE)
    )
    why = format_text("line too long: {} bytes (a line of a channel file is at most {})", pl.col("_bytes").cast(
        pl.String), pl.lit(str(LONGEST_LINE)))  # fmt: skip
    moved = good.join(long, on="line_no").select(
        "source_file", pl.col("file_sha256"), "channel", "line_no", "raw_line", pl.lit(None, pl.String).alias(
            "reference"), pl.lit("line_too_long").alias("check"), why.alias("message"))  # fmt: skip
    already = invalid.join(long, on="line_no", how="left").with_columns(
        check=pl.when(pl.col("_bytes").is_not_null()).then(pl.lit("line_too_long")).otherwise("check"),
        message=pl.when(pl.col("_bytes").is_not_null()).then(why).otherwise("message"),
    ).drop("_bytes")
    return good.join(long, on="line_no", how="anti"), pl.concat([already, moved.select(invalid.columns)])


def _quoting_little(invalid: pl.DataFrame) -> pl.DataFrame:
    """Invalid lines quote at most :data:`~reconcile.text.QUOTE_CHARS` of the line and its fields."""
    return invalid.with_columns(shortened("raw_line"), shortened("message"))


def split_lines(utf8: bytes) -> pl.Series:
    """The file's lines (CRLF or LF, blank ones kept so line numbers hold), split by polars' reader.

    The text is read as one column: the separator is a control character the text does not hold
    and quotes mean nothing, so every line comes back whole, and every byte is checked as UTF-8.
    """
    candidates = "\x1f\x1e\x1d\x1c\x07" + "".join(map(chr, [*range(0x01, 0x07), 0x08, *range(0x0E, 0x1C)]))
    separator = next((c for c in candidates if c.encode() not in utf8), None)
    if separator is None:  # a file holding every control character: split it the slow way
        try:
            text = utf8.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _undecodable(utf8, "utf-8", error) from None
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return pl.Series("raw_line", [line.removesuffix("\r") for line in lines], dtype=pl.String)
    try:
        frame = pl.read_csv(
            utf8, has_header=False, separator=separator, quote_char=None, infer_schema=False, new_columns=["raw_line"]
        )
    except pl.exceptions.ComputeError:  # not UTF-8 after all: say where, as Python's decoder sees it
        try:
            utf8.decode("utf-8")
        except UnicodeDecodeError as error:
            raise _undecodable(utf8, "utf-8", error) from None
        raise
    return frame.to_series().fill_null("")


def _cells_by_line(utf8: bytes, columns: list[str], delimiter: str) -> pl.DataFrame:
    """Every line cut at the delimiter by polars' reader (in parallel), one row per line, aligned
    with :func:`split_lines`: missing fields are null, extra ones dropped (whether a line has the
    layout's field count is told by its length, see :func:`_classify_lines`)."""
    return pl.read_csv(
        utf8,
        has_header=False,
        separator=delimiter,
        quote_char=None,
        schema={column: pl.String for column in columns},
        truncate_ragged_lines=True,
        missing_columns="insert",
    )


def _classify_lines(
    lines: pl.Series, header_index: int, layout: LayoutSpec, cells: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, list[str], list[str] | None]:
    """Data lines (``line_no``, ``raw_line``, and with ``cells`` each line's fields and whether it
    has the layout's field count, ``_fits``), footer lines and the summary line's cells.

    After the header: blank lines are ignored; comment lines are footer; a line matching the
    layout's ``end_marker`` ends the data (it and what follows are footer); the summary line is
    found by its prefix; with a ``record_prefix`` every other line must be a detail line.
    Only lines that do not look like a detail line at a glance (a prefix, and for delimited
    layouts the field count) are looked at closely.
    """
    delimiter = layout.delimiter or ""
    comment = layout.comment_prefix
    summary_prefix = layout.summary_prefix
    record_prefix = layout.record_prefix
    body = (
        lines.slice(header_index + 1)
        .to_frame("raw_line")
        .with_row_index("line_no", offset=header_index + 2)
        .with_columns(pl.col("line_no").cast(pl.Int64))
    )
    if cells is not None:  # the line's fields ride along, row for row
        body = pl.concat([body, cells.slice(header_index + 1)], how="horizontal")
    footer: list[str] = []
    if end_marker := layout.end_marker:
        ends = body.filter(pl.col("raw_line").str.contains(end_marker))["line_no"]
        if ends.len():
            footer = body.filter(pl.col("line_no") >= ends[0])["raw_line"].to_list()
            body = body.filter(pl.col("line_no") < ends[0])
    line = pl.col("raw_line")
    detail = pl.lit(True)
    if record_prefix:
        detail = detail & line.str.starts_with(record_prefix + delimiter)
    for prefix in (summary_prefix and summary_prefix + delimiter, comment):
        if prefix:
            detail = detail & ~line.str.starts_with(prefix)
    if cells is not None:
        # a line holds the layout's field count exactly when its length is that of its cells and
        # the delimiters between them (fewer fields: missing cells; more: the rest is cut off)
        width = pl.sum_horizontal([pl.col(c).str.len_bytes().fill_null(0) for c in cells.columns])
        body = body.with_columns(_fits=width + (len(cells.columns) - 1) == line.str.len_bytes())
    if cells is not None and len(cells.columns) > 1 and not delimiter.isspace():
        usual = detail & pl.col("_fits")  # with two fields or more, neither blank nor whitespace only
    else:
        usual = detail & (line.str.strip_chars() != "")
    body = body.with_columns(_usual=usual)
    odd = body.filter(~pl.col("_usual")).select("line_no", "raw_line")
    unusual = odd.height
    if unusual:
        odd = odd.filter(line.str.strip_chars() != "")  # blank lines are no line at all
    role = pl.lit("data")
    if record_prefix:
        role = pl.when(line.str.starts_with(record_prefix + delimiter)).then(role).otherwise(pl.lit("stray"))
    if summary_prefix:
        role = pl.when(line.str.starts_with(summary_prefix + delimiter)).then(pl.lit("summary")).otherwise(role)
    if comment:
        role = pl.when(line.str.starts_with(comment)).then(pl.lit("footer")).otherwise(role)
    odd = odd.with_columns(_role=role)
    summaries = odd.filter(pl.col("_role") == "summary")
    stray = odd.filter(pl.col("_role") == "stray")
    if summaries.height > 1 and (not stray.height or summaries["line_no"][1] < stray["line_no"][0]):
        raise FileRejected(f"line {summaries['line_no'][1]}: a second summary line")
    if stray.height:
        raise FileRejected(
            f"line {stray['line_no'][0]}: neither a summary nor a detail line: {stray['raw_line'][0][:60]!r}"
        )
    footer = odd.filter(pl.col("_role") == "footer")["raw_line"].to_list() + footer
    summary = _summary_cells(summaries["raw_line"][0], layout) if summaries.height else None
    if summary_prefix and summary is None:
        raise FileRejected("the summary line (batch totals) is missing: the file may be truncated")
    unusual_data = odd.filter(pl.col("_role") == "data")["line_no"]  # detail lines of another field count
    keep = pl.col("_usual") | pl.col("line_no").is_in(unusual_data.implode()) if unusual_data.len() else "_usual"
    data = _keep_rows(body, keep) if unusual else body
    return data.drop("_usual"), footer, summary


def _keep_rows(body: pl.DataFrame, keep: pl.Expr | str) -> pl.DataFrame:
    """``body.filter(keep)``; a slice, which copies nothing, when the rows left out all come before
    or after the rest (a summary line first, a footer last: the usual file)."""
    keep = pl.col(keep) if isinstance(keep, str) else keep
    left_out = body.select(pl.int_range(pl.len()).filter(~keep)).to_series().to_list()
    before = next((n for n, at in enumerate(left_out) if at != n), len(left_out))
    after = left_out[before:]
    if after == list(range(body.height - len(after), body.height)):
        return body.slice(before, body.height - len(left_out))
    return body.filter(keep)


def _summary_cells(line: str, layout: LayoutSpec) -> list[str]:
    if layout.summary_widths is None:
        return [_cell_value(cell, layout) for cell in line.split(layout.delimiter or "")]
    raw = line.encode(layout.encoding)
    cells, offset = [], 0
    for width in layout.summary_widths:
        piece = raw[offset : offset + width]
        offset += width
        try:
            cells.append(piece.decode(layout.encoding).strip(_CELL_PADDING))
        except UnicodeDecodeError:
            raise FileRejected("the summary line's fields do not fall on character boundaries") from None
    return cells


def _delimited_table(
    body: pl.DataFrame,
    columns: list[str],
    delimiter: str,
    used: list[str],
    yuan: list[str],
    value_prefix: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, set[str]]:
    """The lines with the layout's field count (their cells already cut, see :func:`_cells_by_line`,
    and counted, see :func:`_classify_lines`); lines with another count are set apart; and which of
    the ``yuan`` amount columns hold plain yuan only (:func:`_plain_yuan`). ``used``: the columns a
    field reads (only those are stripped of padding, and of the ``value_prefix`` every value of
    the layout carries, WeChat Pay's backtick)."""
    wrong = body.filter(~pl.col("_fits")).select(
        "line_no",
        "raw_line",
        pl.lit("field_count").alias("_check"),
        format_text(
            "{} fields where the layout has {}",
            pl.col("raw_line").str.count_matches(delimiter, literal=True) + 1,
            pl.lit(len(columns)),
        ).alias("_why"),
    )
    table = body.filter(pl.col("_fits")) if wrong.height else body
    if value_prefix and used:
        bare = [pl.col(c).str.strip_prefix(value_prefix) for c in used]
        table = table.with_columns([pl.when(cell.str.len_bytes() > 0).then(cell).alias(c) for c, cell in zip(
            used, bare, strict=True)])  # fmt: skip
    yuan = [column for column in yuan if column in table.columns]
    # one pass over the table for both questions (polars answers them side by side)
    padding = _padding_signs(delimiter)
    signs = padding + [_plain_yuan(column) for column in yuan]
    found = table.lazy().select(signs).collect().row(0, named=True) if table.height else {}
    if any(found.get(f"_pad{n}") for n in range(len(padding))):
        table = _strip_cells(table, used)
        found = table.lazy().select([_plain_yuan(column) for column in yuan]).collect().row(0, named=True)
    return table.drop("_fits"), wrong, {column for column in yuan if found.get(f"_plain:{column}")}


#: A character's width in bytes, by encoding: marked characters get one marker per extra byte.
_WIDE = {
    "gb18030": ((r"[\x{80}-\x{FFFF}]", 1), (r"[\x{10000}-\x{10FFFF}]", 3)),
    "utf8": ((r"[\x{80}-\x{7FF}]", 1), (r"[\x{800}-\x{FFFF}]", 2), (r"[\x{10000}-\x{10FFFF}]", 3)),
}
_MARK = "\x01"


def _fixed_width_table(
    body: pl.DataFrame,
    columns: list[str],
    layout: LayoutSpec,
    marked_lines: pl.Series | None = None,
    one_byte: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Cut each line at byte offsets of the layout's encoding, vectorised.

    Each character is followed by one marker per byte it takes beyond the first (GBK: a Chinese
    character is two bytes), so counting characters of the marked text counts bytes. A field
    boundary inside a double-byte character shows as a field starting with a marker.
    ``marked_lines``: the file's lines already marked (:func:`gb18030_to_marked_utf8`); otherwise
    the text is marked here. ``one_byte``: every character is one byte (an ASCII file), so nothing
    is marked and no field can start inside a character.
    """
    widths: list[int] = list(layout.widths or ())
    used = _used_columns(layout, columns)
    if one_byte:
        body = body.with_columns(_marked=pl.col("raw_line"))
    elif marked_lines is not None:
        body = body.with_columns(_marked=marked_lines.gather(body["line_no"] - 1))
    else:
        marked = pl.col("raw_line")
        for pattern, extra in _WIDE[_codec(layout.encoding).replace("gbk", "gb18030")]:
            marked = marked.str.replace_all(pattern, "${0}" + _MARK * extra)
        body = body.with_columns(_marked=marked)
    body = body.with_columns(_bytes=pl.col("_marked").str.len_chars())
    gap = layout.gap
    width = sum(widths) + gap * (len(widths) - 1)  # a gap after each field, the last one's optional
    fits = (pl.col("_bytes") == width) | ((pl.col("_bytes") == width + gap) if gap else pl.lit(False))
    wrong = body.filter(~fits).select(
        "line_no",
        "raw_line",
        pl.lit("line_width").alias("_check"),
        format_text("{} bytes where the layout has {}", pl.col("_bytes"), pl.lit(width)).alias("_why"),
    )
    if wrong.height:
        body = body.filter(fits)
    offsets = [sum(widths[:i]) + gap * i for i in range(len(widths))]
    if gap:  # the gaps hold spaces only: anything else there means the line is shifted
        gaps = [pl.col("_marked").str.slice(o + w, gap) for o, w in zip(offsets[:-1], widths[:-1], strict=True)]
        shifted_gap = body.select(pl.any_horizontal([g != " " * gap for g in gaps]).alias("_off"))["_off"]
        if shifted_gap.any():
            wrong = pl.concat([wrong, body.filter(shifted_gap).select(
                "line_no", "raw_line", pl.lit("field_gap").alias("_check"),
                pl.lit("a field runs into the space after it: the line is shifted").alias("_why"),
            )]).sort("line_no")  # fmt: skip
            body = body.filter(~shifted_gap)
    cut = [
        pl.col("_marked").str.slice(o, w).alias(c)
        for o, w, c in zip(offsets, widths, columns, strict=True)
        if c in used or not one_byte
    ]
    table = body.lazy().select("line_no", "raw_line", *cut).collect()
    broken = table.clear().select("line_no", "raw_line", pl.lit("").alias("_check"), pl.lit("").alias("_why"))
    if one_byte:  # nothing to unmark
        stripped = table.lazy().with_columns([pl.col(c).str.strip_chars(_CELL_PADDING) for c in used])
        blank_is_null = [pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in used]
        return stripped.with_columns(blank_is_null).collect(), wrong
    # a field that starts with a marker begins in the middle of a character
    shifted = table.lazy().select([pl.col(c).str.starts_with(_MARK).any().alias(c) for c in columns[1:]]).collect()
    if any(shifted.row(0)):
        straddle = pl.any_horizontal([pl.col(c).str.starts_with(_MARK) for c in columns[1:]])
        broken = table.filter(straddle).select(
            "line_no",
            "raw_line",
            pl.lit("field_width").alias("_check"),
            pl.lit("a double-byte character straddles two fields: the line is shifted").alias("_why"),
        )
        table = table.filter(~straddle)
    table = (
        table.lazy()
        .with_columns([pl.col(c).str.replace_all(_MARK, "", literal=True).str.strip_chars(_CELL_PADDING) for c in used])
        .with_columns([pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in used])
        .collect()
    )
    return table, pl.concat([wrong, broken]).sort("line_no")


def _used_columns(layout: LayoutSpec, columns: list[str]) -> list[str]:
    used = layout.used_columns()
    return [column for column in columns if column in used]


def _cell_value(cell: str, layout: LayoutSpec) -> str:
    """A summary cell without padding or the layout's value prefix."""
    cell = cell.strip(_CELL_PADDING)
    return cell.removeprefix(layout.value_prefix) if layout.value_prefix else cell


def _strip_cells(table: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Padding and TABs stripped, cells left empty null; only columns that held padding are rewritten."""
    if not columns or table.height == 0:
        return table
    stripped = table.lazy().select([pl.col(c).str.strip_chars(_CELL_PADDING) for c in columns]).collect()
    rewritten = []
    for column in columns:
        length = stripped[column].str.len_bytes()
        if (length != table[column].str.len_bytes()).any():
            rewritten.append(stripped[column] if length.min() else pl.when(length > 0).then(stripped[column]))
    return table.with_columns(rewritten) if rewritten else table


def _padding_signs(delimiter: str) -> list[pl.Expr]:
    """Whether a cell of these lines could start or end with padding, as separate signs (``_pad0``…):
    a padding character other than the space anywhere, or a space beside a delimiter or at either
    end of a line."""
    line = pl.col("raw_line")
    others = "[" + "".join(c for c in _CELL_PADDING if c != " ") + "]"
    signs = [
        line.str.contains(others),
        line.str.contains(f"{pl.escape_regex(delimiter)} | {pl.escape_regex(delimiter)}"),
        line.str.starts_with(" ") | line.str.ends_with(" "),
    ]
    return [sign.any().alias(f"_pad{n}") for n, sign in enumerate(signs)]


def _find_columns(
    lines: list[str], layout: LayoutSpec, delimiter: str, comment: str | None
) -> tuple[int, list[str]]:
    """The header's line index (-1 when the layout has fixed columns) and the column names.

    Blank and duplicate header cells get positional names (``_col3``) so every column is addressable.
    """
    if layout.columns is not None:
        return -1, list(layout.columns)
    wanted = [normalise_header(name) for name in layout.header_contains or ()]
    for index, line in enumerate(lines):
        if comment and line.startswith(comment):
            continue
        cells = [normalise_header(cell) for cell in line.split(delimiter)]
        if all(name in cells for name in wanted):
            seen: set[str] = set()
            named = []
            for position, cell in enumerate(cells):
                named.append(cell if cell and cell not in seen else f"_col{position}")
                seen.add(cell)
            return index, named
    raise FileRejected(f"no header row with the columns {', '.join(wanted)}: is this the right layout?")


def _stated_business_date(
    layout: LayoutSpec, name: str, preamble: list[str], summary: list[str] | None
) -> dt.date | None:
    """The business date the file states: in its preamble, its summary line or its file name."""
    spec = layout.business_date
    if spec is None:
        return None
    text: str | None = None
    if spec.source in ("preamble", "file_name") and spec.pattern is not None:
        for line in preamble if spec.source == "preamble" else [name]:
            match = re.search(spec.pattern, line)
            if match:
                text = match.group("date")
                break
    elif spec.source == "summary" and summary is not None and spec.field is not None and len(summary) > spec.field:
        text = summary[spec.field]
    if text is None:
        if not spec.required:
            return None
        raise FileRejected("the file does not state its business date where the layout says it does")
    try:
        return dt.datetime.strptime(text, spec.format).date()
    except ValueError:
        raise FileRejected(f"the stated business date {text!r} is not a date") from None


#: ``record_kind`` of lines that are neither debits nor refunds (withdrawals, fees, transfers):
#: they count in control totals, then are set aside.
SKIP_KIND = "skip"


def _amount(source: pl.Expr, spec: AmountField, plain: bool = False) -> pl.Expr:
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


def _yuan_columns(fields: dict[str, FieldSpec]) -> list[str]:
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


def _plain_yuan(column: str) -> pl.Expr:
    """Whether every text of the column is plain yuan (``1234.50``), as most files' amounts are:
    those skip the cleaning of currency signs and separators."""
    return pl.col(column).str.contains(YUAN_PATTERN).all().alias(f"_plain:{column}")


def _plain_yuan_columns(table: pl.DataFrame, fields: dict[str, FieldSpec]) -> set[str]:
    columns = _yuan_columns(fields)
    if not columns or table.height == 0:
        return set()
    found = table.lazy().select([_plain_yuan(column) for column in columns]).collect().row(0, named=True)
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
            _amount(income.fill_null("0"), spec, spec.income in plain)
            - _amount(expense.fill_null("0"), spec, spec.expense in plain).abs()
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
        parsed = _amount(source, spec)
        message = format_text("{}: {} is not an amount in yuan", pl.lit(target), source)
    elif isinstance(spec, AmountField):
        parsed = _amount(source, spec, spec.column in plain and spec.fallback is None)
        if spec.sign_from is not None:  # the sign is written in a column of its own
            signs = {text: -1 if sign == "-" else 1 for text, sign in spec.sign_from.map.items()}
            factor = pl.col(spec.sign_from.column).replace_strict(signs, default=None, return_dtype=pl.Int64)
            parsed = parsed.abs() * factor
        what = "an integer number of fen" if spec.amount == "fen" else "an amount in yuan"
        message = format_text("{}: {} is not {}", pl.lit(target), source, pl.lit(what))
    elif isinstance(spec, DatetimeField):
        parsed = _local_time(source, spec, day)
        message = format_text("{}: {} is not a time of the form {}", pl.lit(target), source, pl.lit(spec.datetime))
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
        return pl.when(this_year.dt.date() > pl.lit(day)).then(last_year).otherwise(this_year)
    return source.str.to_datetime(fmt, strict=False)


def _canonical(
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
                pl.when(pl.col("record_kind") == kind).then(pl.col(target)).alias(target)
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
    return frame.select(
        [*[pl.col(name).cast(dtype) for name, dtype in schema.items()], "_parse_error", "_signed_fen", "_kind_raw",
         currency.alias("_currency"), split.alias("_split")]
    )  # fmt: skip


def _combine_splits(frame: pl.DataFrame) -> tuple[pl.DataFrame, str | None]:
    """Split lines (分账) of one payment read as one record: lines of the same transaction, kind
    and refund number whose part numbers all differ become one record with their amounts added
    (its line number and text the first part's). A part number seen twice is a repeated line, not
    a split: those lines stay apart and the duplicate check names them; so do unreadable lines."""
    key = pl.concat_str(
        [pl.col(c).fill_null("") for c in ("channel_txn_id", "record_kind", "refund_request_no")], separator="\x1f"
    )
    parts = frame.with_columns(_key=key).filter(pl.col("_split").is_not_null() & pl.col("_parse_error").is_null())
    groups = parts.group_by("_key").agg(pl.len().alias("_n"), pl.col("_split").n_unique().alias("_parts"))
    whole = groups.filter((pl.col("_n") > 1) & (pl.col("_n") == pl.col("_parts")))
    if not whole.height:
        return frame, None
    chosen = parts.join(whole.select("_key"), on="_key", how="semi").sort("line_no")
    merged = chosen.group_by("_key", maintain_order=True).agg(
        *[pl.col(c).first() for c in frame.columns if c not in ("amount_fen", "_signed_fen")],
        pl.col("amount_fen").sum(),
        pl.col("_signed_fen").sum(),
    )
    rest = frame.join(chosen.select("line_no"), on="line_no", how="anti")
    combined = pl.concat([rest, merged.select(frame.columns)]).sort("line_no")
    note = f"{merged.height} payment(s) arrived as {chosen.height} split lines (分账) and were read as one each"
    return combined, note


def _currency_error(stated: pl.Expr, channel: ChannelConfig) -> pl.Expr:
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


def _control_totals(
    layout: LayoutSpec,
    footer: list[str],
    summary: list[str] | None,
    canonical: pl.DataFrame,
    table: pl.DataFrame,
    preamble: list[str] | None = None,
) -> list[ControlTotal]:
    """Control totals checked on the rows as read, before any row is dropped (``table``: the
    lines' cells, row for row with ``canonical``, for a total that sums a column of its own;
    ``preamble``: the lines before the header, where a summary section is)."""
    totals = []
    for spec in layout.control_totals:
        if spec.source == "section":
            totals.extend(_section_totals(spec, layout, preamble or [], canonical, table))
            continue
        stated = _stated_totals(spec, layout, footer, summary)
        if stated is None:  # a total this bill type does not state
            continue
        count_text, amount_text = stated
        try:
            stated_count = None if count_text is None else _count(count_text)
            stated_fen = abs(int(amount_text) if spec.amount == "fen" else yuan_text_to_fen(amount_text))
        except (ValueError, AmountError):
            raise FileRejected(f"the control totals {count_text!r} / {amount_text!r} are not numbers") from None
        rows = canonical.select("record_kind", "status", "_signed_fen")
        if spec.sums is not None:  # the stated amount adds up a column of its own (WeChat's 应结订单金额)
            if spec.sums not in table.columns:
                raise FileRejected(f"the header lacks the column {spec.sums} the control totals add up")
            rows = rows.with_columns(_summed=table.select(yuan_expr_to_fen(pl.col(spec.sums))).to_series())
        if spec.applies_to in ("income", "expense"):
            rows = rows.filter(
                (pl.col("_signed_fen") > 0) if spec.applies_to == "income" else (pl.col("_signed_fen") < 0)
            )
        elif spec.applies_to in ("debit", "refund"):
            rows = rows.filter(pl.col("record_kind") == spec.applies_to)
        elif spec.applies_to == "success":
            rows = rows.filter(pl.col("status") == "SUCCESS")
        summed = rows["_summed" if spec.sums is not None else "_signed_fen"].fill_null(0).abs().sum()
        totals.append(
            ControlTotal(
                applies_to=spec.applies_to,
                stated_count=stated_count,
                stated_fen=stated_fen,
                counted=rows.height,
                summed_fen=int(summed),
            )
        )
    return totals


def _stated_totals(
    spec: ControlTotalSpec, layout: LayoutSpec, footer: list[str], summary: list[str] | None
) -> tuple[str | None, str] | None:
    """The count (None when the file states none) and amount texts a control total states; None
    for a total the layout does not require and the file does not state."""
    if spec.source == "footer":
        found = [m for line in footer if (m := re.search(spec.pattern or "", line))]
        if not found:
            raise FileRejected("the footer with the control totals is missing: the file may be truncated")
        return found[0].group("count"), found[0].group("amount")
    if spec.source == "summary_table":
        named = _summary_table(footer, layout, spec)
        count_text = None if spec.count_column is None else named.get(spec.count_column)
        amount_text = named.get(spec.amount_column or "")
        if amount_text is None or (spec.count_column is not None and count_text is None):
            if not spec.required:
                return None
            raise FileRejected(f"the summary table lacks {spec.count_column} or {spec.amount_column}")
        return count_text, amount_text
    assert summary is not None and spec.count_field is not None and spec.amount_field is not None
    try:
        return summary[spec.count_field], summary[spec.amount_field]
    except IndexError:
        raise FileRejected("the summary line has too few fields") from None


def _section_totals(
    spec: ControlTotalSpec, layout: LayoutSpec, preamble: list[str], canonical: pl.DataFrame, table: pl.DataFrame
) -> list[ControlTotal]:
    """The totals of a summary section: one per row (the details of its ``per_column`` value and
    ``per_kind``), then all rows against all details."""
    rows = _section_rows(preamble, layout, spec)
    kinds = layout.fields.get("record_kind")
    lines = canonical.select("record_kind", "_signed_fen")
    if spec.per_column is not None:
        if spec.per_column not in table.columns:
            raise FileRejected(f"the header lacks the column {spec.per_column} the summary section totals by")
        lines = lines.with_columns(_per=table[spec.per_column])
    totals = []
    stated_count = stated_fen = 0
    for row in rows:
        try:
            count, fen = _count(row[spec.count_column or ""]), abs(_stated_fen(row[spec.amount_column or ""], spec))
        except (ValueError, AmountError):
            raise FileRejected(f"the summary section's totals {row!r} are not numbers") from None
        stated_count, stated_fen = stated_count + count, stated_fen + fen
        mine, applies_to, scope = lines, "all", []
        if spec.per_column is not None:
            value = row.get(spec.per_column)
            mine, scope = mine.filter(pl.col("_per") == value), [f"{spec.per_column} {value}"]
        if spec.per_kind is not None and isinstance(kinds, MapField):
            text = row.get(spec.per_kind, "")
            kind = kinds.map.get(text, kinds.default)
            if kind is None:
                raise FileRejected(f"the summary section's {spec.per_kind} {text!r} is not a kind the layout knows")
            mine, applies_to = mine.filter(pl.col("record_kind") == kind), kind
        summed = int(mine["_signed_fen"].fill_null(0).abs().sum())
        totals.append(ControlTotal(applies_to, count, fen, mine.height, summed, scope=", ".join(scope) or None))
    every = int(lines["_signed_fen"].fill_null(0).abs().sum())
    totals.append(ControlTotal(spec.applies_to, stated_count, stated_fen, lines.height, every, scope="汇总"))
    return totals


def _stated_fen(text: str, spec: ControlTotalSpec) -> int:
    return int(text) if spec.amount == "fen" else yuan_text_to_fen(text)


def _section_rows(preamble: list[str], layout: LayoutSpec, spec: ControlTotalSpec) -> list[dict[str, str]]:
    """The summary section's rows (after its header line, until a blank line or a line of another
    field count) as name → text; rejected when the section is missing or empty."""
    delimiter = layout.delimiter or ","
    wanted = [normalise_header(name) for name in spec.section_contains or ()]
    for at, line in enumerate(preamble):
        names = [normalise_header(cell) for cell in line.split(delimiter)]
        if not all(name in names for name in wanted):
            continue
        rows = []
        for following in preamble[at + 1 :]:
            cells = following.split(delimiter)
            if not following.strip() or len(cells) != len(names):
                break
            rows.append(dict(zip(names, [_cell_value(cell, layout) for cell in cells], strict=True)))
        if not rows:
            raise FileRejected("the summary section has a header but no rows: the file may be truncated")
        return rows
    raise FileRejected(f"no summary section with the columns {', '.join(wanted)}: the file may be truncated")


def _summary_table(footer: list[str], layout: LayoutSpec, spec: ControlTotalSpec) -> dict[str, str]:
    """The trailing summary table (the line that ends the data, naming its cells, then one line of
    values) as name → value text; rejected when it is missing, as in a file cut short."""
    delimiter = layout.delimiter or ","
    marker = re.compile(layout.end_marker or "^$")
    for at, line in enumerate(footer):
        if not marker.search(line):
            continue
        names = [normalise_header(cell) for cell in line.split(delimiter)]
        if at + 1 >= len(footer) or not footer[at + 1].strip():
            raise FileRejected("the summary table has a header but no values: the file may be truncated")
        values = [_cell_value(cell, layout) for cell in footer[at + 1].split(delimiter)]
        if len(values) != len(names):
            raise FileRejected(f"the summary table has {len(names)} names but {len(values)} values")
        return dict(zip(names, values, strict=True))
    raise FileRejected("the summary table with the control totals is missing: the file may be truncated")


def _count(text: str) -> int:
    """A stated count, ``20`` or ``20.0`` (WeChat's fund-flow bill writes counts with a decimal)."""
    text = text.strip().replace(",", "")
    if re.fullmatch(r"\d+(\.0+)?", text) is None:
        raise ValueError(text)
    return int(text.split(".")[0])


def _validate(canonical: pl.DataFrame, channel: str, name: str, sha: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split rows into valid records and invalid rows with the check each failed."""
    checks = canonical.with_row_index("_row")
    ids = ("channel_txn_id", "reference", "refund_request_no")
    in_e_notation = pl.any_horizontal([pl.col(c).str.contains(_E_NOTATION).fill_null(False) for c in ids])
    unread = checks.filter(pl.col("_parse_error").is_not_null() | in_e_notation)
    failures = [
        unread.select(
            "_row",
            pl.lit("parse").alias("check"),
            pl.coalesce(
                "_parse_error",
                *[
                    pl.when(pl.col(c).str.contains(_E_NOTATION)).then(
                        format_text(c + ": {} is in E-notation (spreadsheet damage), not an id", pl.col(c))
                    )
                    for c in ids
                ],
            ).alias("message"),
        )
    ]
    parsed_ok = checks.join(unread.select("_row"), on="_row", how="anti") if unread.height else checks
    duplicate = _repeated(parsed_ok, ["channel_txn_id", "record_kind", "refund_request_no"])
    failures.append(
        duplicate.select(
            "_row",
            pl.lit("duplicate_record").alias("check"),
            format_text("transaction {} appears more than once in the file", pl.col("channel_txn_id")).alias("message"),
        )
    )
    candidates = parsed_ok.join(duplicate.select("_row"), on="_row", how="anti") if duplicate.height else parsed_ok
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
                format_text("{}: {} failed {}", pl.col("column"), pl.col("failure_case"), pl.col("check")).alias(
                    "message"
                ),
            )
        )
    failures = [frame for frame in failures if frame.height]
    if not failures:  # the usual case: every row passed
        return checks.drop("_row", "_parse_error"), empty_invalid()
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
        # a reference that failed its checks is no reference: it may be too long or hold control bytes
        pl.when(pl.col("reference").str.contains(CONTROL_CHARACTERS) | (pl.col("reference").str.len_chars() > 64))
        .then(None)
        .otherwise(pl.col("reference"))
        .alias("reference"),
        "check",
        mask_numbers_in_text_expr(printable_text("message")).alias("message"),
    )
    good = checks.join(failed.select("_row"), on="_row", how="anti").drop("_row", "_parse_error")
    return good, invalid


def _repeated(frame: pl.DataFrame, key: list[str]) -> pl.DataFrame:
    """The rows whose ``key`` an earlier row already had.

    Hashes first: when no two rows' hashes of the key's first column agree, or else of the whole
    key (the usual file), no key repeats and nothing more is done; otherwise the keys themselves
    are compared.
    """
    if frame.select(pl.col(key[0]).hash()).to_series().n_unique() == frame.height:
        return frame.clear()
    hashed = frame.select(
        pl.reduce(lambda a, b: a ^ b, [pl.col(c).hash(seed=n) for n, c in enumerate(key)])
    ).to_series()
    if hashed.n_unique() == frame.height:
        return frame.clear()
    return frame.filter(~pl.struct(key).is_first_distinct())


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
        pl.concat_str(
            pl.when(pl.col("amount").is_null())
            .then(pl.lit("amount: the transaction states none (an entry's total is never split among its details)"))
            .when(amount.is_null())
            .then(format_text("amount: {} is not an amount with at most two decimals", pl.col("amount"))),
            _currency_error(pl.col("currency"), channel),
            separator="; ",
            ignore_nulls=True,
        )
        .replace("", None)
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
        invalid=_quoting_little(invalid),
    )


def set_aside_restated(parsed: list[ParsedFile], layouts: dict[str, LayoutSpec]) -> list[ParsedFile]:
    """Lines of a bill that restate another accepted bill of the same channel are set aside.

    A layout's ``restates`` names the bill it repeats (Alipay's account bill repeats the business
    bill's payments and refunds). A line is the same money when kind, transaction and amount agree
    (paired one to one, so two equal refunds of one trade are two). Lines only the repeating bill
    has (a payment the business bill lacks) stay.
    """
    key = ["record_kind", "channel_txn_id", "amount_fen"]
    result = []
    for item in parsed:
        other = spec.restates if (spec := layouts.get(item.layout)) is not None else None
        primary = [p for p in parsed if p.channel == item.channel and p.layout == other and p.rejected_reason is None]
        if item.rejected_reason is not None or not primary:
            result.append(item)
            continue
        told = pl.concat([p.records.select(key) for p in primary]).with_columns(_n=pl.int_range(pl.len()).over(key))
        mine = item.records.with_columns(_n=pl.int_range(pl.len()).over(key))
        kept = mine.join(told, on=[*key, "_n"], how="anti").drop("_n")
        note = (
            f"{item.records.height - kept.height} line(s) restate {', '.join(p.source_file for p in primary)} "
            f"and were set aside (counted there once); {kept.height} line(s) only this file has"
        )
        result.append(replace(item, records=kept, notes=(*item.notes, note)))
    return result


def set_aside_evidence(parsed: list[ParsedFile], settings: Settings) -> list[ParsedFile]:
    """Files of a channel that does not settle (a borrower's own export) are read and checked, and
    their lines kept out of matching: they are evidence for a reviewer, never money."""
    result = []
    for item in parsed:
        channel = settings.channels.get(item.channel)
        if channel is None or channel.settles or item.rejected_reason is not None:
            result.append(item)
            continue
        held = item.records
        note = (
            f"{held.height} line(s) ({fen_to_yuan_text(int(held['amount_fen'].sum()))} yuan) read as evidence: "
            f"channel {item.channel} does not settle, so they move no money"
        )
        result.append(replace(item, records=held.clear(), notes=(*item.notes, note)))
    return result


def _looks_fixed_width(lines: list[str], layout: LayoutSpec) -> bool:
    """A summary line of the layout's widths (when it has one), then mostly detail lines of its widths."""
    encoding = layout.encoding
    lines = [line for line in lines if line.strip()]
    if layout.summary_prefix:
        if not lines or not lines[0].startswith(layout.summary_prefix):
            return False
        if len(lines[0].encode(encoding, errors="replace")) != sum(layout.summary_widths or ()):
            return False
        lines = lines[1:]
    details = lines[:5]
    widths = layout.widths or ()
    width = sum(widths) + layout.gap * (len(widths) - 1)
    fitting = [
        len(line.encode(encoding, errors="replace")) in (width, width + layout.gap)
        and line.startswith(layout.record_prefix or "")
        and re.match(layout.line_pattern or "", line) is not None
        for line in details
    ]
    return sum(fitting) * 2 > len(fitting)  # most lines fit: a damaged line is the parser's to report


def identify_layout(data: bytes, layouts: dict[str, LayoutSpec]) -> str | None:
    """The layout whose signature the file's content carries, or None.

    XML is recognised by its ISO 20022 message namespace; delimited files by a header row with
    the layout's column names, or by a summary line and detail lines with the layout's prefixes.
    Only the first 64 KiB are looked at; decoding errors there are ignored (the parser is strict).
    """
    kind = message_kind(data) if data.lstrip()[:1] == b"<" else None
    for name, layout in layouts.items():
        if layout.format == "iso20022":
            if kind in ("pain.002", "camt.054"):
                return name
            continue
        head = data[:65536]
        if head.startswith(b"\xef\xbb\xbf"):
            head = head[3:]
        text = head.decode(layout.encoding, errors="ignore")
        lines = text.splitlines()[:200]
        delimiter = layout.delimiter or ","
        if layout.header_contains is not None:
            wanted = {normalise_header(column) for column in layout.header_contains}
            if any(wanted <= {normalise_header(cell) for cell in line.split(delimiter)} for line in lines):
                return name
        elif layout.fixed_width:
            if _looks_fixed_width(lines, layout):
                return name
        elif layout.summary_prefix and layout.record_prefix:
            summary = f"{layout.summary_prefix}{delimiter}"
            detail = f"{layout.record_prefix}{delimiter}"
            width = len(layout.columns or ())
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
