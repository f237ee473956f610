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
from dataclasses import dataclass, field, replace

import pandera.polars as pa
import polars as pl

from reconcile.codes import FailureReason
from reconcile.iso20022 import ISO_REASONS, NotIso20022, parse_iso20022
from reconcile.layouts import LayoutSpec
from reconcile.masking import mask_numbers_in_text, mask_numbers_in_text_expr
from reconcile.money import fen_to_yuan_text, yuan_expr_to_fen
from reconcile.reader.cells import MARK, cells_by_line, delimited_table, fixed_width_table, used_columns
from reconcile.reader.decoding import BOM, FileRejected, to_utf8
from reconcile.reader.fields import (
    CANONICAL_TEXT_FIELDS,
    SKIP_KIND,
    canonical_records,
    combine_splits,
    currency_error,
    empty_records,
    yuan_columns,
)
from reconcile.reader.lines import (
    HEADER_SEARCH_LINES,
    LONGEST_LINE,
    classify_lines,
    find_columns,
    normalise_header,
    set_apart_long_lines,
    split_lines,
    stated_business_date,
)
from reconcile.reader.recognition import identify_layout
from reconcile.reader.totals import ControlTotal, control_totals_of
from reconcile.settings import ChannelConfig, Settings
from reconcile.text import CONTROL_CHARACTERS, format_text, printable_text, shortened
from schemas.frames import ChannelRecordFrame

#: What other modules take from the reader through this module.
__all__ = [
    "BOM", "CANONICAL_TEXT_FIELDS", "HEADER_SEARCH_LINES", "LONGEST_LINE", "SKIP_KIND", "ControlTotal", "FileRejected",
    "ParsedFile", "empty_invalid", "empty_records", "identify_layout", "normalise_header", "parse_channel_file",
    "set_aside_evidence", "set_aside_restated", "split_lines",
]  # fmt: skip


_E_NOTATION = r"^[+-]?\d+(\.\d+)?[eE][+-]?\d+$"


@dataclass(frozen=True)
class ParsedFile:
    """What one file holds.

    ``rejected_reason``: None for an accepted file; otherwise why the whole file is refused (and
    then ``records`` is empty). ``invalid``: bad lines of an accepted file, one row per line with
    ``line_no``, ``raw_line``, ``check`` and ``message``. ``rows``: data lines read. ``skipped``:
    why the file's lines are not counted (the same bytes arrived under another name or date).
    ``statement_lines``: a bank statement of the collection account (channel ``statement``) holds
    its lines here (:class:`schemas.funds.StatementLineFrame`), and no records.
    ``settlement_lines``: the channel's own word on its settlement, among the lines set aside (a
    layout's ``settlement_kinds``): ``line_no``, ``settlement_kind`` (fee, payout),
    ``channel_txn_id``, ``amount_fen`` (positive), ``settled_at``. ``merchant_id``: the merchant
    id the file names (a layout's ``merchant_from``), or None.
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
    statement_lines: pl.DataFrame | None = None
    settlement_lines: pl.DataFrame | None = None
    merchant_id: str | None = None

    @property
    def status(self) -> str:
        return "REJECTED" if self.rejected_reason else "SKIPPED" if self.skipped else "ACCEPTED"

    def records_let_go(self) -> ParsedFile:
        """The same file once its records live on in the date's outcomes (which keep what the write
        needs of them): the frame is let go, so the night does not hold the day twice."""
        return replace(self, records=self.records.clear())

    def skip(self, why: str) -> ParsedFile:
        """The same file, its lines set aside because these bytes are counted elsewhere."""
        lines = None if self.statement_lines is None else self.statement_lines.clear()
        said = None if self.settlement_lines is None else self.settlement_lines.clear()
        return replace(self, records=self.records.clear(), invalid=self.invalid.clear(), skipped=why,
                       statement_lines=lines, settlement_lines=said)  # fmt: skip


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
    utf8, marked = to_utf8(data, layout.encoding, MARK if fixed_width else None)
    lines = split_lines(utf8)
    marked_lines = None  # fixed width: the lines with a marker after each two-byte character
    if marked:
        marked_lines, lines = lines, lines.str.replace_all(MARK, "", literal=True)
    one_byte = fixed_width and not marked and utf8.isascii()
    delimiter = layout.delimiter or ""
    comment = layout.comment_prefix

    header_index, columns = find_columns(lines.head(HEADER_SEARCH_LINES).to_list(), layout, delimiter, comment)
    cells = None if fixed_width else cells_by_line(utf8, columns, delimiter)
    body, footer, summary = classify_lines(lines, header_index, layout, cells)
    preamble = lines.head(max(header_index, 0)).to_list()
    file_date = stated_business_date(layout, name, preamble, summary)
    if file_date is not None and business_date is not None and file_date != business_date:
        raise FileRejected(
            f"the file is for business date {file_date.isoformat()}, but it was filed under {business_date.isoformat()}"
        )

    plain: set[str] | None = None  # amount columns of plain yuan only, when already known
    if fixed_width:
        table, wrong_width = fixed_width_table(body, columns, layout, marked_lines, one_byte)
    else:
        yuan = yuan_columns(layout.fields)
        used = used_columns(layout, columns)
        table, wrong_width, plain = delimited_table(body, columns, delimiter, used, yuan, layout.value_prefix)
    canonical = canonical_records(table, layout, channel.channel_id, name, sha256, file_date or business_date, plain)
    if "currency" in layout.fields:
        canonical = canonical.with_columns(
            _parse_error=pl.concat_str(
                "_parse_error", currency_error(pl.col("_currency"), channel), separator="; ", ignore_nulls=True
            ).replace("", None)
        )
    canonical = canonical.drop("_currency")
    totals = control_totals_of(layout, footer, summary, canonical, table, preamble)
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
    settlement = settlement_lines_of(aside, layout)
    if aside.height:
        kinds = ", ".join(sorted(set(aside["_kind_raw"].fill_null("(blank)").to_list())))
        notes.append(f"{aside.height} line(s) are neither debits nor refunds ({kinds}) and were left aside")
        canonical = canonical.filter(pl.col("record_kind").ne_missing(SKIP_KIND))
    if "split_part" in layout.fields:
        canonical, combined = combine_splits(canonical)
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
    settlement = _with_stated_sums(settlement, canonical, layout, totals)
    good, invalid = _validate(
        canonical.drop("_signed_fen", "_kind_raw", "_split", "_fee", "_net"), channel.channel_id, name, sha256
    )
    good, invalid = set_apart_long_lines(good, pl.concat([width_invalid, invalid]), lines)
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
        settlement_lines=settlement,
        merchant_id=named_merchant(layout, name, preamble),
    )


def named_merchant(layout: LayoutSpec, name: str, preamble: list[str]) -> str | None:
    """The merchant id the file names where its layout says (its name or its preamble), or None."""
    spec = layout.merchant_from
    if spec is None:
        return None
    for text in [name] if spec.source == "file_name" else preamble:
        found = re.search(spec.pattern, text)
        if found and found.group("merchant"):
            return found.group("merchant")
    return None


SETTLEMENT_LINE_SCHEMA: dict[str, pl.DataType] = {
    "line_no": pl.Int64(), "settlement_kind": pl.String(), "channel_txn_id": pl.String(), "amount_fen": pl.Int64(),
    "settled_at": pl.Datetime("us", "UTC"),
}  # fmt: skip


def settlement_lines_of(aside: pl.DataFrame, layout: LayoutSpec) -> pl.DataFrame | None:
    """The lines set aside that the layout says are the channel's fee or payout (readable ones)."""
    if not layout.settlement_kinds:
        return None
    said = aside.filter(pl.col("_kind_raw").is_in(list(layout.settlement_kinds)) & pl.col("_parse_error").is_null())
    return said.select(
        "line_no",
        settlement_kind=pl.col("_kind_raw").replace_strict(layout.settlement_kinds, return_dtype=pl.String),
        channel_txn_id="channel_txn_id", amount_fen=pl.col("amount_fen").abs(), settled_at="settled_at",
    ).cast(SETTLEMENT_LINE_SCHEMA)  # type: ignore[arg-type]  # fmt: skip


def _with_stated_sums(
    said: pl.DataFrame | None, canonical: pl.DataFrame, layout: LayoutSpec, totals: list[ControlTotal]
) -> pl.DataFrame | None:
    """What the file states of the day as a whole, as settlement lines of line 0 (the file's, not a
    line's): the fees of its lines summed (``fee_fen``: UnionPay's 商户手续费), what it settles net of
    them (``settled_net_fen``: 清算净额), and what it says it collected (a ``success`` control total:
    a bank's batch summary)."""
    readable = canonical.filter(pl.col("_parse_error").is_null())
    stated: list[tuple[str, int]] = []
    for kind, column, target in (("fee", "_fee", "fee_fen"), ("net", "_net", "settled_net_fen")):
        if target in layout.fields and readable[column].is_not_null().any():
            stated.append((kind, int(readable[column].sum())))
    stated += [("collected", total.stated_fen) for total in totals if total.applies_to == "success" and not total.scope]
    if not stated:
        return said
    when = readable["settled_at"].max() if readable.height else None
    frame = pl.DataFrame(
        [{"line_no": 0, "settlement_kind": kind, "channel_txn_id": None, "amount_fen": fen, "settled_at": when}
         for kind, fen in stated],
        schema=SETTLEMENT_LINE_SCHEMA,
    )  # fmt: skip
    return frame if said is None else pl.concat([said, frame])


def _quoting_little(invalid: pl.DataFrame) -> pl.DataFrame:
    """Invalid lines quote at most :data:`~reconcile.text.QUOTE_CHARS` of the line and its fields."""
    return invalid.with_columns(shortened("raw_line"), shortened("message"))


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
                format_text(
                    "{}: {} failed {}", pl.col("column"), pl.col("failure_case").fill_null("(blank)"), pl.col("check")
                ).alias(
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
            currency_error(pl.col("currency"), channel),
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
