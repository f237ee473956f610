"""Control totals: what a file states (a footer, a summary line, a summary table or a summary
section) checked against what its lines hold, before any line is set aside.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from reconcile.layouts import ControlTotalSpec, LayoutSpec, MapField
from reconcile.money import AmountError, yuan_expr_to_fen, yuan_text_to_fen
from reconcile.reader.cells import value_cells
from reconcile.reader.decoding import FileRejected
from reconcile.reader.lines import header_cells, normalise_header


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


def control_totals_of(
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
        rows = _rows_of(spec, canonical)
        stated = _stated_totals(spec, layout, footer, summary)
        if stated is None:  # a total this bill type does not state: only where it has no such lines
            if rows.height:
                raise FileRejected(
                    f"the file has {rows.height} {spec.applies_to} line(s) but its summary table states no "
                    f"{spec.amount_column} to check them against"
                )
            continue
        count_text, amount_text = stated
        try:
            stated_count = None if count_text is None else _count(count_text)
            stated_fen = abs(_stated_fen(amount_text, spec))
        except (ValueError, AmountError):
            raise FileRejected(f"the control totals {count_text!r} / {amount_text!r} are not numbers") from None
        if spec.sums is not None:  # the stated amount adds up a column of its own (WeChat's 应结订单金额)
            if spec.sums not in table.columns:
                raise FileRejected(f"the header lacks the column {spec.sums} the control totals add up")
            summed_column = table.select(yuan_expr_to_fen(pl.col(spec.sums))).to_series()
            rows = _rows_of(spec, canonical.with_columns(_summed=summed_column))
        summed = _sum_fen(rows["_summed" if spec.sums is not None else "_signed_fen"])
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


def _rows_of(spec: ControlTotalSpec, canonical: pl.DataFrame) -> pl.DataFrame:
    """The lines a control total counts."""
    rows = canonical.select("record_kind", "status", "_signed_fen", *(["_summed"] if "_summed" in canonical else []))
    if spec.applies_to in ("income", "expense"):
        return rows.filter((pl.col("_signed_fen") > 0) if spec.applies_to == "income" else (pl.col("_signed_fen") < 0))
    if spec.applies_to in ("debit", "refund"):
        return rows.filter(pl.col("record_kind") == spec.applies_to)
    if spec.applies_to == "success":
        return rows.filter(pl.col("status") == "SUCCESS")
    return rows


def _sum_fen(amounts: pl.Series) -> int:
    """The lines' amounts added without overflow (Int128: a damaged file's huge amounts must not
    wrap around and agree with a stated total)."""
    return int(amounts.fill_null(0).cast(pl.Int128).abs().sum())


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
        summed = _sum_fen(mine["_signed_fen"])
        totals.append(ControlTotal(applies_to, count, fen, mine.height, summed, scope=", ".join(scope) or None))
    every = _sum_fen(lines["_signed_fen"])
    totals.append(ControlTotal(spec.applies_to, stated_count, stated_fen, lines.height, every, scope="汇总"))
    return totals


def _stated_fen(text: str, spec: ControlTotalSpec) -> int:
    return int(text) if spec.amount == "fen" else yuan_text_to_fen(text)


def _section_rows(preamble: list[str], layout: LayoutSpec, spec: ControlTotalSpec) -> list[dict[str, str]]:
    """The summary section's rows (after its header line, until a blank line or a line of another
    field count) as name → text; rejected when the section is missing."""
    delimiter = layout.delimiter or ","
    wanted = [normalise_header(name) for name in spec.section_contains or ()]
    for at, line in enumerate(preamble):
        names = header_cells(line, delimiter)
        if not all(name in names for name in wanted):
            continue
        rows = []
        for following in preamble[at + 1 :]:
            values = value_cells(following, layout)
            if not following.strip() or len(values) != len(names):
                break
            rows.append(dict(zip(names, values, strict=True)))
        return rows  # no rows: a day with no lines (any detail line then disagrees with the total of all)
    raise FileRejected(f"no summary section with the columns {', '.join(wanted)}: the file may be truncated")


def _summary_table(footer: list[str], layout: LayoutSpec, spec: ControlTotalSpec) -> dict[str, str]:
    """The trailing summary table (the line that ends the data, naming its cells, then one line of
    values) as name → value text; rejected when it is missing, as in a file cut short."""
    delimiter = layout.delimiter or ","
    marker = re.compile(layout.end_marker or "^$")
    for at, line in enumerate(footer):
        if not marker.search(line):
            continue
        names = header_cells(line, delimiter)
        if at + 1 >= len(footer) or not footer[at + 1].strip():
            raise FileRejected("the summary table has a header but no values: the file may be truncated")
        values = value_cells(footer[at + 1], layout)
        if len(values) != len(names):
            raise FileRejected(f"the summary table has {len(names)} names but {len(values)} values")
        after = [n for n, rest in enumerate(footer[at + 2 :], start=1) if rest.strip()]
        if after:  # two bills joined, or lines after the totals: none of them may go unread
            raise FileRejected(
                f"{len(after)} line(s) follow the summary table, which ends the bill: two bills joined, or lines "
                "the totals do not cover"
            )
        return dict(zip(names, values, strict=True))
    raise FileRejected("the summary table with the control totals is missing: the file may be truncated")


def _count(text: str) -> int:
    """A stated count, ``20`` or ``20.0`` (WeChat's fund-flow bill writes counts with a decimal)."""
    text = text.strip().replace(",", "")
    if re.fullmatch(r"\d+(\.0+)?", text) is None:
        raise ValueError(text)
    return int(text.split(".")[0])
