"""One hostile inbox beside a good day, on both databases: every hostile file is refused with its
own reason, every hostile line is an invalid line with its own reason, the good files reconcile
exactly as without them, the run succeeds and the later date it cascades to is unchanged."""

from __future__ import annotations

import datetime as dt
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from flows.config import load_config
from flows.runner import reconcile_dates
from reconcile.iso20022 import DTD_REFUSED
from reconcile.synthetic import SyntheticDays
from tests.books import deliver, imported_book
from tests.dbdump import dump_books
from tests.iso_files import PAIN, Status, camt054, detail, pain002

pytestmark = pytest.mark.slow
DAY, NEXT = dt.date(2026, 11, 27), dt.date(2026, 11, 28)
STAMP = DAY.strftime("%Y%m%d")


def _zip(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def _xml(inner: bytes, doctype: bytes = b"") -> bytes:
    return (
        b'<?xml version="1.0"?>\n'
        + doctype
        + b'<Document xmlns="'
        + PAIN.encode()
        + b'"><CstmrPmtStsRpt>'
        + (inner + b"</CstmrPmtStsRpt></Document>")
    )


LAUGHS = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>\n'


def _bank_copy(bank_file: bytes) -> tuple[bytes, dict[int, str]]:
    """A re-send of a bank file with hostile bytes in five of its lines; the line numbers → the
    check each must fail."""
    lines = bank_file.split(b"\n")
    details = [i for i, line in enumerate(lines) if line.startswith(b"D|")]
    targets = details[-6:-1]
    assert len(b"\n".join(lines[: targets[0]])) > 4096  # a NUL after the first 4 KiB
    cells = {i: lines[i].split(b"|") for i in targets}
    cells[targets[0]][2] += b"\x1b[31m\x0b\x07"  # ESC, VT and BEL in the instruction id
    cells[targets[1]][8] = b"memo \x1c\x1d\x1e\x1f\x07 end"  # the reader's separators in a memo
    cells[targets[2]][2] = cells[targets[2]][2][:3] + b"\x00" + cells[targets[2]][2][3:]
    cells[targets[3]][2] = b"R" * 100  # a reference longer than its column
    cells[targets[4]][8] = b"x" * (5 << 20)  # a 5 MB field
    for i in targets:
        lines[i] = b"|".join(cells[i])
    checks = {targets[0] + 1: "str_matches", targets[1] + 1: "str_matches", targets[2] + 1: "str_matches",
              targets[3] + 1: "str_length", targets[4] + 1: "line_too_long"}  # fmt: skip
    return b"\n".join(lines), checks


def _hostile_files(days: SyntheticDays) -> tuple[dict[str, bytes], dict[str, str], dict[int, str], str]:
    """(name → bytes, name → the start of the reason it is refused with, line → check, bank copy)."""
    files = days.files[DAY]
    bank = next(n for n in files if n.startswith("icbc_"))
    copy, checks = _bank_copy(files[bank])
    long_first_line = files[bank].split(b"\n")
    long_first_line[1] += b"|" + b"9" * (5 << 20)
    bill = next(n for n in files if n.startswith("alipay_trade"))
    padded = files[bill].replace(b"\n", b" " * 4000 + b"\n", 3) + b" " * (40 << 20)
    details = [detail("X1", "100.00"), detail("X2", "120.00"), detail("X3", "80.00"),
               detail("'; DROP TABLE loans; --", "5.00")]  # SQL travels as parameters, never as text  # fmt: skip
    entries = [("E-9", "305.00", details)]
    hostile = {
        "x" * 240 + ".txt": b"not a bank file\n",
        "forged\nicbc: ACCEPTED.txt": b"nothing\n",
        bank.replace(".txt", "_resent.txt"): copy,
        f"icbc_long_{STAMP}.txt": b"\n".join(long_first_line),
        f"alipay_{STAMP}.zip": _zip(f"20889_{STAMP}_业务明细.csv", padded),
        "laughs.xml": _xml(b"<GrpHdr><MsgId>&lol2;</MsgId></GrpHdr>", LAUGHS),
        "deep.xml": _xml(b"<a>" * 300 + b"</a>" * 300),
        "huge_text.xml": _xml(b"<GrpHdr><MsgId>" + b"x" * (11 << 20) + b"</MsgId></GrpHdr>"),
        "pain_eur.xml": pain002(
            [Status(f"Y{i}", f"SY{i}", currency="EUR") for i in range(3)], created=f"{DAY}T20:00:00"
        ),
        "camt_a.xml": camt054(entries, booked=DAY.isoformat()),
        "camt_b.xml": camt054(entries, booked=DAY.isoformat()).replace(b"<MsgId>N1", b"<MsgId>N2"),
    }
    reasons = {
        "x" * 140: "no configured layout recognises",
        "forged\\x0aicbc: ACCEPTED.txt": "no configured layout recognises",
        "工行回盘.txt": "no configured layout recognises",
        "link.txt": "a symbolic link: not followed",
        f"icbc_long_{STAMP}.txt": "line 2 is longer than 65,536 bytes",
        f"alipay_{STAMP}.zip": f"member '20889_{STAMP}_业务明细.csv' inflates to",
        "laughs.xml": DTD_REFUSED,
        "deep.xml": "the XML nests elements deeper than 256 levels",
        "huge_text.xml": "the XML holds a text of more than 10 MB",
    }
    return hostile, reasons, checks, bank.replace(".txt", "_resent.txt")


def _good_part(books: dict[str, list[tuple[Any, ...]]], hostile: set[str]) -> dict[str, list[tuple[Any, ...]]]:
    """The books without what the hostile files brought (their rows name their file)."""
    return {
        table: [row for row in rows if not any(isinstance(v, str) and v.startswith(tuple(hostile)) for v in row)]
        for table, rows in books.items()
        if table != "source_files"
    }


def test_a_hostile_inbox_beside_a_good_day(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, NEXT, 300, seed=45)
    home = Path(recon_env["RECON_HOME"])
    inbox = deliver(home, DAY, days.files[DAY])
    deliver(home, NEXT, days.files[NEXT])
    config = load_config({**os.environ, **recon_env})
    clean = {s["business_date"]: s for s in reconcile_dates(config, [DAY, NEXT], workbook=False)}
    clean_books = dump_books(url, open_exceptions_only=True)

    hostile, reasons, checks, copy = _hostile_files(days)
    for name, data in hostile.items():
        (inbox / name).write_bytes(data)
    with open(os.path.join(os.fsencode(inbox), "工行回盘.txt".encode("gbk")), "wb") as handle:
        handle.write(b"not a bank file either\n")
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    (inbox / "link.txt").symlink_to(secret)

    summaries = reconcile_dates(config, [DAY])
    assert [(s["business_date"], s["status"]) for s in summaries] == [(str(DAY), "SUCCEEDED"), (str(NEXT), "SUCCEEDED")]
    summary = summaries[0]
    # the only money the hostile files bring: the camt.054 entry's four details (305 yuan), held
    camt_fen = 30_500
    before = clean[str(DAY)]["fen"]
    assert summary["balanced"]
    assert summary["fen"] == {**before, "received": before["received"] + camt_fen, "held": before["held"] + camt_fen}
    assert summaries[1]["outcomes"] == clean[str(NEXT)]["outcomes"]
    files = {f["name"]: f for f in summary["files"]}
    for start, reason in reasons.items():
        name = next(n for n in files if n.startswith(start))
        assert files[name]["status"] == "REJECTED" and files[name]["reason"].startswith(reason), files[name]
    # the re-sent copy: its clean lines count once, in the original; its hostile lines are invalid
    assert files[copy]["status"] == "ACCEPTED" and any("counted once" in n for n in files[copy]["notes"])
    assert files["pain_eur.xml"]["status"] == "ACCEPTED" and files["camt_b.xml"]["status"] == "ACCEPTED"
    assert any("counted once" in n for n in files["camt_b.xml"]["notes"])

    books = dump_books(url, open_exceptions_only=True)
    named = {*hostile, *reasons, "工行回盘.txt", "link.txt", "E-9/"}  # the camt.054 details are held by id
    good, before_books = _good_part(books, named), _good_part(clean_books, named)
    for table in good:
        assert good[table] == before_books[table], (table, set(good[table]) ^ set(before_books[table]))

    from tests.dbdump import stored_outcomes

    stored = stored_outcomes(url)
    bad_lines = stored.filter(stored["subject_key"].str.starts_with(f"icbc|line|{copy}|"))
    found = {int(key.rsplit("|", 1)[1]) for key in bad_lines["subject_key"]}
    assert set(checks) <= found
    camt = stored.filter(stored["subject_key"].str.starts_with("iso20022|debit|E-9/"))
    assert sorted(camt["subject_key"]) == [f"iso20022|debit|E-9/{n}|" for n in (1, 2, 3, 4)]
    eur = stored.filter(stored["subject_key"].str.starts_with("iso20022|line|pain_eur.xml|"))
    assert eur.height == 3 and set(eur["outcome"]) == {"INVALID_RECORD"}
    _assert_each_line_says_why(url, copy, checks)
    quarantine = home / "quarantine" / DAY.isoformat()
    assert b"root:x" not in b"".join(p.read_bytes() for p in quarantine.iterdir() if p.is_file())
    assert all(len(os.fsencode(p.name)) <= 255 for p in quarantine.iterdir())


def _assert_each_line_says_why(url: str, copy: str, checks: dict[int, str]) -> None:
    from sqlalchemy import create_engine, select

    from flows.db import ExceptionItem

    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(ExceptionItem.line_no, ExceptionItem.facts, ExceptionItem.explanation_en).where(
                ExceptionItem.source_file == copy, ExceptionItem.outcome == "INVALID_RECORD"
            )
        ).all()
    engine.dispose()
    said = {line: f"{facts} {text}" for line, facts, text in rows}
    for line, check in checks.items():
        assert line in said, (line, sorted(said))
        assert check in said[line] or (check == "line_too_long" and "line too long" in said[line]), said[line]
        assert len(said[line]) < 2000  # a 5 MB field is never quoted whole
