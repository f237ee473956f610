"""What a delivery makes of a business date before matching: each file claimed by a channel and
read by its layout, repeats and re-sends set aside, and the outcomes that come from the files
themselves (a file rejected whole, a channel that sent nothing, a line that failed validation).

Pure: bytes and frames in, frames and values out. Finding the files on disk and the history of
files already registered are the edge's (``flows/stages/discover.py``, ``flows/stages/load.py``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from reconcile.codes import Outcome
from reconcile.explain import explain
from reconcile.funds.statements import StatementRejected, read_statement, statement_kind
from reconcile.ingest import (
    LONGEST_LINE,
    ParsedFile,
    empty_invalid,
    empty_records,
    identify_layout,
    parse_channel_file,
    set_aside_evidence,
    set_aside_restated,
)
from reconcile.keys import file_key, invalid_line_key_expr, missing_file_key
from reconcile.masking import mask_numbers_in_text
from reconcile.matching import OUTCOME_COLUMNS, MatchResult
from reconcile.settings import Settings, business_date_bounds_utc
from reconcile.text import format_text

UNRECOGNISED = (
    "no configured layout recognises this file's content (or several channels "
    "share its layout and none's file pattern fits its name)"
)




def why_unrecognised(data: bytes) -> str:
    """Why no layout recognised a file: a line too long to be any channel's, when one of its first
    lines is (layouts are recognised from the first 64 KiB), else that nothing recognises it."""
    start = 0
    for line_no in range(1, 201):
        end = data.find(b"\n", start, start + LONGEST_LINE + 1)
        if end < 0:
            if len(data) - start > LONGEST_LINE:
                return (
                    f"line {line_no} is longer than {LONGEST_LINE:,} bytes: no channel file has lines that long, "
                    "so no layout can recognise it"
                )
            break
        start = end + 1
    return UNRECOGNISED


@dataclass(frozen=True)
class DiscoveredFile:
    """One readable file found for a business date (a zip member counts as one).

    ``name``: as delivered, or ``zip!member``. ``path``: the delivered file. ``data``: the bytes
    to read. ``channel``: None when nothing recognises it. ``rejection``: why the delivery as a
    whole is refused (a bad zip), or None. ``layout``: the layout recognised, or None.
    """

    name: str
    path: Path
    sha256: str
    size: int
    channel: str | None
    data: bytes = b""
    rejection: str | None = None
    layout: str | None = None
    delivered_as: str = ""


@dataclass(frozen=True)
class Received:
    """A delivered file as it was found: ``name`` as the channel named it, ``path`` where its bytes
    are now, ``source`` (``inbox`` or ``filed``: archived or quarantined by an earlier run) and
    ``order`` (among filed copies, the larger the newer: when it was filed)."""

    name: str
    path: Path
    source: str
    order: float


#: The longest file name kept as it is, in UTF-8 bytes: file systems refuse names over 255 bytes
#: (an archived copy adds 13 characters of hash) and keys that name a file must fit their columns
#: (``exceptions.exception_key`` is 200 characters) on every database alike.
MAX_NAME_BYTES = 160


def readable_name(raw: bytes) -> str:
    """A delivered file's name as text that any database, log or report can hold: UTF-8, or GB18030
    (Chinese channels name files in GBK too), else with the undecodable bytes escaped; control
    characters (a newline could forge a line wherever names are listed) shown as ``\\xNN``."""
    for encoding in ("utf-8", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        text = raw.decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    if len(text.encode("utf-8")) <= MAX_NAME_BYTES:
        return text
    # too long to keep whole: its start and a hash of all of it, so two long names stay apart
    digest = hashlib.sha256(raw).hexdigest()[:12]
    return text.encode("utf-8")[: MAX_NAME_BYTES - 14].decode("utf-8", "ignore") + "~" + digest


def archive_name(sha256: str, name: str) -> str:
    """The name of a file's copy in the archive: its hash and as much of its delivered name as fits."""
    return f"{sha256[:12]}_{name.replace('/', '_')}"


def current_versions(inbox: list[Received], filed: list[Received]) -> list[Received]:
    """One version of each delivered name: the inbox's when it holds the name (tonight's delivery
    is the newest), else the copy filed last. A file received once is never forgotten because the
    inbox was cleared; a corrected re-send under the same name replaces the older version."""
    chosen = {r.name: r for r in inbox}
    for received in sorted(filed, key=lambda r: r.order):
        if received.name not in {r.name for r in inbox}:
            chosen[received.name] = received
    return sorted(chosen.values(), key=lambda r: r.name)


def claim(name: str, data: bytes, settings: Settings) -> tuple[str | None, str | None]:
    """The channel a file belongs to and the layout it is in: the layout is recognised by content;
    when several channels send that layout, the file name pattern decides. (None, layout) when no
    single channel claims it; (None, None) when nothing recognises the content."""
    layout = identify_layout(data, settings.layouts)
    if layout is None:
        statement = statement_kind(data, settings.funds.statement_layouts)
        return (STATEMENT, statement) if statement is not None else (None, None)
    candidates = [c for c in settings.channels.values() if layout in c.layouts]
    if len(candidates) == 1:
        return candidates[0].channel_id, layout
    named = [c for c in candidates if fnmatch.fnmatch(name, c.file_pattern)]
    return (named[0].channel_id if len(named) == 1 else None), layout


def parse_files(files: list[DiscoveredFile], settings: Settings, day: dt.date) -> list[ParsedFile]:
    """Each file read by its layout; a second copy of the same bytes in the delivery is not read
    again but skipped, naming the first. (:func:`files_to_read` and :func:`read_file` are the
    parts an orchestrator may spread over workers; :func:`assemble` puts the day back together.)"""
    read = {found.sha256: read_file(found, settings, day) for found in files_to_read(files)}
    return assemble(files, read, settings)


def files_to_read(files: list[DiscoveredFile]) -> list[DiscoveredFile]:
    """The files whose bytes must be read: the first copy of each, recognised and not refused."""
    first: dict[str, DiscoveredFile] = {}
    for found in files:
        if found.channel is not None and found.rejection is None:
            first.setdefault(found.sha256, found)
    return list(first.values())


def read_file(found: DiscoveredFile, settings: Settings, day: dt.date) -> ParsedFile:
    """One recognised file read by its layout (reasons masked); pure, bytes in."""
    assert found.channel is not None
    if found.channel == STATEMENT:
        return read_statement_file(found, settings)
    channel = settings.channels[found.channel]
    layout = settings.layouts[found.layout or channel.layout]
    return parse_channel_file(found.name, found.data, found.sha256, channel, layout, day)


#: The channel of a bank statement of the collection account: not a channel's file, the bank's.
STATEMENT = "statement"


def read_statement_file(found: DiscoveredFile, settings: Settings) -> ParsedFile:
    """A statement of the collection account (camt.053, MT940, a configured bank download): its
    lines, or the whole file refused with the reason (masked)."""
    kind = found.layout or "statement"
    try:
        _, lines = read_statement(found.data, found.name, settings.funds.statement_layouts)
    except StatementRejected as error:
        return ParsedFile(found.name, found.sha256, STATEMENT, kind, None, 0, empty_records(), empty_invalid(),
                          rejected_reason=mask_numbers_in_text(str(error)))  # fmt: skip
    return ParsedFile(
        found.name, found.sha256, STATEMENT, kind, None, lines.height, empty_records(), empty_invalid(),
        statement_lines=lines,
    )  # fmt: skip


def assemble(files: list[DiscoveredFile], read: dict[str, ParsedFile], settings: Settings) -> list[ParsedFile]:
    """The delivery in order from the files read (by SHA-256): refused and unrecognised files as
    rejections, a repeated copy skipped naming the first, then what repeats across files settled."""
    parsed = []
    accepted: dict[str, ParsedFile] = {}
    for found in files:
        first = accepted.get(found.sha256)
        if first is not None:
            why = f"the same bytes as {first.source_file} in this delivery: counted once"
            parsed.append(replace(first, source_file=found.name).skip(why))
            continue
        if found.channel is None or found.rejection is not None:
            parsed.append(
                ParsedFile(
                    found.name,
                    found.sha256,
                    "unknown",
                    "unknown",
                    None,
                    0,
                    empty_records(),
                    empty_invalid(),
                    rejected_reason=mask_numbers_in_text(found.rejection or why_unrecognised(found.data)),
                )
            )
            continue
        result = read[found.sha256]
        if result.source_file != found.name:  # the same bytes, refused under another name: said of this one
            result = replace(result, source_file=found.name)
        if result.rejected_reason is None:
            accepted[found.sha256] = result
        parsed.append(result)
    return settle_repeats_across_files(set_aside_evidence(set_aside_restated(parsed, settings.layouts), settings))


#: What makes two lines the same transaction, and what makes them the same facts.
TRANSACTION_KEY = ["channel", "record_kind", "channel_txn_id", "refund_request_no"]
TRANSACTION_FACTS = ["amount_fen", "status", "settled_at", "reference", "account_shown", "failure_code"]


def settle_repeats_across_files(parsed: list[ParsedFile]) -> list[ParsedFile]:
    """The same channel transaction read in two files of a delivery (a corrected re-send, ISO files
    repeating a status) is one transaction.

    With the same facts it counts once, in the first file, and the repeating file says so. With
    different facts (amount, status, time, reference, account) no copy is applied: each becomes an
    invalid line naming every file and line it was read in, for a person to decide.
    """
    accepted = [(i, p) for i, p in enumerate(parsed) if p.rejected_reason is None and p.records.height]
    if len(accepted) < 2:
        return parsed
    rows = pl.concat(
        [p.records.select(*TRANSACTION_KEY, *TRANSACTION_FACTS, "source_file", "line_no").with_columns(
            _file=pl.lit(i), _row=pl.int_range(pl.len())) for i, p in accepted],
        how="vertical_relaxed",
    ).with_columns(pl.col("refund_request_no").fill_null(""))  # fmt: skip
    repeated = rows.filter(pl.len().over(TRANSACTION_KEY) > 1)
    if repeated.height == 0:
        return parsed
    repeated = repeated.sort("_file", "_row").with_columns(
        _same=pl.struct(TRANSACTION_FACTS).n_unique().over(TRANSACTION_KEY) == 1,
        _first=pl.int_range(pl.len()).over(TRANSACTION_KEY) == 0,
        _where=format_text("{} line {}", "source_file", "line_no").str.join(", ").over(TRANSACTION_KEY),
    )
    drop = repeated.filter(~pl.col("_first") | ~pl.col("_same"))
    conflicting = repeated.filter(~pl.col("_same"))
    result = list(parsed)
    for i, item in accepted:
        mine = drop.filter(pl.col("_file") == i)
        if mine.height == 0:
            continue
        gone = mine.select("_row")
        kept = item.records.with_row_index("_row").join(gone.cast({"_row": pl.UInt32}), on="_row", how="anti")
        notes = list(item.notes)
        same = mine.filter(pl.col("_same")).height
        if same:
            notes.append(
                f"{same} line(s) repeat transactions another file of the delivery has with the same facts: counted once"
            )
        conflicts = conflicting.filter(pl.col("_file") == i)
        invalid = item.invalid
        if conflicts.height:
            lines = item.records.with_row_index("_row").join(
                conflicts.select(pl.col("_row").cast(pl.UInt32), "_where"), on="_row"
            )
            invalid = pl.concat(
                [
                    invalid,
                    lines.select(
                        "source_file", "file_sha256", "channel", "line_no", "raw_line", "reference",
                        pl.lit("repeated_transaction").alias("check"),
                        format_text(
                            "transaction {} is read with different facts in {}: nothing of it is applied until a "
                            "person decides", "channel_txn_id", "_where",
                        ).alias("message"),
                    ),
                ],
                how="vertical_relaxed",
            )  # fmt: skip
            notes.append(
                f"{conflicts.height} line(s) differ from the same transaction in another file: held as invalid"
            )
        result[i] = replace(item, records=kept.drop("_row"), invalid=invalid, notes=tuple(notes))
    return result


def instruction_window(day: dt.date, settings: Settings) -> tuple[dt.datetime, dt.datetime]:
    """The UTC span of request times whose instructions a business date can answer without naming
    them: the date itself and the fallback window before it (a record naming an instruction reaches
    it whenever it was requested)."""
    start, end = business_date_bounds_utc(day)
    return start - dt.timedelta(days=settings.fallback_window_days), end


KNOWN_FILES_SCHEMA = {"sha256": pl.String, "name": pl.String, "business_date": pl.Date, "registered_at": pl.Datetime}


def file_history(known: pl.DataFrame, day: dt.date, parsed: list[ParsedFile]) -> dict[str, dict[str, Any]]:
    """For each file (by SHA-256): whether these exact bytes were registered before, the business
    date and name they were first registered under, and — for a file whose name was seen for this
    date with other bytes — the SHA-256 it supersedes. ``known``: the registered files
    (``sha256``, ``name``, ``business_date``, ``registered_at``)."""
    shas = set(known["sha256"].to_list())
    history = {}
    for item in parsed:
        earlier = known.filter(
            (pl.col("name") == item.source_file) & (pl.col("business_date") == day) & (pl.col("sha256") != item.sha256)
        ).sort("registered_at")
        same = known.filter(pl.col("sha256") == item.sha256)
        history[item.sha256] = {
            "seen_before": item.sha256 in shas,
            "replaces_sha256": earlier["sha256"][-1] if earlier.height else None,
            "business_date": day.isoformat(),
            "first_business_date": same["business_date"][0].isoformat() if same.height else None,
            "first_name": same["name"][0] if same.height else None,
        }
    return history


def skip_counted_elsewhere(parsed: list[ParsedFile], history: dict[str, dict[str, Any]]) -> list[ParsedFile]:
    """A file whose exact bytes were first processed for another business date is not counted
    again (a channel re-sending yesterday's file under today's folder)."""
    result = []
    for item in parsed:
        known = history.get(item.sha256, {})
        if item.status == "ACCEPTED" and known.get("first_business_date") not in (None, known.get("business_date")):
            item = item.skip(
                f"the same bytes were processed for business date {known['first_business_date']} "
                f"as {known['first_name']}: counted there, not again"
            )
        result.append(item)
    return result


def accepted_records(parsed: list[ParsedFile]) -> pl.DataFrame:
    """Every record of the files not rejected, in delivery order."""
    return pl.concat([p.records for p in parsed if p.rejected_reason is None] or [empty_records()])


def memo_contracts(records: pl.DataFrame) -> pl.DataFrame:
    """Contract numbers named in the records' memos (a borrower's own repayment)."""
    return records.select(pl.col("memo").str.extract(r"([A-Za-z0-9_-]+)", 1).alias("contract_no")).drop_nulls().unique()


def invalid_lines(parsed: list[ParsedFile]) -> pl.DataFrame:
    return pl.concat([p.invalid for p in parsed] or [empty_invalid()])


FILE_OUTCOME_SCHEMA = {
    "subject": pl.String,
    "subject_key": pl.String,
    "outcome": pl.String,
    "channel": pl.String,
    "source_file": pl.String,
    "message": pl.String,
}


def file_outcomes(parsed: list[ParsedFile], day: dt.date, settings: Settings) -> pl.DataFrame:
    """Outcomes that come from ingestion: rejected files, missing files, invalid lines."""
    rows: list[dict[str, Any]] = []
    arrived = {p.channel for p in parsed}
    for item in parsed:
        if item.rejected_reason is not None:
            rows.append(
                {
                    "subject": "file",
                    "subject_key": file_key(item.source_file),
                    "outcome": Outcome.FILE_REJECTED.value,
                    "channel": item.channel,
                    "source_file": item.source_file,
                    "message": item.rejected_reason,
                }
            )
    for channel in settings.channels.values():
        if channel.expected_daily and channel.channel_id not in arrived:
            rows.append(
                {
                    "subject": "channel",
                    "subject_key": missing_file_key(channel.channel_id, day),
                    "outcome": Outcome.MISSING_FILE.value,
                    "channel": channel.channel_id,
                }
            )
    files = pl.DataFrame(rows, schema=FILE_OUTCOME_SCHEMA)
    invalid = invalid_lines(parsed).select(
        pl.lit("record").alias("subject"),
        invalid_line_key_expr().alias("subject_key"),
        pl.lit(Outcome.INVALID_RECORD.value).alias("outcome"),
        "channel",
        "source_file",
        "line_no",
        "raw_line",
        "reference",
        "message",
    )
    combined = pl.concat([files, invalid], how="diagonal_relaxed")
    extra = {name: dtype for name, dtype in OUTCOME_COLUMNS.items() if name not in combined.columns}
    combined = combined.with_columns([pl.lit(None, dtype).alias(name) for name, dtype in extra.items()])
    return combined.with_columns(
        flags=pl.lit(""),
        **{c: pl.lit(0, pl.Int64) for c in ("received_fen", "applied_fen", "held_fen", "reversed_fen")},
    ).select([*OUTCOME_COLUMNS, "message"])


def all_outcomes(result: MatchResult, parsed: list[ParsedFile], day: dt.date, settings: Settings) -> pl.DataFrame:
    """The matcher's outcomes and the files' own, explained, in key order."""
    matched = result.outcomes.with_columns(message=pl.lit(None, pl.String))
    combined = pl.concat([matched, file_outcomes(parsed, day, settings)], how="vertical_relaxed")
    return explain(combined.sort("subject", "subject_key"))


def unmapped_failures(parsed: list[ParsedFile]) -> dict[str, Any]:
    """Failed records whose code or words no table maps (kept raw, counted as OTHER)."""
    other = accepted_records(parsed).filter((pl.col("status") == "FAILED") & (pl.col("failure_reason") == "OTHER"))
    raw = (
        other.select(pl.coalesce("failure_code", "failure_text").fill_null("(none)").alias("raw")).group_by("raw").len()
    )
    return {"count": other.height, "raw": dict(raw.sort("len", "raw", descending=[True, False]).head(10).iter_rows())}
