"""A generated day, imported and run through the Prefect flow, on SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select

from flows.db import ChannelRecord, Installment, LedgerEntry, table_of
from flows.importer import import_snapshot, write_snapshot
from reconcile.synthetic import generate_days
from tests.dbdump import stored_outcomes

DAY = dt.date(2026, 11, 27)
pytestmark = pytest.mark.slow


def _write_generated(root: Path, loans: int, seed: int) -> pl.DataFrame:
    days = generate_days(DAY, DAY, loans, seed)
    write_snapshot(root / "snapshot", days.loans, days.installments, days.instructions)
    inbox = root / "home" / "inbox" / DAY.isoformat()
    inbox.mkdir(parents=True)
    for name, data in days.files[DAY].items():
        (inbox / name).write_bytes(data)
    return days.expected


def _dump(url: str) -> dict[str, list[tuple[object, ...]]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        dump = {
            "installments": sorted(tuple(r) for r in conn.execute(select(table_of(Installment))).all()),
            "ledger": sorted(
                tuple(v for k, v in r._mapping.items() if k != "run_id")
                for r in conn.execute(select(table_of(LedgerEntry))).all()
            ),
            "records": sorted(
                tuple(v for k, v in r._mapping.items() if k != "id")
                for r in conn.execute(select(table_of(ChannelRecord))).all()
            ),
        }
    engine.dispose()
    return dump


@pytest.fixture(scope="module")
def outcome_by_engine() -> dict[str, pl.DataFrame]:
    return {}


def test_generated_day_reproduces_the_manifest_and_reruns_change_nothing(
    prefect_harness: None, recon_env: dict[str, str], tmp_path: Path, outcome_by_engine: dict[str, pl.DataFrame]
) -> None:
    from flows.nightly import reconcile_business_date
    from flows.store import connect

    expected = _write_generated(tmp_path, loans=600, seed=11)
    engine = connect(recon_env["RECON_DATABASE_URL"])
    import_snapshot(engine, tmp_path / "snapshot")
    engine.dispose()

    summary = reconcile_business_date(DAY)
    assert summary["balanced"] is True
    assert summary["fen"]["received"] == summary["fen"]["applied"] + summary["fen"]["held"]
    assert set(summary["outcomes"]) == set(expected["expected_outcome"].unique())
    json.dumps(summary)  # the summary is stored and printed as JSON

    stored = stored_outcomes(recon_env["RECON_DATABASE_URL"])
    records = expected.filter(pl.col("subject") == "record").join(stored, on="subject_key", how="full", coalesce=True)
    wrong = records.filter(pl.col("expected_outcome").ne_missing(pl.col("outcome")))
    assert wrong.height == 0, f"records whose outcome differs from the manifest:\n{wrong}"
    others = expected.filter(pl.col("subject") != "record")
    counts = others.group_by("expected_outcome").len()
    for row in counts.iter_rows(named=True):
        assert summary["outcomes"][row["expected_outcome"]] >= row["len"]
    assert summary["outcomes"]["MISSING_RESULT"] == others.filter(pl.col("expected_outcome") == "MISSING_RESULT").height

    workbook = load_workbook(summary["workbook"], read_only=True)
    assert workbook.sheetnames[0] == "总览"
    assert not list(Path(summary["workbook"]).parent.glob(".*.partial"))
    _assert_nothing_personal(tmp_path, summary, workbook)

    before = _dump(recon_env["RECON_DATABASE_URL"])
    again = reconcile_business_date(DAY)
    assert all(f["seen_before"] for f in again["files"]) and not any(f["seen_before"] for f in summary["files"])

    def comparable(run: dict[str, object]) -> dict[str, object]:
        varying = ("run_id", "workbook", "timings_s", "memory_mib", "changes", "files")
        kept = {k: v for k, v in run.items() if k not in varying}
        files = [{k: v for k, v in f.items() if k != "seen_before"} for f in run["files"]]  # type: ignore[attr-defined]
        return {**kept, "files": files}

    assert comparable(again) == comparable(summary)
    assert again["changes"]["exceptions"]["new"] == 0
    assert again["changes"]["ledger"] == {"entries_added": 0, "entries_removed": 0, "entries_changed": 0}
    assert _dump(recon_env["RECON_DATABASE_URL"]) == before

    outcome_by_engine[recon_env["RECON_DATABASE_URL"].split(":")[0]] = stored.sort("subject_key")


def _assert_nothing_personal(root: Path, summary: dict[str, object], workbook: object) -> None:
    """Invariant 6: no card, ID number, phone or full name in the workbook, its CSV or the summary."""
    loans = pl.read_csv(root / "snapshot" / "loans.csv", infer_schema=False)
    secrets = set(loans["id_number"]) | set(loans["phone"]) | set(loans["bound_account"])
    names = {name for name in loans["borrower_name"] if len(name) > 1}
    texts = [json.dumps(summary, ensure_ascii=False)]
    for sheet in workbook.worksheets:  # type: ignore[attr-defined]
        texts.extend(str(value) for row in sheet.iter_rows(values_only=True) for value in row if value is not None)
    detail = Path(str(summary["workbook"])).with_suffix("").with_suffix(".detail.csv")
    texts.append(detail.read_text(encoding="utf-8"))
    blob = "\n".join(texts)
    leaked = sorted(secret for secret in secrets | names if secret in blob)
    assert not leaked, f"personal data in the report: {leaked[:5]}"


def test_sqlite_and_postgresql_agree(outcome_by_engine: dict[str, pl.DataFrame]) -> None:
    if len(outcome_by_engine) < 2:
        pytest.skip("needs the end-to-end test to have run on both databases first")
    sqlite, postgres = outcome_by_engine["sqlite"], outcome_by_engine["postgresql+psycopg"]
    assert sqlite.equals(postgres)
