"""``recon inspect`` for people: a folder as well as a file, tables instead of Python structures,
and for a file nothing recognises, the closest layouts and why each did not fit."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_channel_config
from flows.inspection import inspect_path, show
from reconcile import synthetic as syn
from reconcile.reader.recognition import closest_layouts
from reconcile.settings import settings_from_mapping

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 40, seed=2)


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RECON_HOME", str(tmp_path / "home"))
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "wechat_trade_20261127.csv").write_bytes(syn.wechat_trade_bill(DAY, LINES))
    (inbox / "icbc_result_20261127.txt").write_bytes(syn.bank_result_file(DAY, LINES.filter(LINES["kind"] == "debit")))
    name, zipped = syn.unionpay_delivery(DAY, LINES, errors=LINES.head(1))
    (inbox / name).write_bytes(zipped)
    bill = syn.alipay_trade_bill(DAY, LINES).decode("gb18030").replace("支付宝交易号", "交易号", 1)
    (inbox / "alipay_trade_20261127.csv").write_bytes(bill.encode("gb18030"))  # a header column renamed
    return inbox


def test_a_folder_gives_a_report_per_file_and_zip_member(folder: Path) -> None:
    reports = inspect_path(folder, SETTINGS, None, DAY)
    by_file = {report["file"]: report for report in reports}
    assert sorted(by_file) == sorted([
        "alipay_trade_20261127.csv", "icbc_result_20261127.txt", "wechat_trade_20261127.csv",
        f"{syn.UNIONPAY_MERCHANT}_20261127.zip!INN26112788ZM_{syn.UNIONPAY_MERCHANT}",
        f"{syn.UNIONPAY_MERCHANT}_20261127.zip!INN26112788ZME_{syn.UNIONPAY_MERCHANT}",
    ])  # fmt: skip
    assert by_file["wechat_trade_20261127.csv"]["layout"] == "wechat_trade"
    assert by_file["icbc_result_20261127.txt"]["rejected"] is None


def test_an_unrecognised_file_names_the_closest_layout_and_what_it_lacks(folder: Path) -> None:
    report = inspect_path(folder / "alipay_trade_20261127.csv", SETTINGS, None, DAY)[0]
    assert report["rejected"].startswith("no configured layout recognises")
    closest = report["closest_layouts"][0]
    assert closest["layout"] == "alipay_trade" and closest["fit"] == pytest.approx(2 / 3, abs=0.01)
    assert closest["why"].endswith("has 2 of its 3 header columns; missing 支付宝交易号")


def test_nearness_is_told_for_widths_encodings_and_xml() -> None:
    zm = syn.unionpay_zm_file(DAY, LINES).decode("gb18030").replace("\r\n", "XX\r\n").encode("gb18030")
    [near] = [m for m in closest_layouts(zm, SETTINGS.layouts, top=20) if m.layout == "unionpay_zm"]
    assert near.why == "its lines are 607 bytes wide; this file's first are 609"
    not_xml = closest_layouts(b"<html><body>hello</body></html>", SETTINGS.layouts)
    assert not_xml[0].layout == "iso20022" and "not a pain.002 or camt.054 message" in not_xml[0].why
    assert closest_layouts(b"nothing of the sort\n", SETTINGS.layouts) == []
    utf8 = syn.alipay_trade_bill(DAY, LINES).decode("gb18030").replace("支付宝交易号", "交易号", 1).encode("utf-8")
    [alipay] = [m for m in closest_layouts(utf8, SETTINGS.layouts) if m.layout == "alipay_trade"]
    assert alipay.why.endswith("and the file is not valid gb18030")


def test_the_terminal_shows_tables_and_the_json_keeps_its_shape(folder: Path) -> None:
    reports = inspect_path(folder, SETTINGS, None, DAY)
    screen = io.StringIO()
    show(reports, folder=True, console=Console(file=screen, width=160, highlight=False))
    text = screen.getvalue()
    assert "{" not in text and "[" not in text  # no Python structures
    assert "closest layout" in text and "missing 支付宝交易号" in text
    assert "control total" in text and "all files" in text
    wechat = [line for line in text.splitlines() if line.startswith("wechat_trade_20261127.csv ")][-1]  # all files
    assert "wechat_trade" in wechat.split("wechat_trade_20261127.csv", 1)[1] and "ACCEPTED" in wechat
    # one file's JSON is the report itself, a folder's a list of them
    single = CliRunner().invoke(app, ["inspect", "--json", str(folder / "wechat_trade_20261127.csv")])
    assert single.exit_code == 0 and json.loads(single.output)["layout"] == "wechat_trade"
    listed = CliRunner().invoke(app, ["inspect", "--json", str(folder)])
    assert listed.exit_code == 2  # a file in it is refused
    assert [r["file"] for r in json.loads(listed.output)] == [r["file"] for r in reports]
    shown = CliRunner().invoke(app, ["inspect", str(folder)], env={"COLUMNS": "150"})
    assert shown.exit_code == 2 and "all files" in shown.output and "REJECTED" in shown.output
