"""The channel file is parsed into typed specs: a typo or a wrong type is an error naming its place."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from reconcile.layouts import AmountField, DatetimeField, LayoutError, MapField, parse_channel_config

PACKAGED = Path(__file__).parents[1] / "reconcile" / "channels.toml"


def packaged() -> dict[str, Any]:
    return tomllib.loads(PACKAGED.read_text(encoding="utf-8"))


def problems(config: dict[str, Any]) -> list[str]:
    with pytest.raises(LayoutError) as raised:
        parse_channel_config(config)
    return raised.value.problems


def test_the_packaged_channel_file_parses_into_specs_of_each_kind() -> None:
    channels, layouts = parse_channel_config(packaged())
    assert set(channels) >= {"alipay", "icbc", "boc"} and "bank_pipe_v1" in layouts
    fields = layouts["bank_pipe_v1"].fields
    assert isinstance(fields["amount_fen"], AmountField) and fields["amount_fen"].amount == "yuan"
    assert isinstance(fields["settled_at"], DatetimeField) and fields["settled_at"].datetime == "%Y%m%d%H%M%S"
    assert isinstance(fields["status"], MapField) and fields["status"].map["S"] == "SUCCESS"
    with pytest.raises(Exception, match="frozen"):
        layouts["bank_pipe_v1"].encoding = "utf-8"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (lambda c: c["layouts"]["bank_pipe_v1"]["fields"]["status"].update(mapp={}),
         "layouts.bank_pipe_v1.fields.status.mapp: unknown key (a typo?)"),
        (lambda c: c["layouts"]["alipay_trade"]["fields"]["settled_at"].update(datetme="%Y"),
         "layouts.alipay_trade.fields.settled_at.datetme: unknown key (a typo?)"),
        (lambda c: c["layouts"]["alipay_trade"].update(delimter=","),
         "layouts.alipay_trade.delimter: unknown key (a typo?)"),
        (lambda c: c["layouts"]["alipay_trade"]["control_totals"][1].update(applies_too="refund"),
         "layouts.alipay_trade.control_totals[1].applies_too: unknown key (a typo?)"),
        (lambda c: c["layouts"]["alipay_trade"]["business_date"].update(sorce="preamble"),
         "layouts.alipay_trade.business_date.sorce: unknown key (a typo?)"),
        (lambda c: c["channels"]["icbc"].update(lists_failure=True),
         "channels.icbc.lists_failure: unknown key (a typo?)"),
        (lambda c: c["channels"]["alipay"]["name"].update(zh_cn="支付宝"),
         "channels.alipay.name.zh_cn: unknown key (a typo?)"),
        (lambda c: c["layouts"]["bank_pipe_v1"]["fields"].update(memoo={"column": "seq"}),
         "layouts.bank_pipe_v1.fields: memoo: not a field of a record"),
        (lambda c: c["layouts"]["bank_fixed_v1"]["fields"]["amount_fen"].update(amount="cents"),
         "layouts.bank_fixed_v1.fields.amount_fen.amount: Input should be 'yuan' or 'fen'"),
        (lambda c: c["layouts"]["alipay_trade"]["fields"]["amount_fen"].update(absolute="yes"),
         "layouts.alipay_trade.fields.amount_fen.absolute: Input should be a valid boolean"),
        (lambda c: c["channels"]["icbc"].update(expected_daily="true"),
         "channels.icbc.expected_daily: Input should be a valid boolean"),
        (lambda c: c["layouts"]["bank_fixed_v1"].update(widths=[1, 8]),
         "layouts.bank_fixed_v1: widths needs columns, one width per column"),
        (lambda c: c["layouts"]["offline_repayments"].update(encoding="gbkk"),
         "layouts.offline_repayments.encoding: unknown encoding 'gbkk'"),
        (lambda c: c["layouts"]["alipay_personal"].update(end_marker="^-[20"),
         "layouts.alipay_personal.end_marker: not a regular expression"),
        (lambda c: c["layouts"]["alipay_trade"]["control_totals"][0].update(pattern="合计：(?P<n>\\d+)"),
         "layouts.alipay_trade.control_totals[0]: the pattern needs groups named count and amount"),
        (lambda c: c["layouts"]["bank_pipe_v1"]["fields"]["status"]["map"].update(X="MAYBE"),
         "layouts.bank_pipe_v1: status maps to ['MAYBE']"),
        (lambda c: c["layouts"]["bank_pipe_v1"]["fields"]["reference"].update(column="instruction"),
         "layouts.bank_pipe_v1: fields.reference reads instruction, not among the columns"),
        (lambda c: c["layouts"]["alipay_signcustomer"].update(restates="alipay_trades"),
         "layouts.alipay_signcustomer.restates: no layout named 'alipay_trades'"),
        (lambda c: c["channels"]["alipay"].update(also_layouts=["alipay_account"]),
         "channels.alipay.also_layouts: no layout named 'alipay_account'"),
        (lambda c: c.update(channel={}), "channel: not a section of the channel file"),
    ],
)  # fmt: skip
def test_a_typo_or_a_wrong_type_is_an_error_that_names_its_place(change: Any, said: str) -> None:
    config = packaged()
    change(config)
    found = problems(config)
    assert any(problem.startswith(said) for problem in found), found


def test_every_problem_is_said_at_once() -> None:
    config = copy.deepcopy(packaged())
    config["layouts"]["bank_pipe_v1"]["delimitr"] = "|"
    config["channels"]["ccb"]["layuot"] = "bank_pipe_v1"
    found = problems(config)
    assert "layouts.bank_pipe_v1.delimitr: unknown key (a typo?)" in found
    assert "channels.ccb.layuot: unknown key (a typo?)" in found


def test_the_cli_refuses_a_wrong_channel_file_at_init_and_at_start(tmp_path: Path) -> None:
    text = PACKAGED.read_text(encoding="utf-8").replace('datetime = "%Y-%m-%d %H:%M:%S" }', 'datetme = "%Y" }', 1)
    (tmp_path / "channels.toml").write_text(text, encoding="utf-8")
    env = {**os.environ, "RECON_HOME": str(tmp_path), "RECON_CHANNELS_FILE": str(tmp_path / "channels.toml")}
    recon = [sys.executable, "-m", "flows.cli"]
    for command in (["init"], ["run", "--date", "2026-11-27", "--no-prefect"]):
        done = subprocess.run([*recon, *command], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stdout + done.stderr
        assert "layouts.alipay_trade.fields.settled_at.datetme: unknown key (a typo?)" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "recon.db").exists()  # refused before anything was touched
