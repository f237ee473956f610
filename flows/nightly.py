"""The Prefect flows: one business date (nightly) and a date range (rerun).

Wiring only: each task is a verb, the rules live in ``reconcile/``. Idempotency lives in the
database (the date's facts are replaced in one transaction), not in Prefect's cache, so no task
caches.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from typing import Any

import polars as pl
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from sqlalchemy import update

from flows import pipeline
from flows.config import AppConfig, load_config
from flows.db import Run, table_of
from flows.store import connect, upgrade_database
from flows.workbook import write_workbook
from reconcile.matching import MatchResult, match_day
from reconcile.summary import is_balanced, money_totals, outcome_counts


def yesterday_in_shanghai() -> dt.date:
    return pipeline.shanghai_now().date() - dt.timedelta(days=1)


@task(cache_policy=NO_CACHE)
def discover_files(config: AppConfig, day: dt.date) -> list[pipeline.DiscoveredFile]:
    return pipeline.discover(config.paths.inbox / day.isoformat(), config.settings)


@task(cache_policy=NO_CACHE)
def parse_and_validate(config: AppConfig, files: list[pipeline.DiscoveredFile], day: dt.date) -> list[Any]:
    return pipeline.parse(files, config.settings, day)


@task(cache_policy=NO_CACHE)
def load_expected_state(config: AppConfig, day: dt.date, parsed: list[Any]) -> Any:
    engine = connect(config.database_url)
    try:
        return pipeline.load_state(engine, day, parsed, config.settings)
    finally:
        engine.dispose()


@task(cache_policy=NO_CACHE)
def match_records(config: AppConfig, state: Any) -> MatchResult:
    return match_day(state, config.settings)


@task(cache_policy=NO_CACHE)
def write_results(
    config: AppConfig, day: dt.date, run_id: str, outcomes: pl.DataFrame, ledger: pl.DataFrame, parsed: list[Any]
) -> dict[str, int]:
    engine = connect(config.database_url)
    try:
        return pipeline.write_day(engine, day, run_id, outcomes, ledger, parsed, dt.datetime.now(dt.UTC))
    finally:
        engine.dispose()


@task(cache_policy=NO_CACHE)
def publish_artifacts(summary: dict[str, Any]) -> None:
    key = f"recon-summary-{summary['business_date']}"
    rows = [{"outcome": code, "count": str(count)} for code, count in summary["outcomes"].items()]
    create_table_artifact(key=key, table=rows, description=f"Outcomes for {summary['business_date']}")
    fen = summary["fen"]
    create_markdown_artifact(
        key=f"recon-money-{summary['business_date']}",
        markdown="\n".join(
            [f"# Reconciliation {summary['business_date']}", "", "| total | fen |", "| --- | ---: |"]
            + [f"| {name} | {value} |" for name, value in fen.items()]
            + ["", f"balanced: **{summary['balanced']}**", f"exceptions open: {summary['exceptions_open']}"]
        ),
    )


@flow(name="reconcile-business-date", log_prints=False)
def reconcile_business_date(business_date: dt.date | None = None, workbook: bool = True) -> dict[str, Any]:
    """Reconcile one business date (default: yesterday in Asia/Shanghai) and return its summary."""
    logger = get_run_logger()
    config = load_config()
    day = business_date or yesterday_in_shanghai()
    run_id = f"{day:%Y%m%d}-{uuid.uuid4().hex[:12]}"
    started = dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}
    upgrade_database(config.database_url)
    engine = connect(config.database_url)
    with engine.begin() as conn:
        conn.execute(
            table_of(Run)
            .insert()
            .values(
                run_id=run_id,
                business_date=day,
                started_at=started,
                status="RUNNING",
                parameters={"business_date": day.isoformat(), "workbook": workbook},
            )
        )

    clock = time.perf_counter()
    files = discover_files(config, day)
    parsed = parse_and_validate(config, files, day)
    timings["read"] = time.perf_counter() - clock
    logger.info("%s: %d files, %d records read", day, len(files), sum(p.rows for p in parsed))

    clock = time.perf_counter()
    state = load_expected_state(config, day, parsed)
    result = match_records(config, state)
    outcomes = pipeline.all_outcomes(result, parsed, day, config.settings)
    timings["match"] = time.perf_counter() - clock
    logger.info("matching passes: %s", result.pass_counts)

    clock = time.perf_counter()
    changes = write_results(config, day, run_id, outcomes, result.ledger, parsed)
    pipeline.file_away(files, parsed, config.paths.archive, config.paths.quarantine, day)
    timings["write"] = time.perf_counter() - clock

    fen = money_totals(outcomes)
    summary: dict[str, Any] = {
        "business_date": day.isoformat(),
        "run_id": run_id,
        "status": "SUCCEEDED",
        "files": [
            {
                "name": p.source_file,
                "layout": p.layout,
                "channel": p.channel,
                "sha256": p.sha256,
                "rows": p.rows,
                "status": "REJECTED" if p.rejected_reason else "ACCEPTED",
                "reason": p.rejected_reason,
            }
            for p in parsed
        ],
        "records": int(outcomes.filter(pl.col("subject") == "record").height),
        "outcomes": outcome_counts(outcomes),
        "fen": fen,
        "balanced": is_balanced(fen),
        "installments": pipeline.installment_counts(engine),
        "exceptions_open": pipeline.open_exception_count(engine),
        "changes": changes,
        "workbook": None,
    }
    if workbook:
        clock = time.perf_counter()
        exceptions = pipeline.exceptions_for_workbook(engine, day)
        path = config.paths.reports / f"recon_{day:%Y%m%d}_{run_id}.xlsx"
        summary["workbook"] = str(write_workbook(path, summary, exceptions, config.settings.language))
        timings["workbook"] = time.perf_counter() - clock
    summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    with engine.begin() as conn:
        conn.execute(
            update(Run)
            .where(Run.run_id == run_id)
            .values(
                status="SUCCEEDED", finished_at=dt.datetime.now(dt.UTC), summary=summary, timings=summary["timings_s"]
            )
        )
    engine.dispose()
    publish_artifacts(summary)
    logger.info("%s balanced=%s outcomes=%s", day, summary["balanced"], summary["outcomes"])
    return summary


@flow(name="reconcile-date-range")
def reconcile_date_range(first: dt.date, last: dt.date, workbook: bool = True) -> list[dict[str, Any]]:
    """Rerun every date from ``first`` to ``last`` in order (each date is its own transaction)."""
    if last < first:
        raise ValueError(f"the range ends ({last}) before it starts ({first})")
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return [reconcile_business_date(day, workbook) for day in days]
