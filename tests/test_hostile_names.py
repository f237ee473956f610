"""File names from outside never stop a date: a GBK name, a name too long for the archive, a newline
in a name, a symbolic link. The good files reconcile exactly as without them. On both databases."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from flows.config import load_config
from flows.runner import reconcile_dates
from reconcile.intake import readable_name
from tests.books import deliver, imported_book

pytestmark = pytest.mark.slow
DAY = dt.date(2026, 11, 27)


def test_readable_names() -> None:
    assert readable_name("支付宝.csv".encode()) == "支付宝.csv"
    assert readable_name("工商银行.txt".encode("gbk")) == "工商银行.txt"  # a GBK name is read as GB18030
    assert readable_name(b"a\nforged: line.txt") == "a\\x0aforged: line.txt"
    assert readable_name(b"\xff\xfe.txt") == "\\xff\\xfe.txt"
    long_a, long_b = readable_name(b"a" * 300 + b"1"), readable_name(b"a" * 300 + b"2")
    assert long_a != long_b and len(long_a.encode()) <= 160


def test_hostile_names_beside_a_good_day(recon_env: dict[str, str], tmp_path: Path) -> None:
    url = recon_env["RECON_DATABASE_URL"]
    days = imported_book(url, tmp_path, DAY, DAY, 150, seed=41)
    home = Path(recon_env["RECON_HOME"])
    inbox = deliver(home, DAY, days.files[DAY])
    config = load_config({**os.environ, **recon_env})
    clean = reconcile_dates(config, [DAY], workbook=False)[0]

    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    raw_inbox = os.fsencode(inbox)
    with open(os.path.join(raw_inbox, "工行回盘.txt".encode("gbk")), "wb") as handle:
        handle.write(b"not a bank file\n")
    (inbox / ("x" * 240 + ".txt")).write_bytes(b"also not a bank file\n")
    (inbox / "forged\nicbc: ACCEPTED.txt").write_bytes(b"nothing\n")
    (inbox / "link.txt").symlink_to(secret)
    hostile = reconcile_dates(config, [DAY], workbook=False)[0]

    assert hostile["status"] == "SUCCEEDED"
    assert hostile["fen"] == clean["fen"] and hostile["balanced"]
    files = {f["name"]: f for f in hostile["files"]}
    assert files["工行回盘.txt"]["status"] == "REJECTED"
    long_name = next(name for name in files if name.startswith("x" * 100))
    assert long_name.startswith("x" * 140) and len(long_name.encode()) <= 160  # its start and a hash
    assert files[long_name]["status"] == "REJECTED"
    assert files["forged\\x0aicbc: ACCEPTED.txt"]["status"] == "REJECTED"
    assert files["link.txt"]["status"] == "REJECTED"
    assert "symbolic link" in files["link.txt"]["reason"]
    rejected = {k: v for k, v in hostile["outcomes"].items() if k == "FILE_REJECTED"}
    assert rejected["FILE_REJECTED"] == clean["outcomes"]["FILE_REJECTED"] + 4
    quarantine = home / "quarantine" / DAY.isoformat()
    copied = b"".join(p.read_bytes() for p in quarantine.iterdir() if p.is_file())
    assert b"root:x" not in copied, "the link's target was copied"
    reasons = [line for p in quarantine.glob("*.reason.txt") for line in p.read_text(encoding="utf-8").splitlines()]
    assert not any(line.startswith("icbc: ACCEPTED") for line in reasons), "a name forged a line"
    assert all(len(os.fsencode(p.name)) <= 255 for p in quarantine.iterdir())
