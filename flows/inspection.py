"""``recon inspect``: what the product makes of a file or a folder of files, for a person.

The report of each file is a plain dictionary (printed as JSON with ``--json``, unchanged in shape);
:func:`show` lays the same facts out as readable tables on a terminal. Nothing touches the
database; numbers in reasons are masked as everywhere else.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import Any

import polars as pl
from rich.console import Console
from rich.table import Table

from flows.words import grouped_yuan
from reconcile.delivery import DeliveryRejected, unpack
from reconcile.funds.classify import classify
from reconcile.funds.statements import StatementRejected, read_statement, statement_kind
from reconcile.ingest import parse_channel_file, set_aside_evidence
from reconcile.intake import STATEMENT, claim, why_unrecognised
from reconcile.masking import mask_numbers_in_text
from reconcile.money import fen_to_yuan_text
from reconcile.reader.recognition import closest_layouts
from reconcile.settings import Settings


def inspect_path(path: Path, settings: Settings, channel: str | None, day: dt.date | None) -> list[dict[str, Any]]:
    """A report per readable piece of ``path``: the file (each member of a zip), or every file
    under the folder (hidden ones left out), in name order."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not any(x.startswith(".") for x in p.parts))
        named = [(file, str(file.relative_to(path))) for file in files]
    else:
        named = [(path, path.name)]
    reports = []
    for file, name in named:
        data = file.read_bytes()
        try:
            pieces = unpack(name, data, settings.layouts, settings.max_member_bytes)
        except DeliveryRejected as rejected:
            reports.append({"file": name, "rejected": str(rejected)})
            continue
        reports.extend(inspect_piece(piece.name, piece.data, settings, channel, day) for piece in pieces)
    return reports


def inspect_piece(
    name: str, data: bytes, settings: Settings, channel: str | None, day: dt.date | None
) -> dict[str, Any]:
    """What the product makes of one file's bytes (the report ``recon inspect --json`` prints)."""
    claimed, layout_name = claim(name, data, settings)
    channel_id = channel or claimed
    report: dict[str, Any] = {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "channel": channel_id}
    if channel_id == STATEMENT:
        return _statement_report(report, name, data, settings)
    if channel_id is None or channel_id not in settings.channels:
        report["rejected"] = f"unknown channel {channel_id!r}" if channel_id else why_unrecognised(data)
        if layout_name is None:
            report["closest_layouts"] = [
                {"layout": miss.layout, "fit": miss.fit, "why": mask_numbers_in_text(miss.why)}
                for miss in closest_layouts(data, settings.layouts)
            ]
        return report
    config = settings.channels[channel_id]
    layout = settings.layouts[layout_name if layout_name in config.layouts else config.layout]
    parsed = parse_channel_file(name, data, report["sha256"], config, layout, day)
    report.update(
        layout=parsed.layout,
        business_date=parsed.business_date.isoformat() if parsed.business_date else None,
        rows=parsed.rows,
        rejected=parsed.rejected_reason,
    )
    if parsed.rejected_reason is not None:
        return report
    by_status = parsed.records.group_by("record_kind", "status").agg(
        pl.len().alias("count"), pl.col("amount_fen").sum().alias("fen")
    )
    report["by_status"] = [
        {**row, "yuan": fen_to_yuan_text(int(row["fen"]))} for row in by_status.sort("record_kind", "status").to_dicts()
    ]
    report["failure_reasons"] = dict(
        parsed.records.filter(pl.col("failure_reason").is_not_null())
        .group_by("failure_reason")
        .len()
        .sort("failure_reason")
        .iter_rows()
    )
    report["control_totals"] = [
        {"applies_to": t.applies_to, "stated_count": t.stated_count, "stated_fen": t.stated_fen,
         "counted": t.counted, "summed_fen": t.summed_fen, "agrees": t.agrees,
         **({"scope": t.scope} if t.scope else {})}
        for t in parsed.control_totals
    ]  # fmt: skip
    report["notes"] = list(set_aside_evidence([parsed], settings)[0].notes)
    report["invalid_rows"] = parsed.invalid.height
    report["first_invalid"] = parsed.invalid.head(10).select("line_no", "check", "message").to_dicts()
    return report


def _statement_report(report: dict[str, Any], name: str, data: bytes, settings: Settings) -> dict[str, Any]:
    """A statement of the collection account: its lines by credit or debit and by the channel each
    is classified to (``by_status``: kind = credit/debit, status = channel or ``nobody's``)."""
    try:
        kind, lines = read_statement(data, name, settings.funds.statement_layouts)
    except StatementRejected as error:
        return {**report, "layout": statement_kind(data, settings.funds.statement_layouts),
                "rejected": mask_numbers_in_text(str(error))}  # fmt: skip
    found = classify(lines, settings.funds).with_columns(
        record_kind=pl.when(pl.col("amount_fen") > 0).then(pl.lit("credit")).otherwise(pl.lit("debit")),
        status=pl.col("channel").fill_null("nobody's"),
    )
    by = found.group_by("record_kind", "status").agg(pl.len().alias("count"), pl.col("amount_fen").sum().alias("fen"))
    dates = found["value_date"]
    span = f"value dates {dates.min()!s} to {dates.max()!s}" if found.height else "no lines"
    shown = [{**row, "yuan": fen_to_yuan_text(int(row["fen"]))} for row in by.sort("record_kind", "status").to_dicts()]
    report.update(
        layout=kind, business_date=None, rows=lines.height, rejected=None, control_totals=[], failure_reasons={},
        by_status=shown,
        notes=[f"a statement of the collection account: {span}; balances and footer checked"],
        invalid_rows=0, first_invalid=[],
    )  # fmt: skip
    return report


def _yuan(fen: int | None) -> str:
    return "—" if fen is None else grouped_yuan(fen)


def _table(*columns: str, right: tuple[str, ...] = (), whole: tuple[str, ...] = ()) -> Table:
    """A borderless table; ``right``: numeric columns; ``whole``: columns never wrapped (file names)."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(
            column, justify="right" if column in right else "left", overflow="fold", no_wrap=column in whole
        )
    return table


def _verdict(report: dict[str, Any]) -> str:
    if report.get("rejected"):
        return "REJECTED"
    return f"ACCEPTED ({report['invalid_rows']} invalid)" if report.get("invalid_rows") else "ACCEPTED"


def show(reports: list[dict[str, Any]], folder: bool = False, console: Console | None = None) -> None:
    """Each report as a few lines and tables; a folder ends with one line per file."""
    # on a terminal the tables fit its width; piped or captured, lines are kept long rather than folded
    out = console or Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    for report in reports:
        out.rule(report["file"], align="left", style="dim")
        facts = [f"channel {report.get('channel') or '—'}", f"layout {report.get('layout') or '—'}"]
        if report.get("business_date"):
            facts.append(f"business date {report['business_date']}")
        if "rows" in report:
            facts.append(f"{report['rows']} data lines")
        out.print("  " + " · ".join(facts))
        if report.get("rejected"):
            out.print(f"  [bold red]REJECTED[/]: {report['rejected']}")
            if report.get("closest_layouts") == []:
                out.print("  no configured layout comes close to this file")
            if report.get("closest_layouts"):
                near = _table("closest layout", "fit", "why it did not fit", right=("fit",))
                for miss in report["closest_layouts"]:
                    near.add_row(miss["layout"], f"{miss['fit']:.0%}", miss["why"])
                out.print(near)
            continue
        amounts = _table("kind", "status", "lines", "yuan", right=("lines", "yuan"))
        for row in report["by_status"]:
            amounts.add_row(row["record_kind"], row["status"], f"{row['count']:,}", _yuan(int(row["fen"])))
        out.print(amounts)
        if report["control_totals"]:
            totals = _table("control total", "stated", "counted", "agrees", right=("stated", "counted"))
            for t in report["control_totals"]:
                what = t["applies_to"] + (f" ({t['scope']})" if t.get("scope") else "")
                stated = f"{'—' if t['stated_count'] is None else t['stated_count']} / {_yuan(t['stated_fen'])}"
                counted = f"{t['counted']} / {_yuan(t['summed_fen'])}"
                totals.add_row(what, stated, counted, "yes" if t["agrees"] else "[bold red]NO[/]")
            out.print(totals)
        if report["failure_reasons"]:
            out.print("  failures: " + ", ".join(f"{k} {v}" for k, v in report["failure_reasons"].items()))
        for note in report["notes"]:
            out.print(f"  note: {note}")
        if report["invalid_rows"]:
            out.print(f"  [bold]{report['invalid_rows']} invalid line(s)[/], the first:")
            bad = _table("line", "check", "why", right=("line",))
            for row in report["first_invalid"]:
                bad.add_row(str(row["line_no"]), row["check"], row["message"])
            out.print(bad)
    if folder:
        out.rule("all files", align="left", style="dim")
        every = _table("file", "channel", "layout", "date", "lines", "result", right=("lines",), whole=("file",))
        for report in reports:
            every.add_row(
                report["file"], report.get("channel") or "—", report.get("layout") or "—",
                report.get("business_date") or "—", str(report.get("rows", "—")), _verdict(report),
            )  # fmt: skip
        out.print(every)
