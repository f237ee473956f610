"""The Prefect flows: one business date (nightly) and a date range (rerun).

Wiring only: the order of work is ``flows.runner``; here each stage becomes a Prefect task so
runs are observable in the UI and publish their summary as artifacts. Idempotency lives in the
database (a date's facts are replaced in one transaction), not in Prefect's cache: no task caches.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows import runner
from flows.config import load_config
from flows.store import upgrade_database
from reconcile.masking import mask_numbers_in_text
from reconcile.settings import BUSINESS_TZ


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


@task(cache_policy=NO_CACHE, name="publish-artifacts")
def publish_artifacts(summary: dict[str, Any]) -> None:
    day = summary["business_date"]
    rows = [{"outcome": code, "count": str(count)} for code, count in summary["outcomes"].items()]
    create_table_artifact(key=f"recon-outcomes-{day}", table=rows, description=f"Outcomes for {day}")
    fen = summary["fen"]
    create_markdown_artifact(
        key=f"recon-money-{day}",
        markdown="\n".join(
            [f"# Reconciliation {day}", "", "| total | fen |", "| --- | ---: |"]
            + [f"| {name} | {value} |" for name, value in fen.items()]
            + ["", f"balanced: **{summary['balanced']}**", f"exceptions open: {summary['exceptions_open']}"]
        ),
    )


TASK_STAGES = runner.Stages(
    discover=task(name="discover-files", cache_policy=NO_CACHE)(runner.discover_files),
    parse=task(name="parse-and-validate", cache_policy=NO_CACHE)(runner.parse_and_validate),
    load=task(name="load-expected-state", cache_policy=NO_CACHE)(runner.load_expected_state),
    match=task(name="match-records", cache_policy=NO_CACHE)(runner.match_records),
    write=task(name="write-results", cache_policy=NO_CACHE)(runner.write_results),
    publish=publish_artifacts,
)


@flow(name="reconcile-business-date")
def reconcile_business_date(
    business_date: dt.date | None = None, workbook: bool = True, cascade: bool = True, wait_seconds: float = 0.0
) -> dict[str, Any]:
    """Reconcile one business date (default: yesterday in Asia/Shanghai) and return its summary.

    With ``cascade``, later dates reconciled before are reconciled again afterwards.
    """
    config = load_config()
    upgrade_database(config.database_url)
    day = business_date or yesterday_in_shanghai()
    summaries = runner.reconcile_dates(config, [day], workbook, wait_seconds, cascade, TASK_STAGES)
    runner.raise_if_any_failed(summaries)
    summary = summaries[0]
    if len(summaries) > 1:
        summary["cascaded"] = [s["run_id"] for s in summaries[1:]]
    return summary


@flow(name="reconcile-date-range")
def reconcile_date_range(
    first: dt.date, last: dt.date, workbook: bool = True, wait_seconds: float = 0.0
) -> list[dict[str, Any]]:
    """Reconcile every date from ``first`` to ``last`` in order, then every later reconciled date."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    config = load_config()
    upgrade_database(config.database_url)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    summaries = runner.reconcile_dates(config, days, workbook, wait_seconds, True, TASK_STAGES)
    runner.raise_if_any_failed(summaries)  # the other dates were reconciled; the flow ends failed naming these
    return summaries
