"""The Prefect flows under Prefect's test harness (started once per session): the nightly flow's
default date and name, the rerun's parameters checked, a failed date inside a range, a channel's
file missing and then arriving late, and the artifacts a run publishes."""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from flows import nightly, runner
from flows.nightly import DateRange, reconcile_business_date, reconcile_date_range
from reconcile.money import fen_to_yuan_text
from reconcile.settings import BUSINESS_TZ
from tests.books import deliver, imported_book

pytestmark = pytest.mark.slow
D1, D2, D3 = dt.date(2026, 11, 25), dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def _flow_run(state: Any) -> Any:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(state.state_details.flow_run_id)


def _missing_channels(url: str) -> set[str]:
    """The channels whose file is missing for the date (open MISSING_FILE exceptions)."""
    from sqlalchemy import create_engine, select

    from flows.db import ExceptionItem

    engine = create_engine(url)
    with engine.connect() as conn:
        found = conn.execute(select(ExceptionItem.channel).where(
            ExceptionItem.outcome == "MISSING_FILE", ExceptionItem.status == "OPEN", ExceptionItem.business_date == D3
        )).scalars().all()  # fmt: skip
    engine.dispose()
    return set(found)


def _no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    """The flow's tasks as they are, without the waits between retries (a test need not sleep)."""
    stages = nightly.TASK_STAGES
    quick = {name: getattr(stages, name).with_options(retry_delay_seconds=0)
             for name in ("discover", "load", "write")}  # fmt: skip
    monkeypatch.setattr(nightly, "TASK_STAGES", replace(stages, **quick))


def test_the_range_is_checked_before_anything_runs() -> None:
    today = dt.datetime.now(BUSINESS_TZ).date()
    assert DateRange(first=D1, last=D3).days() == [D1, D2, D3]
    cases = {
        (D3, D1): "the range ends (2026-11-25) before it starts (2026-11-27)",
        (D1, D1 + dt.timedelta(days=92)): "the range covers 93 days; at most 92 at once",
        (today, today + dt.timedelta(days=1)): "is in the future",
    }
    for (first, last), said in cases.items():
        with pytest.raises(ValidationError, match=said.replace("(", r"\(").replace(")", r"\)")):
            DateRange(first=first, last=last)
    assert DateRange(first=today - dt.timedelta(days=91), last=today).span == 92


def test_the_nightly_flow_defaults_to_yesterday_in_shanghai_and_is_named_after_its_date(
    prefect_harness: None, recon_env: dict[str, str]
) -> None:
    state = reconcile_business_date(return_state=True)
    yesterday = dt.datetime.now(BUSINESS_TZ).date() - dt.timedelta(days=1)
    summary = state.result()
    assert summary["business_date"] == yesterday.isoformat()
    assert _flow_run(state).name == f"reconcile-{yesterday}"


def test_the_rerun_flow_refuses_bad_parameters(prefect_harness: None, recon_env: dict[str, str]) -> None:
    from prefect.exceptions import ParameterTypeError

    with pytest.raises(ParameterTypeError, match="before it starts"):
        reconcile_date_range(dates={"first": D3.isoformat(), "last": D1.isoformat()})  # type: ignore[arg-type]


def test_a_failed_date_inside_a_range_does_not_stop_the_others_and_the_range_names_it(
    prefect_harness: None, recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    days = imported_book(recon_env["RECON_DATABASE_URL"], tmp_path, D1, D3, 120, seed=71)
    for day in (D1, D2, D3):
        deliver(Path(recon_env["RECON_HOME"]), day, days.files[day])
    _no_waiting(monkeypatch)
    real_parse = runner.parse_and_validate
    tries: list[dt.date] = []

    def unreadable_on_d2(config: Any, files: Any, day: dt.date) -> Any:
        if day == D2:
            tries.append(day)
            raise OSError("the inbox could not be read")
        return real_parse(config, files, day)

    from prefect import task
    from prefect.cache_policies import NO_CACHE

    broken = task(name="read-and-validate-files", retries=2, retry_delay_seconds=0, cache_policy=NO_CACHE)
    monkeypatch.setattr(nightly, "TASK_STAGES", replace(nightly.TASK_STAGES, parse=broken(unreadable_on_d2)))
    state = reconcile_date_range(DateRange(first=D1, last=D3), workbook=False, return_state=True)
    assert state.is_failed()
    failure = state.result(raise_on_failure=False)
    assert isinstance(failure, runner.DatesFailed)
    assert [(s["business_date"], s["status"]) for s in failure.summaries] == [
        (D1.isoformat(), "SUCCEEDED"), (D2.isoformat(), "FAILED"), (D3.isoformat(), "SUCCEEDED")
    ]  # fmt: skip
    assert "2026-11-26" in str(failure) and "the inbox could not be read" in str(failure)
    assert tries == [D2, D2, D2]  # the task touching files was tried three times
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # each date ran as a subflow of the range, named after it
        children = client.read_flow_runs()
    names = {run.name for run in children}
    assert {f"reconcile-{d}" for d in (D1, D2, D3)} <= names and f"rerun-{D1}-to-{D3}" in names


def test_a_channel_whose_file_is_late_is_missing_then_picked_up_and_artifacts_are_published(
    prefect_harness: None, recon_env: dict[str, str], tmp_path: Path
) -> None:
    days = imported_book(recon_env["RECON_DATABASE_URL"], tmp_path, D3, D3, 150, seed=72)
    files = days.files[D3]
    late = next(name for name in files if "icbc" in name)
    deliver(Path(recon_env["RECON_HOME"]), D3, {n: b for n, b in files.items() if n != late})
    first = reconcile_business_date(D3, return_state=True)
    summary = first.result()
    url = recon_env["RECON_DATABASE_URL"]
    assert summary["balanced"] and "icbc" in _missing_channels(url)
    deliver(Path(recon_env["RECON_HOME"]), D3, {late: files[late]})
    second = reconcile_business_date(D3, return_state=True)
    again = second.result()
    assert again["balanced"] and "icbc" not in _missing_channels(url)
    assert again["outcomes"].get("MISSING_FILE", 0) == summary["outcomes"]["MISSING_FILE"] - 1
    assert any(f["name"] == late and f["status"] == "ACCEPTED" for f in again["files"])

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    run_id = second.state_details.flow_run_id
    with get_client(sync_client=True) as client:  # the artifacts of the second run
        found = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run_id]))
        )
    by_key = {a.key: a for a in found}
    markdown = str(by_key["recon-summary-20261127"].data)
    assert "**balanced**" in markdown and "| received |" in markdown
    assert f"| received | {fen_to_yuan_text(again['fen']['received'])} |" in markdown
    table = by_key["recon-open-exceptions-20261127"].data
    rows = table if isinstance(table, list) else json.loads(table)
    assert all(isinstance(r["total"], int) for r in rows) and sum(r["total"] for r in rows) > 0
    assert str(by_key["recon-workbook-20261127"].data).startswith("[")  # a markdown link to the workbook
    assert os.path.basename(again["workbook"]) in str(by_key["recon-workbook-20261127"].data)


def test_the_dask_task_runner_is_chosen_by_a_setting_and_gives_the_same_books(
    prefect_harness: None, recon_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from tests.dbdump import dump_books

    assert isinstance(nightly.configured_task_runner(), ThreadPoolTaskRunner)
    monkeypatch.setenv("RECON_TASK_RUNNER", "Dask")
    assert isinstance(nightly.configured_task_runner(), DaskTaskRunner)
    monkeypatch.setenv("RECON_DASK_ADDRESS", "tcp://10.0.0.5:8786")
    assert nightly.configured_task_runner().address == "tcp://10.0.0.5:8786"
    monkeypatch.delenv("RECON_DASK_ADDRESS")

    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, D3, D3, 150, seed=73)
    deliver(Path(recon_env["RECON_HOME"]), D3, days.files[D3])
    on_threads = reconcile_business_date(D3, workbook=False)
    books = dump_books(url)
    on_dask = reconcile_business_date.with_options(task_runner=nightly.configured_task_runner())(D3, workbook=False)
    assert dump_books(url) == books
    for key in ("outcomes", "fen", "balanced", "records"):
        assert on_dask[key] == on_threads[key], key
    assert [f["name"] for f in on_dask["files"]] == [f["name"] for f in on_threads["files"]]
