"""Cells: lines cut into fields, by a delimiter (polars' reader, row for row) or at byte offsets of
the layout's encoding (fixed width, with a ``gap`` after each field), padding and the layout's
``value_prefix`` taken off the cells a field reads.
"""

from __future__ import annotations

import polars as pl

from reconcile.layouts import LayoutSpec
from reconcile.money import YUAN_PATTERN
from reconcile.reader.decoding import FileRejected, codec_name
from reconcile.text import format_text

CELL_PADDING = ' \t\u3000\ufeff"'


def cells_by_line(utf8: bytes, columns: list[str], delimiter: str) -> pl.DataFrame:
    """Every line cut at the delimiter by polars' reader (in parallel), one row per line, aligned
    with :func:`split_lines`: missing fields are null, extra ones dropped (whether a line has the
    layout's field count is told by its length, see :func:`classify_lines`)."""
    return pl.read_csv(
        utf8,
        has_header=False,
        separator=delimiter,
        quote_char=None,
        schema={column: pl.String for column in columns},
        truncate_ragged_lines=True,
        missing_columns="insert",
    )


def value_cells(line: str, layout: LayoutSpec) -> list[str]:
    """A delimited line's values, each :func:`cell_value`-ed (a summary line, a summary table's)."""
    return [cell_value(cell, layout) for cell in line.split(layout.delimiter or ",")]


def summary_cells(line: str, layout: LayoutSpec) -> list[str]:
    if layout.summary_widths is None:
        return value_cells(line, layout)
    raw = line.encode(layout.encoding)
    cells, offset = [], 0
    for width in layout.summary_widths:
        piece = raw[offset : offset + width]
        offset += width
        try:
            cells.append(piece.decode(layout.encoding).strip(CELL_PADDING))
        except UnicodeDecodeError:
            raise FileRejected("the summary line's fields do not fall on character boundaries") from None
    return cells


def delimited_table(
    body: pl.DataFrame,
    columns: list[str],
    delimiter: str,
    used: list[str],
    yuan: list[str],
    value_prefix: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, set[str]]:
    """The lines with the layout's field count (their cells already cut, see :func:`cells_by_line`,
    and counted, see :func:`classify_lines`); lines with another count are set apart; and which of
    the ``yuan`` amount columns hold plain yuan only (:func:`plain_yuan`). ``used``: the columns a
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
    if value_prefix and used:  # padding may sit outside the mark (`"`123"`) as well as inside
        bare = [pl.col(c).str.strip_chars(CELL_PADDING).str.strip_prefix(value_prefix).str.strip_chars(CELL_PADDING)
                for c in used]  # fmt: skip
        table = table.with_columns([pl.when(cell.str.len_bytes() > 0).then(cell).alias(c) for c, cell in zip(
            used, bare, strict=True)])  # fmt: skip
    yuan = [column for column in yuan if column in table.columns]
    # one pass over the table for both questions (polars answers them side by side)
    padding = _padding_signs(delimiter)
    signs = padding + [plain_yuan(column) for column in yuan]
    found = table.lazy().select(signs).collect().row(0, named=True) if table.height else {}
    if any(found.get(f"_pad{n}") for n in range(len(padding))):
        table = _strip_cells(table, used)
        found = table.lazy().select([plain_yuan(column) for column in yuan]).collect().row(0, named=True)
    return table.drop("_fits"), wrong, {column for column in yuan if found.get(f"_plain:{column}")}


#: A character's width in bytes, by encoding: marked characters get one marker per extra byte.
_WIDE = {
    "gb18030": ((r"[\x{80}-\x{FFFF}]", 1), (r"[\x{10000}-\x{10FFFF}]", 3)),
    "utf8": ((r"[\x{80}-\x{7FF}]", 1), (r"[\x{800}-\x{FFFF}]", 2), (r"[\x{10000}-\x{10FFFF}]", 3)),
}


MARK = "\x01"


def fixed_width_table(
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
    used = used_columns(layout, columns)
    if one_byte:
        body = body.with_columns(_marked=pl.col("raw_line"))
    elif marked_lines is not None:
        body = body.with_columns(_marked=marked_lines.gather(body["line_no"] - 1))
    else:
        marked = pl.col("raw_line")
        for pattern, extra in _WIDE[codec_name(layout.encoding).replace("gbk", "gb18030")]:
            marked = marked.str.replace_all(pattern, "${0}" + MARK * extra)
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
    if gap:  # one pattern per line: every gap holds spaces, or the line is shifted (a double-byte
        # character across a boundary puts its second byte's marker in the gap, so this sees it too)
        spaced = "^" + "".join(f".{{{w}}}" + " " * gap for w in widths[:-1]) + f".{{{widths[-1]}}}"
        shifted_gap = body.select((~pl.col("_marked").str.contains(spaced)).alias("_off"))["_off"]
        if shifted_gap.any():
            wrong = pl.concat([wrong, body.filter(shifted_gap).select(
                "line_no", "raw_line", pl.lit("field_gap").alias("_check"),
                pl.lit("a field runs into the space after it: the line is shifted").alias("_why"),
            )]).sort("line_no")  # fmt: skip
            body = body.filter(~shifted_gap)
    # only the fields some field spec reads are cut; a field boundary inside a double-byte
    # character is told by the marker at the boundary, whichever fields it falls between
    fields = zip(offsets, widths, columns, strict=True)
    cut = [pl.col("_marked").str.slice(o, w).alias(c) for o, w, c in fields if c in used]
    straddles = [] if one_byte or gap else [pl.col("_marked").str.slice(o, 1) == MARK for o in offsets[1:]]
    straddle = [pl.any_horizontal(straddles).alias("_straddle")] if straddles else []
    table = body.lazy().select("line_no", "raw_line", *cut, *straddle).collect()
    broken = table.clear().select("line_no", "raw_line", pl.lit("").alias("_check"), pl.lit("").alias("_why"))
    if one_byte:  # nothing to unmark
        stripped = table.lazy().with_columns([pl.col(c).str.strip_chars(CELL_PADDING) for c in used])
        blank_is_null = [pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in used]
        return stripped.with_columns(blank_is_null).collect(), wrong
    if straddle:
        if table["_straddle"].any():
            broken = table.filter("_straddle").select(
                "line_no",
                "raw_line",
                pl.lit("field_width").alias("_check"),
                pl.lit("a double-byte character straddles two fields: the line is shifted").alias("_why"),
            )
            table = table.filter(~pl.col("_straddle"))
        table = table.drop("_straddle")
    table = (
        table.lazy()
        .with_columns([pl.col(c).str.replace_all(MARK, "", literal=True).str.strip_chars(CELL_PADDING) for c in used])
        .with_columns([pl.when(pl.col(c).str.len_bytes() > 0).then(pl.col(c)).alias(c) for c in used])
        .collect()
    )
    return table, pl.concat([wrong, broken]).sort("line_no")


def used_columns(layout: LayoutSpec, columns: list[str]) -> list[str]:
    used = layout.used_columns()
    return [column for column in columns if column in used]


def cell_value(cell: str, layout: LayoutSpec) -> str:
    """A summary cell without padding or the layout's value prefix."""
    cell = cell.strip(CELL_PADDING)
    return cell.removeprefix(layout.value_prefix) if layout.value_prefix else cell


def _strip_cells(table: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """Padding and TABs stripped, cells left empty null; only columns that held padding are rewritten."""
    if not columns or table.height == 0:
        return table
    stripped = table.lazy().select([pl.col(c).str.strip_chars(CELL_PADDING) for c in columns]).collect()
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
    others = "[" + "".join(c for c in CELL_PADDING if c != " ") + "]"
    signs = [
        line.str.contains(others),
        line.str.contains(f"{pl.escape_regex(delimiter)} | {pl.escape_regex(delimiter)}"),
        line.str.starts_with(" ") | line.str.ends_with(" "),
    ]
    return [sign.any().alias(f"_pad{n}") for n, sign in enumerate(signs)]


def plain_yuan(column: str) -> pl.Expr:
    """Whether every text of the column is plain yuan (``1234.50``), as most files' amounts are:
    those skip the cleaning of currency signs and separators."""
    return pl.col(column).str.contains(YUAN_PATTERN).all().alias(f"_plain:{column}")
