"""Recognition: which layout a file's content shows (a header, a summary line and detail lines, the
widths of a fixed-width line, an ISO 20022 namespace), from its first 64 KiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reconcile.iso20022 import message_kind
from reconcile.layouts import LayoutSpec
from reconcile.reader.lines import header_cells, normalise_header


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
            if any(wanted <= set(header_cells(line, delimiter)) for line in lines):
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


@dataclass(frozen=True)
class NearMiss:
    """A layout a file did not fit: how close it came (``fit``, 0 to 1) and why it did not."""

    layout: str
    fit: float
    why: str


def _decoded(head: bytes, encoding: str) -> str | None:
    """``head`` decoded strictly, or None; the first 64 KiB may end inside a character, which is no fault."""
    try:
        return head.decode(encoding)
    except UnicodeDecodeError as error:
        if len(head) == 65536 and error.start >= len(head) - 4:
            try:
                return head[: error.start].decode(encoding)
            except UnicodeDecodeError:
                return None
        return None


def _head_lines(data: bytes, layout: LayoutSpec) -> tuple[list[str], bool]:
    """The first lines as the layout's encoding reads them, and whether they decoded cleanly (when
    not, as UTF-8 or GB18030 reads them, so the layout's other signs are still weighed)."""
    head = data[:65536].removeprefix(b"\xef\xbb\xbf")
    for number, encoding in enumerate((layout.encoding, "utf-8", "gb18030")):
        text = _decoded(head, encoding)
        if text is not None:
            return text.splitlines()[:200], number == 0
    return head.decode(layout.encoding, errors="replace").splitlines()[:200], False


def _header_miss(lines: list[str], layout: LayoutSpec) -> tuple[float, str]:
    wanted = [normalise_header(column) for column in layout.header_contains or ()]
    delimiter = layout.delimiter or ","
    best, at = set[str](), 0
    for number, line in enumerate(lines, start=1):
        found = set(wanted) & set(header_cells(line, delimiter))
        if len(found) > len(best):
            best, at = found, number
    missing = [name for name in wanted if name not in best]
    if not best:
        shown = "TAB" if delimiter == "\t" else delimiter
        return 0.0, f"no line holds any of its header's columns ({', '.join(wanted)}, separated by {shown!r})"
    said = f"line {at} has {len(best)} of its {len(wanted)} header columns; missing {', '.join(missing)}"
    return len(best) / len(wanted), said


def _width_miss(lines: list[str], layout: LayoutSpec) -> tuple[float, str]:
    widths = layout.widths or ()
    width = sum(widths) + layout.gap * (len(widths) - 1)
    details = [line for line in lines if line.strip()]
    if layout.summary_prefix and details:
        details = details[1:]
    if not details:
        return 0.0, "the file has no lines"
    lengths = sorted({len(line.encode(layout.encoding, errors="replace")) for line in details[:5]})
    shown = ", ".join(map(str, lengths[:3]))
    sizes = [len(line.encode(layout.encoding, errors="replace")) for line in details[:5]]
    fits = sum(1 for size in sizes if size in (width, width + layout.gap))
    if fits * 2 > len(details[:5]):
        return 0.6, f"its lines are {width} bytes, but they do not start as the layout's do"
    # lines of one width: a fixed-width file, of a layout the nearer the closer its width
    even = 0.3 * max(0.0, 1 - abs(lengths[0] - width) / width) if len(lengths) == 1 and len(details) > 1 else 0.0
    return even + 0.3 * fits / len(details[:5]), f"its lines are {width} bytes wide; this file's first are {shown}"


def _prefix_miss(lines: list[str], layout: LayoutSpec) -> tuple[float, str]:
    delimiter = layout.delimiter or ","
    summary = f"{layout.summary_prefix}{delimiter}"
    if not lines or not lines[0].startswith(summary):
        return 0.0, f"its files begin with a summary line starting {summary!r}"
    return 0.5, f"its detail lines start {layout.record_prefix}{delimiter} and have {len(layout.columns or ())} fields"


def closest_layouts(data: bytes, layouts: dict[str, LayoutSpec], top: int = 3) -> list[NearMiss]:
    """For a file no layout recognises: the layouts it came closest to, best first, each with why it
    did not fit (the header columns it lacks, the widths its lines have, the line it should begin
    with, the encoding it is not in); none when no layout fits any of it."""
    xml = data.lstrip()[:1] == b"<"
    misses = []
    for name, layout in layouts.items():
        if layout.format == "iso20022":
            kind = message_kind(data) if xml else None
            why = f"an XML document, but not a pain.002 or camt.054 message ({kind or 'none'})" if xml else "not XML"
            misses.append(NearMiss(name, 0.5 if xml else 0.0, why))
            continue
        lines, clean = _head_lines(data, layout)
        if layout.header_contains is not None:
            fit, why = _header_miss(lines, layout)
        elif layout.fixed_width:
            fit, why = _width_miss(lines, layout)
        else:
            fit, why = _prefix_miss(lines, layout)
        if not clean:
            fit, why = fit / 2, f"{why}; and the file is not valid {layout.encoding}"
        misses.append(NearMiss(name, round(fit, 2), why))
    return sorted((miss for miss in misses if miss.fit > 0), key=lambda miss: -miss.fit)[:top]
