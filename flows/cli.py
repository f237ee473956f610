"""The ``recon`` command line. Every command reads configuration from the environment
(see ``flows/config.py``); ``--json`` prints machine-readable output."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import typer

app = typer.Typer(
    help="Auto-debit repayment reconciliation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "sample_data"


def _quiet_prefect() -> None:
    import logging

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    if os.environ.get("RECON_LOG_LEVEL", "WARNING").upper() not in ("DEBUG", "INFO"):
        # the task and flow run logs still reach the Prefect server; the command says the outcome itself
        for name in ("prefect.task_runs", "prefect.flow_runs"):
            logging.getLogger(name).propagate = False


def _language(asked: str | None, configured: str) -> str:
    """The language of a workbook or a trail: ``--lang``, else ``RECON_LANGUAGE``."""
    language = asked or configured
    if language not in ("zh", "en"):
        raise typer.BadParameter(f"{language!r} is not a language this product writes: zh or en", param_hint="--lang")
    return language


def _parse_date(text: str | None) -> dt.date | None:
    if text is None:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date YYYY-MM-DD") from None


#: Exit status of a run whose inbox folder for a date was missing or empty (its books were kept
#: from the files filed away by earlier runs, but someone should know tonight's delivery is absent).
INBOX_NOT_OK = 5


#: Exit status of a run in which a date could not be reconciled (left as it was), or whose
#: archive or workbook failed after its books were committed.
DATE_FAILED = 6


def _report_failed(summaries: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summaries, ensure_ascii=False, indent=2, default=str))
    for summary in summaries:
        if summary["status"] == "FAILED":
            typer.secho(f"{summary['business_date']}: NOT reconciled (left as it was): {summary['error']}",
                        err=True, fg=typer.colors.RED)  # fmt: skip
        elif not as_json:
            _print_summary(summary, False)


def _errors_after_commit(summaries: list[dict[str, Any]]) -> bool:
    said = False
    for summary in summaries:
        for error in summary.get("errors") or []:
            typer.secho(f"{summary['business_date']}: reconciled, but {error}", err=True, fg=typer.colors.RED)
            said = True
    return said


def _inbox_not_ok(summaries: list[dict[str, Any]]) -> bool:
    for summary in summaries:
        if (summary.get("inbox") or {}).get("state", "ok") != "ok":
            typer.secho(f"{summary['business_date']}: {summary['inbox']['warning']}", err=True, fg=typer.colors.YELLOW)
            return True
    return False


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, ensure_ascii=False, indent=2, default=str))
        return
    fen = summary["fen"]
    typer.echo(f"business date {summary['business_date']}  run {summary['run_id']}  {summary['status']}")
    warning = (summary.get("inbox") or {}).get("warning")
    if warning:
        typer.secho(f"  WARNING: {warning}", err=True, fg=typer.colors.YELLOW)
    for item in summary["files"]:
        reason = f" — {item['reason']}" if item.get("reason") else ""
        seen = " (seen before)" if item.get("seen_before") else ""
        if item.get("replaces_sha256"):
            seen = f" (new version, replaces {item['replaces_sha256'][:12]})"
        typer.echo(f"  file {item['name']} [{item['channel']}] {item['status']} rows={item['rows']}{seen}{reason}")
        for note in item.get("notes", []):
            typer.echo(f"      {note}")
    unmapped = summary.get("failures_unmapped", {})
    if unmapped.get("count"):
        typer.echo(f"  failures no table maps (counted as OTHER): {unmapped['count']} {unmapped['raw']}")
    typer.echo(f"  records {summary['records']}")
    for code, count in summary["outcomes"].items():
        typer.echo(f"    {code:<18} {count}")
    typer.echo("  fen " + " ".join(f"{k}={v}" for k, v in fen.items()) + f"  balanced={summary['balanced']}")
    typer.echo(f"  installments {summary['installments']}  open exceptions {summary['exceptions_open']}")
    _print_funds(summary.get("funds") or {})
    if summary.get("workbook"):
        typer.echo(f"  workbook {summary['workbook']}")
    cascaded = summary.get("cascaded") or []
    if cascaded:
        said = ", ".join(f"{c['business_date']} ({'balanced' if c.get('balanced') else c.get('status')})"
                         for c in cascaded)  # fmt: skip
        typer.echo(f"  later dates reconciled again (their books depend on this one): {said}")


def _print_funds(funds: dict[str, Any]) -> None:
    """资金对账 in a few lines: each channel's clearing balance and what it is made of."""
    if not funds.get("enabled"):
        if funds.get("why"):
            typer.echo(f"  funds: {funds['why']}")
        return
    if funds.get("error"):
        typer.secho(f"  funds: not reconciled ({funds['error']})", err=True, fg=typer.colors.RED)
        return
    counts = " ".join(f"{code}={n}" for code, n in (funds.get("outcomes") or {}).items())
    typer.echo(f"  funds as of {funds.get('as_of')}  balanced={funds.get('balanced')}  {counts}")
    for channel, c in sorted((funds.get("clearing") or {}).items()):
        typer.echo(f"    {channel:<10} clearing {c['closing_fen'] / 100:,.2f} = in window {c['pending_fen'] / 100:,.2f}"
                   f" + overdue {c['overdue_fen'] / 100:,.2f} − surplus {c['surplus_fen'] / 100:,.2f}"
                   f" (unexplained {c['unexplained_fen'] / 100:,.2f})")  # fmt: skip
    for code, n in (funds.get("exceptions_by_outcome") or {}).items():
        typer.echo(f"    {code:<26} {n}")


STAGES_SHOWN = ("discover", "parse", "load", "match", "write", "funds", "archive", "workbook")


@contextmanager
def _showing_progress() -> Iterator[None]:
    """Each date and its stages on the terminal (stderr) while a run works; nothing elsewhere."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from flows import progress

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    bars = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console,
                    transient=False)  # fmt: skip
    shown: dict[Any, Any] = {}

    def on_stage(day: Any, stage: str) -> None:
        if day not in shown:
            shown[day] = bars.add_task(f"{day}  {stage}", total=len(STAGES_SHOWN))
        task = shown[day]
        if stage == "done":
            bars.update(task, description=f"{day}  done", completed=len(STAGES_SHOWN))
        elif stage == "failed":
            bars.update(task, description=f"[red]{day}  failed[/red]")
            bars.stop_task(task)
        else:
            position = STAGES_SHOWN.index(stage) if stage in STAGES_SHOWN else 0
            bars.update(task, description=f"{day}  {stage}", completed=position)

    stop = progress.listen(on_stage)
    try:
        with bars:
            yield
    finally:
        stop()


@app.command()
def init() -> None:
    """Create the database or upgrade it to the newest schema."""
    from flows.config import load_config
    from flows.store import safe_url, upgrade_database

    config = load_config()  # the settings and the channel file are checked here, every problem at once
    upgrade_database(config.database_url)
    settings = config.settings
    typer.echo(f"channels checked: {len(settings.channels)} channels, {len(settings.layouts)} layouts")
    typer.echo(f"database ready: {safe_url(config.database_url)}")


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", help="folder for the snapshot, inbox/<day>/ and expected.csv"),
    date: str | None = typer.Option(None, "--date", help="one business date YYYY-MM-DD"),
    first: str | None = typer.Option(None, "--from", help="first date of a range"),
    last: str | None = typer.Option(None, "--to", help="last date of a range"),
    loans: int = typer.Option(1000, "--loans", min=1, help="loans due over the days"),
    seed: int = typer.Option(1, "--seed"),
    attempts: int = typer.Option(
        1,
        "--attempts",
        min=1,
        help="debit attempts per due installment: each extra one is an earlier failed retry (余额不足) "
        "on the banks, whose files list failures (a month-end day: about 5)",
    ),
    history: bool = typer.Option(
        True,
        "--history/--no-history",
        help="the snapshot says what the installments due before the day have had paid: most on time, "
        "a few late, about 5% left open (overdue on the first run); --no-history: nothing paid, an onboarding",
    ),
    wallet: str = typer.Option(
        "alipay",
        "--wallet",
        help="who collects the wallet share of the book: alipay (its business bill), wechat (WeChat Pay's trade "
        "bill instead) or unionpay (UnionPay's zipped clearing files)",
    ),
    statements: bool = typer.Option(
        False,
        "--statements/--no-statements",
        help="also the collection account's statements (a 招商银行 download a day: each channel's payouts on the "
        "first working day after each date, weekends and holidays lumped by the wallet, one payout short, one "
        "stranger's deposit) and their truth, expected_funds.csv; reconcile them with RECON_FUNDS_FROM",
    ),
) -> None:
    """Write a synthetic day (or days) with every outcome and its ground truth.

    By default a steady night: the book's earlier installments come paid in the snapshot.
    """
    from flows.importer import write_snapshot
    from reconcile.synthetic import WALLETS, generate_days

    day = _parse_date(date)
    start, end = (_parse_date(first), _parse_date(last)) if day is None else (day, day)
    if start is None or end is None:
        raise typer.BadParameter("give --date, or --from and --to")
    if wallet not in WALLETS:
        raise typer.BadParameter(f"one of {', '.join(WALLETS)}, not {wallet!r}", param_hint="--wallet")
    clock = time.perf_counter()
    try:
        days = generate_days(start, end, loans, seed, history=history, attempts=attempts, wallet=wallet)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--attempts") from None
    write_snapshot(out / "snapshot", days.loans, days.installments, days.instructions)
    _write_inbox(out / "inbox", days.files)
    days.expected.write_csv(out / "expected.csv")
    said = ""
    if statements:
        from reconcile.funds.synthetic import settlement_statements

        owed = settlement_statements(days, channels=(wallet, "icbc"), short=_short_payout(days, wallet),
                                     unexpected_on=end)  # fmt: skip
        _write_inbox(out / "inbox", owed.files)
        owed.truth.write_csv(out / "expected_funds.csv")
        said = f", {len(owed.files)} statement(s) (funds truth: expected_funds.csv)"
    records = days.expected.filter(pl.col("subject") == "record").height
    shape = f"{attempts} attempt(s) per due installment, {'paid history' if history else 'no history'}"
    typer.echo(
        f"generated {len(days.files)} day(s), {days.loans.height} loans, {days.instructions.height} "
        f"instructions, {records} records ({shape}){said} in {time.perf_counter() - clock:.1f}s → {out}"
    )


def _write_inbox(inbox: Path, files: dict[dt.date, dict[str, bytes]]) -> None:
    """Each date's files in ``inbox/YYYY-MM-DD/``."""
    for business_date, named in files.items():
        folder = inbox / business_date.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in named.items():
            (folder / name).write_bytes(data)


def _short_payout(days: Any, wallet: str) -> tuple[str, dt.date, int] | None:
    """The bank's payout of the first working day of the range, made 1.00 short (a proposal)."""
    import chinese_calendar

    bank_days = sorted(set(days.lines.filter(pl.col("channel") == "icbc")["day"].to_list()))
    working = [d for d in bank_days if chinese_calendar.is_workday(d)]
    return ("icbc", working[0], 100) if working else None


@app.command("import-expected")
def import_expected(
    folder: Path = typer.Argument(..., help="folder with loans.csv, instructions.csv[, installments.csv]"),
) -> None:
    """Load a servicing snapshot (all or nothing; importing it again changes nothing)."""
    from flows.config import load_config
    from flows.importer import SnapshotRejected, import_snapshot
    from flows.store import connect, upgrade_database

    config = load_config()
    upgrade_database(config.database_url)
    engine = connect(config.database_url)
    try:
        counts = import_snapshot(engine, folder)
    except (SnapshotRejected, FileNotFoundError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"imported {counts.loans} loans, {counts.installments} installments, {counts.instructions} instructions")


PREFECT_HELP = "run as a Prefect flow (default; the server at PREFECT_API_URL, else a temporary one) or without"


def _one_date(day: Any, workbook: bool, wait: float, prefect: bool) -> dict[str, Any]:
    """One date through the Prefect flow, or the same stages without Prefect (no server, no
    artifacts: a quick local check)."""
    if prefect:
        from flows.nightly import reconcile_business_date

        return dict(reconcile_business_date(day, workbook, wait_seconds=wait))
    from flows import runner
    from flows.config import load_config
    from flows.nightly import yesterday_in_shanghai
    from flows.store import upgrade_database

    config = load_config()
    upgrade_database(config.database_url)
    summaries = runner.reconcile_dates(config, [day or yesterday_in_shanghai()], workbook, wait)
    runner.raise_if_any_failed(summaries)
    summary = summaries[0]
    if len(summaries) > 1:
        summary["cascaded"] = [{k: s.get(k) for k in ("business_date", "run_id", "status", "balanced")}
                               for s in summaries[1:]]  # fmt: skip
    return summary


@app.command()
def run(
    date: str | None = typer.Option(None, "--date", help="business date (default: yesterday, Asia/Shanghai)"),
    as_json: bool = typer.Option(False, "--json", help="print the run summary as JSON"),
    workbook: bool = typer.Option(True, "--workbook/--no-workbook"),
    wait: float = typer.Option(0.0, "--wait", min=0, help="seconds to wait if another run holds the date"),
    prefect: bool = typer.Option(True, "--prefect/--no-prefect", help=PREFECT_HELP),
) -> None:
    """Reconcile one business date (then every later date already reconciled)."""
    _quiet_prefect()
    from flows.locks import DateLocked
    from flows.runner import DatesFailed

    try:
        with _showing_progress():
            summary = _one_date(_parse_date(date), workbook, wait, prefect)
    except DateLocked as locked:
        typer.echo(str(locked), err=True)
        raise typer.Exit(4) from None
    except DatesFailed as failed:
        _report_failed(failed.summaries, as_json)
        raise typer.Exit(DATE_FAILED) from None
    _print_summary(summary, as_json)
    if not summary["balanced"]:
        raise typer.Exit(3)
    if _errors_after_commit([summary]):
        raise typer.Exit(DATE_FAILED)
    if _inbox_not_ok([summary]):
        raise typer.Exit(INBOX_NOT_OK)


@app.command()
def rerun(
    first: str = typer.Option(..., "--from"),
    last: str = typer.Option(..., "--to"),
    as_json: bool = typer.Option(False, "--json"),
    prefect: bool = typer.Option(True, "--prefect/--no-prefect", help=PREFECT_HELP),
) -> None:
    """Reconcile every date of a range again."""
    _quiet_prefect()
    from pydantic import ValidationError

    from flows.nightly import DateRange, reconcile_date_range

    start, end = _parse_date(first), _parse_date(last)
    assert start is not None and end is not None
    try:
        dates = DateRange(first=start, last=end)
    except ValidationError as error:
        raise typer.BadParameter("; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors()),
                                 param_hint="--from/--to") from None  # fmt: skip
    from flows.locks import DateLocked
    from flows.runner import DatesFailed

    try:
        with _showing_progress():
            if prefect:
                summaries = reconcile_date_range(dates)
            else:
                from flows import runner
                from flows.config import load_config

                summaries = runner.reconcile_dates(load_config(), dates.days(), True)
                runner.raise_if_any_failed(summaries)
    except DateLocked as locked:
        typer.echo(str(locked), err=True)
        raise typer.Exit(4) from None
    except DatesFailed as failed:
        _report_failed(failed.summaries, as_json)
        raise typer.Exit(DATE_FAILED) from None
    if as_json:
        typer.echo(json.dumps(summaries, ensure_ascii=False, indent=2, default=str))
    else:
        for summary in summaries:
            if summary["business_date"] > end.isoformat():
                typer.echo(f"(reconciled again because it comes after the range: {summary['business_date']})")
            _print_summary(summary, False)
    if not all(s["balanced"] for s in summaries):
        raise typer.Exit(3)
    if _errors_after_commit(summaries):
        raise typer.Exit(DATE_FAILED)
    if _inbox_not_ok(summaries):
        raise typer.Exit(INBOX_NOT_OK)


@app.command()
def demo(as_json: bool = typer.Option(False, "--json")) -> None:
    """Load the sample day, run it and write the workbook, on the embedded database."""
    _quiet_prefect()
    import shutil

    from flows.config import load_config

    sample_day = (SAMPLE_DATA / "demo" / "business_date.txt").read_text().strip()
    # funds reconciliation follows the sample day's money (in transit: its payouts come the day after)
    os.environ.setdefault("RECON_FUNDS_FROM", sample_day)
    config = load_config()
    inbox = config.paths.inbox / sample_day
    inbox.mkdir(parents=True, exist_ok=True)
    for source in sorted((SAMPLE_DATA / "demo" / "inbox" / sample_day).iterdir()):
        if not (inbox / source.name).exists():
            shutil.copy2(source, inbox / source.name)
    import_expected(SAMPLE_DATA / "demo" / "snapshot")
    run(date=sample_day, as_json=as_json, workbook=True, wait=0.0)


@app.command()
def deploy(
    worker_hint: bool = typer.Option(True, "--hint/--no-hint", help="say how to start a worker afterwards"),
) -> None:
    """Deploy the nightly and the rerun flows (prefect.yaml) to the Prefect server at
    PREFECT_API_URL, creating the process work pool first when it is missing. The nightly run's
    time is RECON_NIGHTLY_AT (Asia/Shanghai); the pool is RECON_WORK_POOL; the worker reads the
    settings file in use now (RECON_SETTINGS_FILE, or recon.env here)."""
    import subprocess

    from flows.config import read_settings, settings_file

    options = read_settings()
    api = os.environ.get("PREFECT_API_URL")
    if not api:
        typer.secho("PREFECT_API_URL is not set: start a server (`prefect server start`) and export "
                    "PREFECT_API_URL=http://127.0.0.1:4200/api", err=True, fg=typer.colors.RED)  # fmt: skip
        raise typer.Exit(2)
    prefect = str(Path(sys.executable).with_name("prefect"))
    project = Path(__file__).resolve().parent.parent
    source = settings_file(os.environ)
    env = {
        **os.environ,
        "RECON_WORK_POOL": options.work_pool,
        "RECON_NIGHTLY_CRON": f"{options.nightly_at.minute} {options.nightly_at.hour} * * *",
        "RECON_SETTINGS_FILE": str(source.resolve()) if source else "",
    }
    pool = options.work_pool
    known = subprocess.run([prefect, "work-pool", "inspect", pool], env=env, capture_output=True, text=True)
    if known.returncode != 0:
        made = subprocess.run([prefect, "work-pool", "create", pool, "--type", "process"], env=env,
                              capture_output=True, text=True)  # fmt: skip
        if made.returncode != 0:
            typer.secho(f"could not create work pool {pool!r}: {made.stderr.strip() or made.stdout.strip()}",
                        err=True, fg=typer.colors.RED)  # fmt: skip
            raise typer.Exit(2)
        typer.echo(f"work pool {pool!r} created (process)")
    done = subprocess.run([prefect, "--no-prompt", "deploy", "--all"], cwd=project, env=env, capture_output=True,
                          text=True)  # fmt: skip
    if done.returncode != 0:
        typer.secho(f"prefect deploy failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}", err=True,
                    fg=typer.colors.RED)  # fmt: skip
        raise typer.Exit(2)
    typer.echo(f"deployed reconcile-business-date/reconcile-nightly (daily at {options.nightly_at:%H:%M} "
               f"Asia/Shanghai) and reconcile-date-range/reconcile-rerun to {api}, pool {pool!r}")  # fmt: skip
    typer.echo(f"the worker runs the flows in {project}")
    typer.echo(f"settings for the worker: {env['RECON_SETTINGS_FILE'] or project / 'recon.env'}")
    if worker_hint:
        typer.echo(f"start a worker: {prefect} worker start --pool {pool}")


@app.command()
def inspect(
    path: Path = typer.Argument(..., exists=True, help="a channel file (or a zip of them), or a folder of them"),
    date: str | None = typer.Option(None, "--date", help="the business date it would be filed under"),
    channel: str | None = typer.Option(None, "--channel", help="the channel (default: recognised by content)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """What the product makes of a file, or of every file in a folder, without touching the database:
    layout, business date, counts and yuan by kind and status, control totals, first invalid lines,
    or why it is refused; for a file nothing recognises, the closest layouts and why each did not fit."""
    from flows.config import load_config
    from flows.inspection import inspect_path, show

    settings = load_config().settings
    reports = inspect_path(path, settings, channel, _parse_date(date))
    if as_json:
        single = path.is_file() and len(reports) == 1
        typer.echo(json.dumps(reports[0] if single else reports, ensure_ascii=False, indent=2))
    else:
        show(reports, folder=path.is_dir())
    if any(report.get("rejected") for report in reports):
        raise typer.Exit(2)


@app.command()
def report(
    date: str = typer.Option(..., "--date", help="business date YYYY-MM-DD"),
    lang: str | None = typer.Option(None, "--lang", help="zh (default: RECON_LANGUAGE) or en"),
    out: Path | None = typer.Option(None, "--out", help="where to write it (default: the reports folder)"),
) -> None:
    """Write a date's workbook again from the database (its last successful run)."""
    from flows import runs
    from flows.config import load_config
    from flows.store import connect
    from flows.workbook import write_workbook
    from reconcile.summary import is_balanced

    day = _parse_date(date)
    assert day is not None
    config = load_config()
    language = _language(lang, config.settings.language)
    engine = connect(config.database_url)
    try:
        summary = runs.latest_summary(engine, day)
        if summary is None:
            typer.secho(f"{day}: not reconciled yet (no successful run): run `recon run --date {day}`", err=True,
                        fg=typer.colors.RED)  # fmt: skip
            raise typer.Exit(2)
        exceptions = runs.exceptions_for_workbook(engine, day)
        settlements = runs.settlements_for_workbook(engine, day)
        database_id = runs.database_id(engine)
        # held money as the ledger has it now: reviewers may have refunded or applied some since the run
        summary["suspense"] = runs.suspense(engine, day, summary["fen"])
        funds_balanced = bool((summary.get("funds") or {}).get("balanced", True))
        summary["balanced"] = is_balanced(summary["fen"]) and summary["suspense"]["agrees"] and funds_balanced
    finally:
        engine.dispose()
    names = {c: channel.name(language) for c, channel in config.settings.channels.items()}
    path = out or config.paths.reports / f"recon_{day:%Y%m%d}_{summary['run_id']}_{language}.xlsx"
    written = write_workbook(path, summary, exceptions, language, names, current=out is None, database_id=database_id,
                             settlements=settlements)  # fmt: skip
    reports = config.paths.remotes.get("reports")
    if reports is not None and out is None:  # the reports folder is on object storage: put the new ones there
        reports.put_files([p for p in config.paths.reports.glob(f"recon_{day:%Y%m%d}*") if p.is_file()])
    acting = exceptions.filter(pl.col("severity") != "LOW").height
    typer.echo(f"{day}: workbook {written} ({acting} exceptions to act on)")


@app.command("review-import")
def review_import(
    workbook: Path = typer.Argument(..., help="the reviewed workbook (.xlsx) this product wrote"),
    reviewer: str = typer.Option(..., "--reviewer", help="who imports it (recorded in the audit)"),
) -> None:
    """Apply the resolutions of a reviewed workbook, all or nothing, with an audit record; the
    workbook is refused whole, naming every problem's sheet and cell. Importing it again changes nothing."""
    from flows.config import load_config
    from flows.review import ReviewRefused, apply_decisions, read_decisions
    from flows.store import connect
    from reconcile.money import fen_to_yuan_text

    if not workbook.is_file():
        typer.secho(f"{workbook}: no such file", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    config = load_config()
    names = {lang: {c: ch.name(lang) for c, ch in config.settings.channels.items()} for lang in ("zh", "en")}
    engine = connect(config.database_url)
    try:
        order = config.settings.allocation_order
        sha, day, decisions = read_decisions(workbook, engine, names, order)
        done = apply_decisions(engine, sha, day, decisions, reviewer.strip() or "unknown", order)
    except ReviewRefused as refused:
        for problem in refused.problems:
            typer.secho(problem, err=True, fg=typer.colors.RED)
        typer.secho(f"{workbook.name}: refused, {refused}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(
        f"{workbook.name} ({day}, sha256 {sha[:12]}): {done.applied} resolution(s) applied, "
        f"{done.unchanged} already so, {done.decided} decided in all"
    )
    for code, fen in sorted(done.moved_fen.items()):
        typer.echo(f"  {code}: {fen_to_yuan_text(fen)} yuan moved out of suspense through the ledger")


@app.command()
def status(
    contract_no: str,
    lang: str | None = typer.Option(None, "--lang", help="zh (default: RECON_LANGUAGE) or en"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """A contract's trail (customer service): the schedule and what each part has had paid, every
    debit instruction with the channel's result, the ledger, held money and open exceptions; money
    in yuan, times in Asia/Shanghai, personal data masked. The number's case and spaces are ignored."""
    from flows.config import load_config
    from flows.contract import contract_report, report_lines, word
    from flows.store import connect

    config = load_config()
    language = _language(lang, config.settings.language)
    engine = connect(config.database_url)
    try:
        with engine.connect() as conn:
            report = contract_report(conn, contract_no, language)
    finally:
        engine.dispose()
    if report is None:
        typer.echo(f"{word('no_contract', language)} {contract_no.strip()!r}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    typer.echo("\n".join(report_lines(report, language)))


#: Exit status when the database cannot be reached or is not initialised.
DATABASE_UNAVAILABLE = 7


def main() -> None:
    """The ``recon`` command: a database that cannot be used is one clear line, not a traceback.
    ``RECON_LOG_LEVEL`` (e.g. ``DEBUG``) says how much of the run's log goes to stderr (default:
    warnings)."""
    import logging

    from flows.config import ConfigError, load_config, read_settings
    from flows.store import database_problem

    try:  # every setting checked once, before any command: each bad value named
        level = read_settings().log_level
    except ConfigError as error:
        typer.secho(f"configuration: {error}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("recon").setLevel(level)  # Prefect configures the root logger its own way

    try:
        app()  # exits with the command's status; errors that are not the command line's come here
    except ConfigError as error:
        typer.secho(f"configuration: {error}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except Exception as error:
        said = database_problem(error, load_config().database_url)
        if said is None:
            raise
        typer.secho(said, err=True, fg=typer.colors.RED)
        sys.exit(DATABASE_UNAVAILABLE)


if __name__ == "__main__":  # pragma: no cover
    main()
