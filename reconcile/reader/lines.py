"""Lines: the file cut into lines by polars' reader (line numbers kept), the header found by its
column names, each line classified (detail, summary, footer, end of data), lines too long set
apart, and the business date the file states.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

import polars as pl

from reconcile.layouts import LayoutSpec
from reconcile.reader.cells import CELL_PADDING, summary_cells
from reconcile.reader.decoding import FileRejected, undecodable
from reconcile.text import format_text


def normalise_header(cell: str) -> str:
    """NFKC (full-width ``（元）`` → ``(元)``), padding and TABs stripped."""
    return unicodedata.normalize("NFKC", cell).strip(CELL_PADDING)


def header_cells(line: str, delimiter: str) -> list[str]:
    """A header line's column names, each :func:`normalise_header`-ed."""
    return [normalise_header(cell) for cell in line.split(delimiter)]


#: The header row is looked for in the file's first lines only.
HEADER_SEARCH_LINES = 1000


#: No channel file has a line this long (their lines are a few hundred bytes): a longer one is
#: damage or an attack, invalid as a whole whatever its fields hold.
LONGEST_LINE = 64 << 10


def set_apart_long_lines(
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
            raise undecodable(utf8, "utf-8", error) from None
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
            raise undecodable(utf8, "utf-8", error) from None
        raise
    return frame.to_series().fill_null("")


def classify_lines(
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
    summary = summary_cells(summaries["raw_line"][0], layout) if summaries.height else None
    if summary_prefix and summary is None:
        raise FileRejected("the summary line (batch totals) is missing: the file may be truncated")
    unusual_data = odd.filter(pl.col("_role") == "data")["line_no"]  # detail lines of another field count
    keep = pl.col("_usual") | pl.col("line_no").is_in(unusual_data.implode()) if unusual_data.len() else "_usual"
    data = keep_rows(body, keep) if unusual else body
    return data.drop("_usual"), footer, summary


def keep_rows(body: pl.DataFrame, keep: pl.Expr | str) -> pl.DataFrame:
    """``body.filter(keep)``; a slice, which copies nothing, when the rows left out all come before
    or after the rest (a summary line first, a footer last: the usual file)."""
    keep = pl.col(keep) if isinstance(keep, str) else keep
    left_out = body.select(pl.int_range(pl.len()).filter(~keep)).to_series().to_list()
    before = next((n for n, at in enumerate(left_out) if at != n), len(left_out))
    after = left_out[before:]
    if after == list(range(body.height - len(after), body.height)):
        return body.slice(before, body.height - len(left_out))
    return body.filter(keep)


def find_columns(
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
        cells = header_cells(line, delimiter)
        if all(name in cells for name in wanted):
            seen: set[str] = set()
            named = []
            for position, cell in enumerate(cells):
                named.append(cell if cell and cell not in seen else f"_col{position}")
                seen.add(cell)
            return index, named
    raise FileRejected(f"no header row with the columns {', '.join(wanted)}: is this the right layout?")


def stated_business_date(
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
