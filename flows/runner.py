"""Reconciling one business date, independent of the orchestrator.

:func:`reconcile_one_date` sequences the stages under the date's write lock. The stages come in a
:class:`Stages` bundle: plain functions by default (tests, benchmarks, crash tests), Prefect tasks
when ``flows.nightly`` runs it, so the order of work is written once.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime as dt
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import polars as pl
from sqlalchemy.exc import DBAPIError

from flows import progress, runs
from flows.config import AppConfig
from flows.faults import checkpoint
from flows.locks import DateLocked, business_date_lock
from flows.stages.archive import file_away
from flows.stages.discover import Discovery, discover
from flows.stages.funds import funds_night
from flows.stages.load import load_file_history, load_state
from flows.stages.write import write_day
from flows.store import connect, database_problem
from flows.workbook import write_workbook
from reconcile.ingest import ParsedFile
from reconcile.intake import DiscoveredFile, all_outcomes, parse_files, skip_counted_elsewhere, unmapped_failures
from reconcile.masking import mask_numbers_in_text
from reconcile.matching import MatchInput, MatchResult, match_day
from reconcile.summary import is_balanced, money_by_channel, money_totals, outcome_counts, subject_counts

log = logging.getLogger("recon")
CASCADE_WAIT_SECONDS = 3600.0
WRITE_ATTEMPTS = 3


def resident_mib() -> list[int] | None:
    """This process's resident memory and its peak so far, in MiB (Linux; None elsewhere)."""
    try:
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        return [int(status["VmRSS"].split()[0]) >> 10, int(status["VmHWM"].split()[0]) >> 10]
    except (OSError, KeyError, ValueError):
        return None


def discover_files(config: AppConfig, day: dt.date) -> Discovery:
    for name in ("inbox", "archive", "quarantine"):  # folders on object storage: the date's, fetched
        if name in config.paths.remotes:
            config.paths.remotes[name].fetch(day)
    filed = (config.paths.archive / day.isoformat(), config.paths.quarantine / day.isoformat())
    return discover(config.paths.inbox / day.isoformat(), config.settings, filed)


def parse_and_validate(config: AppConfig, files: list[DiscoveredFile], day: dt.date) -> list[ParsedFile]:
    return parse_files(files, config.settings, day)


def load_expected_state(config: AppConfig, day: dt.date, parsed: list[ParsedFile]) -> MatchInput:
    engine = connect(config.database_url)
    try:
        return load_state(engine, day, parsed, config.settings)
    finally:
        engine.dispose()


def match_records(config: AppConfig, state: MatchInput) -> MatchResult:
    return match_day(state, config.settings)


def write_results(
    config: AppConfig, day: dt.date, run_id: str, outcomes: pl.DataFrame, ledger: pl.DataFrame, parsed: list[Any]
) -> dict[str, Any]:
    engine = connect(config.database_url)
    try:
        return write_day(engine, day, run_id, outcomes, ledger, parsed, dt.datetime.now(dt.UTC))
    finally:
        engine.dispose()


def publish_nothing(summary: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Stages:
    """The stages an orchestrator may wrap (retry, observe); the rules stay in ``reconcile/``."""

    discover: Callable[..., Discovery] = discover_files
    parse: Callable[..., list[ParsedFile]] = parse_and_validate
    load: Callable[..., MatchInput] = load_expected_state
    match: Callable[..., MatchResult] = match_records
    write: Callable[..., dict[str, Any]] = write_results
    publish: Callable[[dict[str, Any]], None] = publish_nothing


PLAIN = Stages()


def reconcile_dates(
    config: AppConfig,
    days: list[dt.date],
    workbook: bool = True,
    wait_seconds: float = 0.0,
    cascade: bool = True,
    stages: Stages = PLAIN,
) -> list[dict[str, Any]]:
    """Each date in order, then (with ``cascade``) every later date reconciled before, so the books
    depend only on the files received and not on the order or grouping of runs."""
    summaries = [_one_date_or_its_failure(config, day, workbook, wait_seconds, stages) for day in sorted(days)]
    if cascade and days:
        # a later date held by another run may have read the books before ours changed them:
        # wait for it, then reconcile it again
        cascade_wait = max(wait_seconds, CASCADE_WAIT_SECONDS)
        for later in runs.later_reconciled_dates(config.database_url, max(days)):
            summaries.append(_one_date_or_its_failure(config, later, workbook, cascade_wait, stages))
    return summaries


class DatesFailed(RuntimeError):
    """Some dates of a run could not be reconciled (each left as it was); the others were."""

    def __init__(self, summaries: list[dict[str, Any]]) -> None:
        self.summaries = summaries
        failed = [f"{s['business_date']} ({s['error']})" for s in summaries if s["status"] == "FAILED"]
        super().__init__(f"{len(failed)} date(s) failed: " + "; ".join(failed))


def raise_if_any_failed(summaries: list[dict[str, Any]]) -> None:
    if any(s["status"] == "FAILED" for s in summaries):
        raise DatesFailed(summaries)


def _one_date_or_its_failure(
    config: AppConfig, day: dt.date, workbook: bool, wait_seconds: float, stages: Stages
) -> dict[str, Any]:
    """A date that cannot be reconciled (an unreadable inbox, the database gone) is left as it was
    and said so; the dates after it still run. A date held by another run stops the whole run."""
    try:
        summary = reconcile_one_date(config, day, workbook, wait_seconds, stages)
        progress.stage(day, "done")
        return summary
    except DateLocked:
        raise
    except Exception as error:
        progress.stage(day, "failed")
        said = failure_text(error, config.database_url)
        log.error("%s: not reconciled: %s", day, said)
        log.debug("where it failed:\n%s", "".join(traceback.format_tb(error.__traceback__)))
        return {"business_date": day.isoformat(), "status": "FAILED", "error": said}


def failure_text(error: BaseException, url: str) -> str:
    """What a failed date says, in one line: a database error by host, database and the driver's
    first line (its statement and parameters hold records and accounts); anything else by its type
    and first line, numbers masked."""
    said = database_problem(error, url)
    if said is not None:
        return said
    lines = str(error).strip().splitlines()
    return mask_numbers_in_text(f"{type(error).__name__}: {lines[0] if lines else ''}".strip())


def reconcile_one_date(
    config: AppConfig, day: dt.date, workbook: bool = True, wait_seconds: float = 0.0, stages: Stages = PLAIN
) -> dict[str, Any]:
    """One date under its write lock: read, match, write in one transaction, then the workbook."""
    run_id = f"{day:%Y%m%d}-{uuid.uuid4().hex[:12]}"
    with business_date_lock(config.database_url, day, run_id, wait_seconds):
        engine = connect(config.database_url)
        try:
            return _reconcile_locked(config, engine, day, run_id, workbook, stages)
        except Exception as error:
            # the write is one transaction: nothing of this run was applied; never left RUNNING
            runs.fail_run(engine, run_id, failure_text(error, config.database_url))
            raise
        finally:
            engine.dispose()


def _reconcile_locked(
    config: AppConfig, engine: Any, day: dt.date, run_id: str, workbook: bool, stages: Stages
) -> dict[str, Any]:
    started = dt.datetime.now(dt.UTC)
    timings: dict[str, float] = {}
    memory: dict[str, list[int] | None] = {}  # after each stage: resident and peak MiB
    runs.start_run(engine, run_id, day, started, {"business_date": day.isoformat(), "workbook": workbook})

    clock = time.perf_counter()
    progress.stage(day, "discover")
    discovery = stages.discover(config, day)
    files = discovery.files
    timings["discover"] = time.perf_counter() - clock
    memory["discover"] = resident_mib()
    clock = time.perf_counter()
    progress.stage(day, "parse")
    parsed = stages.parse(config, files, day)
    # read: from here a file is its name and place (the archive copies it from disk), not its bytes
    files = [dataclasses.replace(f, data=b"") for f in files]
    discovery = dataclasses.replace(discovery, files=files)
    timings["parse_validate"] = time.perf_counter() - clock
    memory["parse_validate"] = resident_mib()
    log.info("%s: %d files, %d lines read", day, len(files), sum(p.rows for p in parsed))

    clock = time.perf_counter()
    progress.stage(day, "load")
    history = load_file_history(engine, day, parsed)
    parsed = skip_counted_elsewhere(parsed, history)
    state = stages.load(config, day, parsed)
    timings["load"] = time.perf_counter() - clock
    memory["load"] = resident_mib()
    clock = time.perf_counter()
    progress.stage(day, "match")
    unmapped = unmapped_failures(parsed)
    result = stages.match(config, state)
    del state  # what the date needed from the books: the matcher has it in its outcomes now
    parsed = [p.records_let_go() for p in parsed]  # and the records
    outcomes = all_outcomes(result, parsed, day, config.settings)
    ledger, pass_counts = result.ledger, result.pass_counts
    del result  # its outcomes live on, explained, in ``outcomes``
    timings["match"] = time.perf_counter() - clock
    memory["match"] = resident_mib()
    log.info("%s: matching passes %s", day, pass_counts)

    clock = time.perf_counter()
    progress.stage(day, "write")
    changes = _write_with_retry(stages, config, day, run_id, outcomes, ledger, parsed)
    checkpoint("after_commit")
    timings["write"] = time.perf_counter() - clock
    memory["write"] = resident_mib()
    # after the commit the date is reconciled: what fails from here is said, and the run still ends
    errors: list[str] = []
    clock = time.perf_counter()
    progress.stage(day, "funds")
    try:
        merchants = {p.sha256: p.merchant_id for p in parsed if p.merchant_id}
        funds = _funds_with_retry(engine, config, day, run_id, merchants)
    except Exception as error:  # derived from the committed books: the next run does it again
        funds = {"enabled": True, "balanced": False, "error": failure_text(error, config.database_url)}
        errors.append(f"funds: {funds['error']}")
    timings["funds"] = time.perf_counter() - clock
    memory["funds"] = resident_mib()
    clock = time.perf_counter()
    try:
        progress.stage(day, "archive")
        file_away(files, parsed, config.paths.archive, config.paths.quarantine, day)
        for name in ("archive", "quarantine"):
            if name in config.paths.remotes:
                config.paths.remotes[name].put_day(day)
    except OSError as error:
        errors.append(f"archive: {type(error).__name__}: {error}")
    timings["archive"] = time.perf_counter() - clock
    memory["archive"] = resident_mib()
    clock = time.perf_counter()

    # the whole book's installments by status is a scan of every installment: taken beside the
    # summary and the workbook, which do not need it, instead of before them
    counting = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="book-counts")
    counted = counting.submit(runs.installment_counts, engine)
    counting.shutdown(wait=False)
    fen = money_totals(outcomes)
    held = runs.suspense(engine, day, fen)
    records = int(outcomes.filter(pl.col("subject") == "record").height)
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
                "status": p.status,
                "reason": p.rejected_reason or p.skipped,
                "notes": list(p.notes),
                "control_totals": [dataclasses.asdict(t) | {"agrees": t.agrees} for t in p.control_totals],
                **{k: v for k, v in history[p.sha256].items() if k in ("seen_before", "replaces_sha256")},
            }
            for p in parsed
        ],
        "inbox": inbox_report(config, day, discovery),
        "failures_unmapped": unmapped,
        "records": records,
        "outcomes": outcome_counts(outcomes),
        "subjects": subject_counts(outcomes),
        "fen": fen,
        "fen_by_channel": money_by_channel(outcomes),
        # the proofs: the records' money identity, the ledger's held money against the records, and
        # (with funds reconciliation on) every clearing balance item by item
        "balanced": is_balanced(fen) and held["agrees"] and bool(funds.get("balanced", True)),
        "funds": funds,
        "suspense": held,
        "installments": {},  # filled in below, once counted
        "exceptions_open": runs.open_exception_count(engine),
        "changes": changes,
        "rows": {"records": records, "ledger": ledger.height, "passes": pass_counts},
        "workbook": None,
    }
    timings["summarise"] = time.perf_counter() - clock
    del outcomes, ledger  # summarised and written: the workbook reads what it shows from the books
    memory["summarise"] = resident_mib()
    if workbook:
        clock = time.perf_counter()
        progress.stage(day, "workbook")
        exceptions = runs.exceptions_for_workbook(engine, day)
        path = config.paths.reports / f"recon_{day:%Y%m%d}_{run_id}.xlsx"
        try:
            language = config.settings.language
            names = {c: channel.name(language) for c, channel in config.settings.channels.items()}
            written = write_workbook(path, summary, exceptions, language, names, database_id=runs.database_id(engine),
                                     settlements=runs.settlements_for_workbook(engine, day))  # fmt: skip
            summary["workbook"] = str(written)
            reports = config.paths.remotes.get("reports")
            if reports is not None:
                reports.put_files([p for p in config.paths.reports.glob(f"recon_{day:%Y%m%d}*") if p.is_file()])
                summary["workbook_url"] = f"{reports.url}/{written.name}"
        except Exception as error:  # the books are committed; the workbook can be written again
            errors.append(f"workbook: {failure_text(error, config.database_url)}")
        timings["workbook"] = time.perf_counter() - clock
        memory["workbook"] = resident_mib()
    summary["installments"] = counted.result()
    summary["errors"] = errors
    for said in errors:
        log.error("%s: after the commit: %s", day, said)
    summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    summary["memory_mib"] = memory
    runs.finish_run(engine, run_id, summary)
    stages.publish(summary)
    log.info("%s balanced=%s outcomes=%s", day, summary["balanced"], summary["outcomes"])
    return summary


def inbox_report(config: AppConfig, day: dt.date, discovery: Discovery) -> dict[str, Any]:
    """Where the date's files came from; an inbox folder missing or empty is said out loud (the
    files filed away by earlier runs still count, so the books are never wiped by it)."""
    folder = config.paths.inbox / day.isoformat()
    report: dict[str, Any] = {
        "state": discovery.inbox_state,
        "files_from_inbox": discovery.from_inbox,
        "files_from_archive": discovery.from_archive,
        "warning": None,
    }
    if discovery.inbox_state != "ok":
        what = "does not exist" if discovery.inbox_state == "missing" else "is empty"
        report["warning"] = (
            f"the inbox folder for {day.isoformat()} ({folder}) {what}: "
            f"reconciled from {discovery.from_archive} file(s) filed away by earlier runs"
        )
        log.warning("%s", report["warning"])
    return report


T = TypeVar("T")


def _retried(day: dt.date, what: str, work: Callable[[], T], transient: Callable[[DBAPIError], bool]) -> T:
    """``work`` again, up to :data:`WRITE_ATTEMPTS` times, when the database refused it in a way
    ``transient`` says a second try can get past (it wrote nothing: one transaction)."""
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        try:
            return work()
        except DBAPIError as error:
            if not transient(error) or attempt == WRITE_ATTEMPTS:
                raise
            log.warning("%s: %s refused by the database (%s), attempt %d of %d", day, what,
                        type(error.orig).__name__, attempt, WRITE_ATTEMPTS)  # fmt: skip
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def _funds_with_retry(
    engine: Any, config: AppConfig, day: dt.date, run_id: str, merchants: dict[str, str]
) -> dict[str, Any]:
    """The funds stage is derived and rewritten whole, so a try the database refused (SQLite busy
    with another run's write, a PostgreSQL deadlock) is simply made again."""
    return _retried(day, "funds stage",
                    lambda: funds_night(engine, config.settings, day, run_id, dt.datetime.now(dt.UTC), merchants),
                    lambda _error: True)  # fmt: skip


def _write_with_retry(
    stages: Stages,
    config: AppConfig,
    day: dt.date,
    run_id: str,
    outcomes: pl.DataFrame,
    ledger: pl.DataFrame,
    parsed: list[ParsedFile],
) -> dict[str, Any]:
    """The write is one transaction; if PostgreSQL aborts it for a deadlock with a run of another
    date (both touching one contract's installments), nothing was written: try again."""
    deadlocked = ("DeadlockDetected", "SerializationFailure")
    return _retried(day, "write", lambda: stages.write(config, day, run_id, outcomes, ledger, parsed),
                    lambda error: type(error.orig).__name__ in deadlocked)  # fmt: skip
