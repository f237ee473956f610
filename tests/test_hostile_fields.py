"""Hostile bytes inside a file's fields are that line's problem, never the date's: control characters,
a NUL, an id longer than its column. SQLite and PostgreSQL accept and refuse the same lines."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook
from sqlalchemy import create_engine, select

from flows.config import load_config
from flows.db import ChannelRecord
from flows.runner import reconcile_dates
from reconcile.synthetic import generate_days
from reconcile.text import printable_text
from tests.books import deliver, imported_book
from tests.dbdump import stored_outcomes

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)


def test_printable_text() -> None:
    frame = pl.DataFrame({"t": ["ok\tstill ok", "bell\x07esc\x1b", "nul\x00", None]})
    assert frame.select(printable_text("t"))["t"].to_list() == [
        "ok\tstill ok", "bell\\x07esc\\x1b", "nul\\x00", None
    ]  # fmt: skip


def _corrupt(bank_file: bytes, line_index: int, old: bytes, new: bytes) -> bytes:
    lines = bank_file.split(b"\n")
    assert old in lines[line_index], lines[line_index]
    lines[line_index] = lines[line_index].replace(old, new, 1)
    return b"\n".join(lines)


def test_hostile_fields_are_invalid_lines(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 150, seed=43)
    inbox = deliver(Path(recon_env["RECON_HOME"]), DAY, {})
    name = next(n for n in days.files[DAY] if n.startswith("icbc_"))
    data = days.files[DAY][name]
    lines = data.split(b"\n")
    # three detail lines: a control character in a reference, a NUL in one, a transaction id of 120 characters
    # (past the first 4 KiB, where a NUL would make the whole file binary)
    targets = [i for i, line in enumerate(lines) if line.startswith(b"D|")][-4:-1]
    assert len(b"\n".join(lines[: targets[0]])) > 4096
    refs = [lines[i].split(b"|")[2] for i in targets]
    txn = lines[targets[2]].split(b"|")[9]
    corrupted = _corrupt(data, targets[0], refs[0], refs[0] + b"\x1b[31m\x07")
    corrupted = _corrupt(corrupted, targets[1], refs[1], refs[1][:3] + b"\x00" + refs[1][3:])
    corrupted = _corrupt(corrupted, targets[2], txn, txn + b"9" * 94)
    for other, content in days.files[DAY].items():
        (inbox / other).write_bytes(corrupted if other == name else content)
    summary = reconcile_dates(load_config({**os.environ, **recon_env}), [DAY])[0]
    assert summary["status"] == "SUCCEEDED" and summary["balanced"]
    file = next(f for f in summary["files"] if f["name"] == name)
    assert file["status"] == "ACCEPTED", file["reason"]
    stored = stored_outcomes(url)
    invalid = stored.filter(pl.col("subject_key").str.starts_with(f"icbc|line|{name}|"))
    line_numbers = {int(key.rsplit("|", 1)[1]) for key in invalid["subject_key"].to_list()}
    assert {i + 1 for i in targets} <= line_numbers
    engine = create_engine(url)
    with engine.connect() as conn:
        raw_lines = conn.execute(select(ChannelRecord.raw_line)).scalars().all()
    engine.dispose()
    cards = set(days.loans["bound_account"].to_list())
    assert raw_lines and not any(card in line for line in raw_lines for card in cards if len(card) >= 15)
    book = load_workbook(summary["workbook"], read_only=True)
    texts = [str(c) for sheet in book.worksheets for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert not any("\x00" in t or "\x1b" in t or "\x07" in t for t in texts)


def test_a_resent_copy_in_the_same_delivery_counts_once(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 150, seed=44)
    inbox = deliver(Path(recon_env["RECON_HOME"]), DAY, days.files[DAY])
    config = load_config({**os.environ, **recon_env})
    clean = reconcile_dates(config, [DAY], workbook=False)[0]
    name = next(n for n in days.files[DAY] if n.startswith("icbc_"))
    (inbox / name.replace(".txt", "_resent.txt")).write_bytes(days.files[DAY][name] + b"\n")  # other bytes, same lines
    again = reconcile_dates(config, [DAY], workbook=False)[0]
    assert again["status"] == "SUCCEEDED"
    assert again["fen"] == clean["fen"]
    # every record counts once; only the copy's own bad lines are its own invalid lines
    invalid = clean["outcomes"].get("INVALID_RECORD", 0)
    assert again["outcomes"] == {**clean["outcomes"], "INVALID_RECORD": 2 * invalid}
    resent = next(f for f in again["files"] if f["name"].endswith("_resent.txt"))
    assert any("counted once" in note for note in resent["notes"])


def test_a_file_holding_every_control_character_is_still_split_into_its_lines() -> None:
    from reconcile.ingest import split_lines

    every = bytes(range(1, 32)).replace(b"\n", b"").replace(b"\r", b"")
    assert split_lines(b"a|b\r\nc" + every + b"|d\n\ne\n").to_list() == ["a|b", "c" + every.decode() + "|d", "", "e"]
    # the same lines as the fast path gives for a file without them
    assert split_lines(b"a|b\r\nc|d\n\ne\n").to_list() == ["a|b", "c|d", "", "e"]


@pytest.mark.parametrize("name", ["alipay_trade_20261127.csv", "icbc_result_20261127.txt"])
def test_control_bytes_in_a_memo_are_that_lines_problem(name: str) -> None:
    import hashlib

    from reconcile.intake import DiscoveredFile, claim, parse_files

    data = generate_days(DAY, DAY, 150, seed=43).files[DAY][name]
    lines = data.split(b"\n")
    middle = len(lines) // 2
    lines[middle] = lines[middle][:20] + b"\x1c\x1d\x1e\x1f\x07" + lines[middle][20:]
    bad = b"\n".join(lines)
    settings = load_config({}).settings
    channel, layout = claim(name, bad, settings)
    found = DiscoveredFile(name, Path(name), hashlib.sha256(bad).hexdigest(), len(bad), channel, bad, layout=layout)
    parsed = parse_files([found], settings, DAY)[0]
    assert parsed.status == "ACCEPTED", parsed.rejected_reason
    assert parsed.invalid.height >= 1 and parsed.records.height > 10


PAIN002 = """<?xml version="1.0" encoding="UTF-8"?>
{doctype}<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-11-27T08:00:00</CreDtTm></GrpHdr>
<OrgnlPmtInfAndSts><TxInfAndSts><StsId>S1</StsId><OrgnlEndToEndId>P1&x;</OrgnlEndToEndId><TxSts>RJCT</TxSts>
<StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf><OrgnlTxRef><Amt><InstdAmt Ccy="CNY">10.00</InstdAmt></Amt></OrgnlTxRef>
</TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>
"""


@pytest.mark.parametrize(
    "doctype",
    [
        '<!DOCTYPE Document [<!ENTITY x "0">]>',  # an entity, silently dropped before
        '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
        '<!ENTITY x "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>',  # billion laughs, in small
        '<!DOCTYPE d SYSTEM "file:///etc/passwd">',  # an external one
    ],
)
def test_xml_with_a_document_type_is_refused_saying_why(doctype: str) -> None:
    import hashlib

    from reconcile.intake import DiscoveredFile, claim, parse_files

    data = PAIN002.format(doctype=doctype).encode()
    settings = load_config({}).settings
    channel, layout = claim("status_20261127.xml", data, settings)
    assert channel is not None, "recognised as ISO 20022 by its namespace"
    found = DiscoveredFile("status_20261127.xml", Path("x.xml"), hashlib.sha256(data).hexdigest(), len(data),
                           channel, data, layout=layout)  # fmt: skip
    parsed = parse_files([found], settings, DAY)[0]
    assert parsed.status == "REJECTED"
    assert parsed.rejected_reason is not None and "document type" in parsed.rejected_reason
