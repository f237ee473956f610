"""The Prefect flows: one business date (nightly) and a date range (rerun).

Wiring only: the order of work is ``flows.runner``; here each stage becomes a Prefect task named
by what it does, so runs are observable in the UI, and each date publishes its summary as
artifacts (money in yuan, exceptions by type and age, a link to the workbook; no personal data).
The tasks that touch files or the database retry with growing waits; matching does not (it is
pure). A range runs each date as a subflow of its own, in order, goes on past a date that failed
and ends failed naming every one. Idempotency lives in the database (a date's facts are replaced in
one transaction), not in Prefect's cache: no task caches.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prefect import flow, task, unmapped
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import State
from pydantic import BaseModel, ConfigDict, model_validator

from flows import runner, runs
from flows.config import AppConfig, ConfigError, load_config, read_settings
from flows.locks import DateLocked
from flows.store import connect, upgrade_database
from reconcile.ingest import ParsedFile
from reconcile.intake import DiscoveredFile, assemble, files_to_read, read_file
from reconcile.masking import mask_numbers_in_text
from reconcile.money import fen_to_yuan_text
from reconcile.settings import BUSINESS_TZ, Settings

#: The most dates one rerun may cover (a quarter).
MAX_RANGE_DAYS = 92
#: Tasks that touch files or the database retry, waiting longer each time (seconds).
RETRY_DELAYS = [2.0, 10.0]


class OneLineFailures(logging.Filter):
    """Prefect logs a failed task with its traceback, whose last line is the exception's text: for
    a database error, the statement and its parameters (records, accounts). Each record of the run
    loggers keeps one line instead, the failure as :func:`flows.runner.failure_text` says it, and
    any card, ID or phone number in a message is masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = record.getMessage()
        if error is not None:
            url = os.environ.get("RECON_DATABASE_URL", "sqlite://")
            message = f"{message.split(' with exception', 1)[0]}: {runner.failure_text(error, url)}"
            record.exc_info, record.exc_text = None, None
        record.msg, record.args = mask_numbers_in_text(message), ()
        return True


for _name in ("prefect.task_runs", "prefect.flow_runs"):
    logging.getLogger(_name).addFilter(OneLineFailures())


def yesterday_in_shanghai() -> dt.date:
    return dt.datetime.now(BUSINESS_TZ).date() - dt.timedelta(days=1)


class DateRange(BaseModel):
    """The dates a rerun covers: ``first`` to ``last`` inclusive, at most :data:`MAX_RANGE_DAYS`
    of them, none after today in Asia/Shanghai."""

    model_config = ConfigDict(frozen=True)

    first: dt.date
    last: dt.date

    @model_validator(mode="after")
    def _sensible(self) -> DateRange:
        today = dt.datetime.now(BUSINESS_TZ).date()
        if self.last < self.first:
            raise ValueError(f"the range ends ({self.last}) before it starts ({self.first})")
        if self.span > MAX_RANGE_DAYS:
            raise ValueError(f"the range covers {self.span} days; at most {MAX_RANGE_DAYS} at once")
        if self.last > today:
            raise ValueError(f"{self.last} is in the future (today is {today} in Asia/Shanghai)")
        return self

    @property
    def span(self) -> int:
        return (self.last - self.first).days + 1

    def days(self) -> list[dt.date]:
        return [self.first + dt.timedelta(days=i) for i in range(self.span)]


def summary_markdown(summary: dict[str, Any]) -> str:
    """A date's summary for people: balanced or not, money in yuan, outcome counts, the files."""
    fen, held = summary["fen"], summary.get("suspense") or {}
    lines = [
        f"# Reconciliation {summary['business_date']}",
        "",
        f"**{'balanced' if summary['balanced'] else 'NOT BALANCED'}** · run `{summary['run_id']}` · "
        f"{summary['records']} records · {summary['exceptions_open']} exceptions open",
        "",
        "| money | yuan |",
        "| --- | ---: |",
        *[f"| {name} | {fen_to_yuan_text(value)} |" for name, value in fen.items()],
        *[f"| {name.replace('_', ' ')} | {fen_to_yuan_text(held[name])} |"
          for name in ("still_held", "refunded_by_hand", "applied_by_hand") if name in held],
        "",
        "| outcome | count |",
        "| --- | ---: |",
        *[f"| {code} | {count} |" for code, count in summary["outcomes"].items()],
        "",
        "| file | channel | status | rows | reason |",
        "| --- | --- | --- | ---: | --- |",
        *[f"| {f['name']} | {f['channel'] or ''} | {f['status']} | {f['rows']} | {f.get('reason') or ''} |"
          for f in summary["files"]],
    ]  # fmt: skip
    funds = summary.get("funds") or {}
    if funds.get("enabled") and funds.get("clearing"):
        verdict = "balanced" if funds.get("balanced") else "NOT BALANCED"
        lines += [
            "", f"## Funds (资金对账) as of {funds['as_of']}: {verdict}",
            "", "| channel | clearing | in window | overdue | surplus | unexplained |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            *[f"| {channel} | " + " | ".join(fen_to_yuan_text(c[k]) for k in
              ("closing_fen", "pending_fen", "overdue_fen", "surplus_fen", "unexplained_fen")) + " |"
              for channel, c in sorted(funds["clearing"].items())],
        ]  # fmt: skip
    warning = (summary.get("inbox") or {}).get("warning")
    if warning:
        lines += ["", f"**Warning**: {warning}"]
    return mask_numbers_in_text("\n".join(lines))


@task(cache_policy=NO_CACHE, name="publish-artifacts", retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS)
def publish_artifacts(summary: dict[str, Any]) -> None:
    """The summary (markdown, yuan), the open exceptions by type and age (a table of numbers) and a
    link to the workbook, each keyed by the date so the UI shows their history."""
    day = summary["business_date"]
    key = day.replace("-", "")
    create_markdown_artifact(key=f"recon-summary-{key}", markdown=summary_markdown(summary),
                             description=f"Reconciliation of {day}")  # fmt: skip
    engine = connect(load_config().database_url)
    try:
        ages = runs.open_exceptions_by_age(engine, dt.date.fromisoformat(day))
    finally:
        engine.dispose()
    create_table_artifact(key=f"recon-open-exceptions-{key}", table=ages,
                          description=f"Open exceptions after {day}, by type and age in days")  # fmt: skip
    if summary.get("workbook"):
        path = Path(summary["workbook"])
        create_link_artifact(key=f"recon-workbook-{key}", link=path.resolve().as_uri(), link_text=path.name,
                             description=f"The exception workbook of {day}")  # fmt: skip


def _touching_io(name: str, work: Callable[..., Any]) -> Any:
    """A task over files or the database: retried with growing waits when it fails."""
    return task(name=name, cache_policy=NO_CACHE, retries=len(RETRY_DELAYS), retry_delay_seconds=RETRY_DELAYS,
                retry_jitter_factor=0.5)(work)  # fmt: skip


def _read_one_file(found: DiscoveredFile, settings: Settings, day: dt.date) -> ParsedFile:
    return read_file(found, settings, day)


#: One file read and validated (pure: its bytes are in hand); mapped over a day's files, so a large
#: delivery spreads over the task runner's workers (threads, or a Dask cluster).
read_one_file = task(name="read-and-validate-file", cache_policy=NO_CACHE, task_run_name="read-{found.name}")(
    _read_one_file
)


def read_files_mapped(config: AppConfig, files: list[DiscoveredFile], day: dt.date) -> list[ParsedFile]:
    """The parse stage as a mapped task per file, put back together in the delivery's order."""
    wanted = files_to_read(files)
    futures = read_one_file.map(wanted, unmapped(config.settings), unmapped(day))
    read = {found.sha256: future.result() for found, future in zip(wanted, futures, strict=True)}
    return assemble(files, read, config.settings)


TASK_STAGES = runner.Stages(
    discover=_touching_io("discover-files", runner.discover_files),
    parse=read_files_mapped,
    load=_touching_io("load-expected-state", runner.load_expected_state),
    match=task(name="match-records", cache_policy=NO_CACHE)(runner.match_records),
    write=_touching_io("write-results", runner.write_results),
    publish=publish_artifacts,
)


def configured_task_runner() -> Any:
    """The task runner the settings name (``RECON_TASK_RUNNER``): Prefect's thread pool, or Dask —
    the cluster at ``RECON_DASK_ADDRESS``, else a local one started for the flow run. A bad setting
    falls back to threads here; every command and flow run stops on it when it loads the settings."""
    from prefect.task_runners import ThreadPoolTaskRunner

    try:
        options = read_settings()
    except ConfigError:
        return ThreadPoolTaskRunner()
    if options.task_runner != "dask":
        return ThreadPoolTaskRunner()
    from prefect_dask import DaskTaskRunner

    if options.dask_address:
        return DaskTaskRunner(address=options.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "dashboard_address": None})


TASK_RUNNER = configured_task_runner()


def _date_run_name() -> str:
    from prefect.runtime import flow_run

    day = flow_run.parameters.get("business_date") or yesterday_in_shanghai()
    return f"reconcile-{day}"


def _range_run_name() -> str:
    from prefect.runtime import flow_run

    dates = flow_run.parameters.get("dates") or {}
    first, last = (getattr(dates, "first", None), getattr(dates, "last", None)) if not isinstance(dates, dict) else (
        dates.get("first"), dates.get("last"))  # fmt: skip
    return f"rerun-{first}-to-{last}"


@flow(name="reconcile-business-date", flow_run_name=_date_run_name, task_runner=TASK_RUNNER)
def reconcile_business_date(
    business_date: dt.date | None = None, workbook: bool = True, cascade: bool = True, wait_seconds: float = 0.0
) -> dict[str, Any]:
    """Reconcile one business date (default: yesterday in Asia/Shanghai) and return its summary.

    With ``cascade``, later dates reconciled before are reconciled again afterwards; the summary's
    ``cascaded`` lists them.
    """
    config = load_config()
    upgrade_database(config.database_url)
    day = business_date or yesterday_in_shanghai()
    summaries = runner.reconcile_dates(config, [day], workbook, wait_seconds, cascade, TASK_STAGES)
    runner.raise_if_any_failed(summaries)
    summary = summaries[0]
    if len(summaries) > 1:
        summary["cascaded"] = [_brief(s) for s in summaries[1:]]
    return summary


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {k: summary.get(k) for k in ("business_date", "run_id", "status", "balanced", "error")}


@flow(name="reconcile-date-range", flow_run_name=_range_run_name, task_runner=TASK_RUNNER)
def reconcile_date_range(dates: DateRange, workbook: bool = True, wait_seconds: float = 0.0) -> list[dict[str, Any]]:
    """Reconcile every date of the range in order, each as a subflow, then every later date
    reconciled before; a date that fails does not stop the others, and the range then fails
    naming each one."""
    config = load_config()
    upgrade_database(config.database_url)
    summaries = [_date_as_subflow(day, workbook, wait_seconds) for day in dates.days()]
    cascade_wait = max(wait_seconds, runner.CASCADE_WAIT_SECONDS)
    for later in runs.later_reconciled_dates(config.database_url, dates.last):
        summaries.append(_date_as_subflow(later, workbook, cascade_wait))
    runner.raise_if_any_failed(summaries)
    return summaries


def _date_as_subflow(day: dt.date, workbook: bool, wait_seconds: float) -> dict[str, Any]:
    state: State[dict[str, Any]] = reconcile_business_date(
        business_date=day, workbook=workbook, cascade=False, wait_seconds=wait_seconds, return_state=True
    )
    outcome = state.result(raise_on_failure=False)
    if state.is_completed() and isinstance(outcome, dict):
        return outcome
    if isinstance(outcome, DateLocked):
        raise outcome  # another run holds the date: stop, as a single date does
    if isinstance(outcome, runner.DatesFailed):
        return outcome.summaries[0]
    return {"business_date": day.isoformat(), "status": "FAILED", "error": state.message or "failed"}
