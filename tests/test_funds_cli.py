"""The funds side of the command line as a newcomer meets it: `recon generate --statements`,
`recon inspect` on a statement, a wrong funds file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from flows.cli import app
from tests import funds_week as W
from tests.test_funds_intake import UNEVEN_MT940

RECON = Path(sys.executable).with_name("recon")


def test_generate_writes_the_statements_and_their_truth(tmp_path: Path) -> None:
    done = CliRunner().invoke(app, ["generate", "--out", str(tmp_path), "--from", "2026-10-08", "--to", "2026-10-13",
                                    "--loans", "120", "--statements"])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "statement(s) (funds truth: expected_funds.csv)" in done.output
    statements = sorted(p.parent.name for p in (tmp_path / "inbox").rglob("cmb_statement_*.csv"))
    # payouts on working days only: 10-10 is a make-up Saturday, 10-11 a Sunday
    assert statements == ["2026-10-09", "2026-10-10", "2026-10-12", "2026-10-13"]
    with open(tmp_path / "expected_funds.csv", encoding="utf-8") as handle:
        truth = list(csv.DictReader(handle))
    assert {row["channel"] for row in truth} == {"alipay", "icbc"}
    assert {row["expected_outcome"] for row in truth} == {"SETTLED", "SETTLEMENT_PENDING", "SETTLEMENT_SHORT"}
    assert [row["value_date"] for row in truth if row["business_date"] == "2026-10-11"] == ["2026-10-12"] * 2


def test_inspect_reads_a_statement_and_refuses_one_that_does_not_add_up(tmp_path: Path) -> None:
    good = tmp_path / "cmb_20261014.csv"
    good.write_bytes(W.statement_bytes())
    shown = CliRunner().invoke(app, ["inspect", "--json", str(good)])
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert (report["channel"], report["layout"], report["rows"]) == ("statement", "cmb_corporate", 16)
    by = {(row["record_kind"], row["status"]): row["count"] for row in report["by_status"]}
    assert by == {("credit", "alipay"): 13, ("credit", "nobody's"): 1, ("credit", "wechat"): 1, ("debit", "wechat"): 1}
    bad = tmp_path / "uneven.sta"
    bad.write_bytes(UNEVEN_MT940)
    refused = CliRunner().invoke(app, ["inspect", str(bad)])
    assert refused.exit_code == 2 and "does not add up" in refused.output


def test_a_wrong_funds_file_is_one_clear_error(tmp_path: Path) -> None:
    wrong = tmp_path / "funds.toml"
    wrong.write_text('[settlement.alipay]\ncycle = "T1"\nfee = { rate = "0.006", netted = "yes" }\n', encoding="utf-8")
    env = {**os.environ, "RECON_HOME": str(tmp_path / "home"), "RECON_FUNDS_FILE": str(wrong)}
    done = subprocess.run([str(RECON), "init"], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    for said in ("RECON_FUNDS_FILE", "settlement.alipay.cycle:", "settlement.alipay.fee.netted: true or false"):
        assert said in done.stderr, done.stderr
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('[settlement.nobody]\ncycle = "T+1"\n', encoding="utf-8")
    done = subprocess.run([str(RECON), "init"], env={**env, "RECON_FUNDS_FILE": str(unknown)}, capture_output=True,
                          text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 2 and "settlement.nobody: no channel named 'nobody'" in done.stderr
