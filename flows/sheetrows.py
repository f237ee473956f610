"""The rows of an exception sheet as SpreadsheetML, made a column at a time by polars.

openpyxl makes a Python object per cell and serialises it through lxml: about 10 µs a cell, so a
sheet of 150,000 exceptions took half a minute. Here openpyxl still writes everything else of the
workbook (sheet properties, columns, filters, drop-downs, print set-up, the header row, the
styles); the rows below the header are made here as XML text, column by column, and put into each
sheet's part of the saved file, a slice of rows at a time. A row says what
``flows.workbook.row_values`` says it shows, cell by cell as openpyxl would write it: text inline
(``t="inlineStr"``, ``xml:space="preserve"`` around outer spaces, a formula-like start marked as text
by its own style), numbers as ``%.16g`` would print them, money in yuan with its style, empty text as
an empty cell and nothing at all for a value that is None.
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl.utils import get_column_letter

from reconcile.money import fen_expr_to_yuan_text

#: Rows made and written at a time (a month-end day's sheet can hold hundreds of thousands).
SLICE_ROWS = 50_000
#: The most characters a cell holds (Excel's limit; openpyxl cuts there too).
CELL_CHARS = 32_767
#: A spreadsheet reads a text starting with one of these as a formula: it is written marked as text.
RISKY_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: :data:`RISKY_PREFIXES` as a pattern.
RISKY_START = "^[" + "".join({"-": r"\-", "\t": r"\t", "\r": r"\r"}.get(c, c) for c in RISKY_PREFIXES) + "]"


@dataclass(frozen=True)
class Looks:
    """The style ids the workbook registered for the looks a row's cells take."""

    risky: int
    money: int
    bold: int
    bold_money: int


@dataclass
class SheetRows:
    """The rows to put below a sheet's header: made from ``cells`` (one column per sheet column,
    typed as :func:`row_cells` says) ``SLICE_ROWS`` at a time, numbered from row 2, then the
    total row."""

    columns: list[tuple[str, str]]  # (sheet column name, kind)
    cells: pl.DataFrame
    total: str
    sheet: Any  # openpyxl's write-only sheet: its part in the file is known once the book is saved


def _escaped(expr: pl.Expr) -> pl.Expr:
    # what lxml writes for text: the three markup characters and a carriage return as references
    for raw, ref in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("\r", "&#13;")):
        expr = expr.str.replace_all(raw, ref, literal=True)
    return expr


def _text_cell(letter: str, value: pl.Expr, risky_style: int) -> pl.Expr:
    """A text cell, or none for null; an empty text is an empty cell; no more than a cell holds."""
    value = value.str.slice(0, CELL_CHARS)
    ref = pl.concat_str(pl.lit(f'<c r="{letter}'), pl.col("_row"))
    risky = value.str.contains(RISKY_START)
    space = pl.when(value != value.str.strip_chars()).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
    style = pl.when(risky).then(pl.lit(f'" s="{risky_style}"')).otherwise(pl.lit('"'))
    full = pl.concat_str(ref, style, pl.lit(' t="inlineStr"><is><t'), space, pl.lit(">"), _escaped(value),
                         pl.lit("</t></is></c>"))  # fmt: skip
    return (
        pl.when(value.is_null())
        .then(pl.lit(""))
        .when(value == "")
        .then(pl.concat_str(ref, pl.lit('" t="inlineStr"/>')))
        .otherwise(full)
    )


def _number_cell(letter: str, value: pl.Expr, style: str = "") -> pl.Expr:
    """A number cell from its text, or none for null (with a style, `` s="N"``: an empty styled cell)."""
    ref = pl.concat_str(pl.lit(f'<c r="{letter}'), pl.col("_row"), pl.lit(f'"{style} t="n"'))
    return (
        pl.when(value.is_null())
        .then(pl.concat_str(ref, pl.lit("/>")) if style else pl.lit(""))
        .otherwise(pl.concat_str(ref, pl.lit("><v>"), value, pl.lit("</v></c>")))
    )


def yuan_number_text(fen: pl.Expr) -> pl.Expr:
    """Fen as openpyxl writes a yuan ``Decimal``: ``%.16g``, so no trailing zeros (``50``, ``933.3``)."""
    return fen_expr_to_yuan_text(fen).str.replace(r"\.?0+$", "")


def _int_or_empty(letter: str, value: pl.Expr) -> pl.Expr:
    """An integer, or an empty text cell where it is null (``row_values`` shows ``""`` there)."""
    return pl.when(value.is_null()).then(pl.concat_str(pl.lit(f'<c r="{letter}'), pl.col("_row"),
                                                       pl.lit('" t="inlineStr"/>'))).otherwise(
        _number_cell(letter, value.cast(pl.String)))  # fmt: skip


def row_xml(sheet: SheetRows, looks: Looks, start: int, rows: pl.DataFrame) -> str:
    """The ``<row>`` elements of ``rows``, the first numbered ``start``."""
    numbered = rows.with_columns(_row=pl.int_range(start, start + rows.height, dtype=pl.Int64).cast(pl.String))
    cells = []
    for index, (name, kind) in enumerate(sheet.columns, start=1):
        letter = get_column_letter(index)
        value = pl.col(name)
        if kind == "none":
            continue
        if kind == "text":
            cells.append(_text_cell(letter, value, looks.risky))
        elif kind == "int":
            cells.append(_number_cell(letter, value.cast(pl.String)))
        elif kind == "int_or_empty":
            cells.append(_int_or_empty(letter, value))
        elif kind == "money":
            cells.append(_number_cell(letter, yuan_number_text(value), f' s="{looks.money}"'))
        else:
            raise ValueError(f"unknown cell kind {kind!r} of column {name!r}")
    made = numbered.select(
        pl.concat_str(pl.lit('<row r="'), pl.col("_row"), pl.lit('">'), *cells, pl.lit("</row>")).alias("row")
    )
    return "".join(made["row"].to_list())


def slices(sheet: SheetRows, looks: Looks) -> Iterator[bytes]:
    for start in range(0, sheet.cells.height, SLICE_ROWS):
        yield row_xml(sheet, looks, start + 2, sheet.cells.slice(start, SLICE_ROWS)).encode()
    yield sheet.total.encode()


def put_rows(path: Path, sheets: list[SheetRows], looks: Looks, compresslevel: int = 1) -> None:
    """Rewrite the saved workbook at ``path`` with each sheet's rows below its header row (the
    other parts copied as they are), under a temporary name, then renamed."""
    by_part = {s.sheet.path.lstrip("/"): s for s in sheets}
    if not by_part:
        return
    partial = path.with_name(path.name + ".rows.partial")  # a leftover looks like any other partial file
    with (
        zipfile.ZipFile(path) as source,
        zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=compresslevel) as out,
    ):
        for info in source.infolist():
            data = source.read(info.filename)
            sheet = by_part.get(info.filename)
            if sheet is None:
                out.writestr(info, data)
                continue
            head, cut, tail = data.partition(b"</sheetData>")
            if not cut:
                raise ValueError(f"{info.filename}: no sheetData to put the rows in")
            with out.open(info.filename, "w", force_zip64=True) as part:
                part.write(head)
                for chunk in slices(sheet, looks):
                    part.write(chunk)
                part.write(cut + tail)
    os.replace(partial, path)


def total_xml(row: int, label: str, money: dict[int, int], looks: Looks) -> str:
    """The total row: its label in bold in the first column, each sum of fen (by column index) in
    bold yuan."""
    cells = [f'<c r="A{row}" s="{looks.bold}" t="inlineStr"><is><t>{_escaped_text(label)}</t></is></c>']
    for index, fen in sorted(money.items()):
        text = pl.select(yuan_number_text(pl.lit(fen, pl.Int64))).item()
        cells.append(f'<c r="{get_column_letter(index)}{row}" s="{looks.bold_money}" t="n"><v>{text}</v></c>')
    return f'<row r="{row}">' + "".join(cells) + "</row>"


def _escaped_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\r", "&#13;")
