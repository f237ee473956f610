"""Exceptions keep one row per problem across runs, resolve when a later file settles them, and a
reviewer's resolution stands until the facts change."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from sqlalchemy import create_engine, select, update

from flows.config import load_config
from flows.db import ExceptionItem, table_of
from flows.importer import import_snapshot, write_snapshot
from flows.runner import reconcile_dates
from flows.store import connect
from reconcile.synthetic import generate_days

pytestmark = pytest.mark.slow
D1, D2 = dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def _setup(tmp_path: Path, url: str) -> tuple[Path, pl.DataFrame, dict[dt.date, dict[str, bytes]]]:
    days = generate_days(D1, D2, 300, seed=21)
    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)
    engine = connect(url)
    import_snapshot(engine, tmp_path / "snapshot")
    engine.dispose()
    return tmp_path / "snapshot", days.instructions, days.files


def _deliver(home: Path, day: dt.date, files: dict[str, bytes]) -> None:
    folder = home / "inbox" / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def _exception(url: str, key_like: str) -> dict[str, object]:
    engine = create_engine(url)
    with engine.connect() as conn:
        table = table_of(ExceptionItem)
        row = (
            conn.execute(select(*table.c).where(table.c.exception_key.like(key_like)).order_by(table.c.exception_key))
            .mappings()
            .first()
        )
    assert row is not None, key_like
    engine.dispose()
    return dict(row)


def test_a_result_arriving_in_a_later_file_resolves_the_missing_result(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    home = Path(recon_env["RECON_HOME"])
    _, instructions, files = _setup(tmp_path, url)
    _deliver(home, D1, files[D1])
    config = load_config()
    reconcile_dates(config, [D1], workbook=False)
    engine = create_engine(url)
    with engine.connect() as conn:
        missing = (
            conn.execute(
                select(ExceptionItem.instruction_id).where(
                    ExceptionItem.outcome == "MISSING_RESULT", ExceptionItem.status == "OPEN"
                )
            )
            .scalars()
            .first()
        )
    engine.dispose()
    assert missing is not None
    late = instructions.filter(pl.col("instruction_id") == missing).row(0, named=True)

    # the bank lists the late result in the next day's file (summary totals updated to match)
    text = files[D2][f"icbc_result_{D2:%Y%m%d}.txt"].decode("gb18030").splitlines()
    head = text[0].split("|")
    amount = late["amount_fen"]
    head[3], head[5] = str(int(head[3]) + 1), str(int(head[5]) + 1)
    for field in (4, 6):
        fen = round(float(head[field]) * 100) + amount
        head[field] = f"{fen // 100}.{fen % 100:02d}"
    yuan = f"{amount // 100}.{amount % 100:02d}"
    line = f"D|{len(text)}|{missing}|{late['account']}|张*|{yuan}|S|||LATE{missing}|{D2:%Y%m%d}030000"
    patched = "\n".join(["|".join(head), *text[1:], line]) + "\n"
    _deliver(home, D2, {**files[D2], f"icbc_result_{D2:%Y%m%d}.txt": patched.encode("gb18030")})
    reconcile_dates(config, [D2], workbook=False)

    item = _exception(url, f"MISSING_RESULT|instruction|{missing}")
    assert item["status"] == "RESOLVED" and item["resolution_code"] == "AUTO"
    assert f"icbc_result_{D2:%Y%m%d}.txt line {len(text) + 1}" in str(item["resolution_note"])


def test_a_reviewers_resolution_stands_on_rerun_and_reopens_when_the_facts_change(
    recon_env: dict[str, str], tmp_path: Path
) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    home = Path(recon_env["RECON_HOME"])
    snapshot, _, files = _setup(tmp_path, url)
    _deliver(home, D2, files[D2])
    config = load_config()
    reconcile_dates(config, [D2], workbook=False)
    target = _exception(url, "AMOUNT_MISMATCH|%")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            update(ExceptionItem)
            .where(ExceptionItem.exception_key == target["exception_key"])
            .values(status="RESOLVED", resolution_code="CHANNEL_CORRECTED", resolution_note="bank confirmed")
        )
    engine.dispose()

    reconcile_dates(config, [D2], workbook=False)
    again = _exception(url, str(target["exception_key"]))
    assert (again["status"], again["resolution_code"]) == ("RESOLVED", "CHANNEL_CORRECTED")
    assert again["occurrences"] == 2

    # a newer servicing snapshot changes the instruction's amount: the facts behind it changed
    instructions = pl.read_csv(snapshot / "instructions.csv", infer_schema=False)
    changed = instructions.with_columns(
        amount=pl.when(pl.col("instruction_id") == target["instruction_id"])
        .then(pl.lit("1.00"))
        .otherwise(pl.col("amount"))
    )
    changed.write_csv(snapshot / "instructions.csv")
    engine = connect(url)
    import_snapshot(engine, snapshot)
    engine.dispose()
    reconcile_dates(config, [D2], workbook=False)
    reopened = _exception(url, str(target["exception_key"]))
    assert reopened["status"] == "OPEN" and reopened["resolution_code"] is None
    assert "facts changed" in str(reopened["resolution_note"])
