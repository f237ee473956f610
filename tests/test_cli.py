"""The command line as an operator uses it (no Prefect here: the run itself is tested end to end)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_config
from flows.runner import reconcile_dates

DAY = dt.date(2026, 11, 27)


@pytest.fixture
def generated(tmp_path: Path, recon_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "gen"
    result = CliRunner().invoke(app, ["generate", "--date", DAY.isoformat(), "--loans", "60", "--seed", "4",
                                      "--out", str(out)])  # fmt: skip
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("RECON_INBOX", str(out / "inbox"))
    return out


def test_generate_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(app, ["generate", "--date", "2026-11-27", "--loans", "30", "--seed", "9",
                                     "--out", str(tmp_path / name)])  # fmt: skip
        assert result.exit_code == 0, result.output
    for relative in ("expected.csv", "snapshot/instructions.csv", "inbox/2026-11-27/alipay_trade_20261127.csv"):
        assert (tmp_path / "a" / relative).read_bytes() == (tmp_path / "b" / relative).read_bytes(), relative


def test_import_then_status_shows_a_masked_repayment_trail(generated: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["import-expected", str(generated / "snapshot")])
    assert result.exit_code == 0 and "imported 60 loans" in result.output
    reconcile_dates(load_config(), [DAY], workbook=False)
    expected = pl.read_csv(generated / "expected.csv")
    paid = expected.filter(pl.col("expected_outcome") == "MATCHED", pl.col("scenario") == "matched")
    instructions = pl.read_csv(generated / "snapshot" / "instructions.csv", infer_schema=False)
    loans = pl.read_csv(generated / "snapshot" / "loans.csv", infer_schema=False)
    contract = instructions.filter(pl.col("channel") == "icbc")["contract_no"][0]
    assert paid.height > 0
    result = runner.invoke(app, ["status", "--json", f"  {contract.lower()} "])  # as a person types it
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    loan = loans.filter(pl.col("contract_no") == contract).row(0, named=True)
    assert report["contract_no"] == contract
    assert loan["bound_account"] not in result.output and loan["borrower_name"] not in result.output
    results = [d for d in report["instructions"] if d.get("file")]
    assert results and results[0]["file"].startswith("icbc_result_") and results[0]["requested_at"].endswith("+08:00")
    ledger = report["ledger"]
    assert all(e["settled_at"].endswith("+08:00") and "." in e["amount_yuan"] for e in ledger)
    assert all(i["due_yuan"] == f"{sum(float(v['due_yuan']) for v in i['parts'].values()):.2f}"
               for i in report["installments"])  # fmt: skip
    # the contract with an open exception shows it, explained; in English on asking
    from sqlalchemy import create_engine, select

    from flows.db import ExceptionItem

    engine = create_engine(load_config().database_url)
    with engine.connect() as conn:
        open_one = conn.execute(
            select(ExceptionItem.contract_no, ExceptionItem.outcome).where(
                ExceptionItem.status == "OPEN", ExceptionItem.contract_no.is_not(None), ExceptionItem.severity != "LOW"
            )
        ).first()
    engine.dispose()
    assert open_one is not None
    english = runner.invoke(app, ["status", "--lang", "en", open_one[0]])
    assert english.exit_code == 0 and "open exceptions:" in english.output
    from flows.words import outcome_label
    from reconcile.codes import Outcome

    assert outcome_label(Outcome(open_one[1]), "en") in english.output.split("open exceptions:")[1]
    unknown = runner.invoke(app, ["status", "C-NOT-THERE"])
    assert unknown.exit_code == 2 and "没有合同 'C-NOT-THERE'" in unknown.output


def test_a_bad_snapshot_exits_2_naming_file_and_line(generated: Path) -> None:
    loans = generated / "snapshot" / "loans.csv"
    frame = pl.read_csv(loans, infer_schema=False)
    frame.with_columns(
        grace_days=pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("x")).otherwise(pl.col("grace_days"))
    ).write_csv(loans)
    result = CliRunner().invoke(app, ["import-expected", str(generated / "snapshot")])
    assert result.exit_code == 2
    assert "nothing imported" in result.output and "loans.csv:4 grace_days" in result.output


def test_a_bad_date_is_refused_with_a_clear_message() -> None:
    result = CliRunner().invoke(app, ["run", "--date", "2026-13-01"])
    assert result.exit_code != 0 and "is not a date YYYY-MM-DD" in result.output


def test_the_run_says_which_files_it_saw_before_which_are_new_versions_and_what_it_could_not_map(
    generated: Path,
) -> None:
    CliRunner().invoke(app, ["import-expected", str(generated / "snapshot")])
    config = load_config()
    first = reconcile_dates(config, [DAY], workbook=False)[0]
    assert not any(f["seen_before"] for f in first["files"])
    assert first["failures_unmapped"]["count"] > 0 and "账户状态异常" in first["failures_unmapped"]["raw"]

    again = reconcile_dates(config, [DAY], workbook=False)[0]
    assert all(f["seen_before"] and f["replaces_sha256"] is None for f in again["files"])

    bank = generated / "inbox" / DAY.isoformat() / "icbc_result_20261127.txt"
    old = next(f["sha256"] for f in again["files"] if f["name"] == bank.name)
    bank.write_bytes(bank.read_bytes().replace(b"\n", b"\r\n"))  # the bank re-sends with CRLF
    resent = reconcile_dates(config, [DAY], workbook=False)[0]
    entry = next(f for f in resent["files"] if f["name"] == bank.name)
    assert entry["seen_before"] is False and entry["replaces_sha256"] == old
    assert resent["outcomes"] == again["outcomes"]


def test_run_and_rerun_without_prefect_give_the_flows_summary_and_say_what_cascaded(generated: Path) -> None:
    """``--no-prefect`` (no server at all, for a quick local check) runs the same stages: the same
    outcomes and money as the flow would give, a rerun's later dates announced as such."""
    runner = CliRunner()
    assert runner.invoke(app, ["import-expected", str(generated / "snapshot")]).exit_code == 0
    done = runner.invoke(app, ["run", "--date", DAY.isoformat(), "--json", "--no-prefect"])
    assert done.exit_code == 0, done.output
    summary = json.loads(done.output)
    assert summary["balanced"] and summary["records"] > 0
    later = (DAY + dt.timedelta(days=1)).isoformat()
    assert runner.invoke(app, ["run", "--date", later, "--no-prefect", "--no-workbook"]).exit_code in (0, 5)
    again = runner.invoke(app, ["run", "--date", DAY.isoformat(), "--no-prefect"])
    assert f"later dates reconciled again (their books depend on this one): {later}" in again.output, again.output
    rerun = runner.invoke(app, ["rerun", "--from", DAY.isoformat(), "--to", DAY.isoformat(), "--no-prefect"])
    assert f"(reconciled again because it comes after the range: {later})" in rerun.output, rerun.output
    refused = runner.invoke(app, ["rerun", "--from", DAY.isoformat(), "--to", "2026-11-01", "--no-prefect"])
    assert refused.exit_code == 2 and "before it starts" in refused.output
