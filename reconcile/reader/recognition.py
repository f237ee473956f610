"""Recognition: which layout a file's content shows (a header, a summary line and detail lines, the
widths of a fixed-width line, an ISO 20022 namespace), from its first 64 KiB.
"""

from __future__ import annotations

import re

from reconcile.iso20022 import message_kind
from reconcile.layouts import LayoutSpec
from reconcile.reader.lines import normalise_header


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
