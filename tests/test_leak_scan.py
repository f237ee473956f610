"""A leak scan: a generated day with hostile lines that quote card, ID and phone numbers, run as a
user would at debug log level, and everything the product writes scanned for the snapshot's
names, ID numbers, phones and full account numbers: logs and the other output of every command,
workbooks, detail CSVs, JSON summaries, Prefect's database (artifacts, logs, flow-run parameters
and results) and the quarantine's reason files. Only the inbox, the archive and the quarantined
copies (the delivered bytes, kept as they came) and the servicing snapshot itself may hold them."""

from __future__ import annotations

import csv
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
RECON = Path(sys.executable).with_name("recon")
DAY = "2026-11-27"


def _recon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(RECON), *args], env=env, capture_output=True, text=True, timeout=300, check=False)


def _secrets(snapshot: Path) -> set[str]:
    """Every personal value of the snapshot a leak would show."""
    found: set[str] = set()
    with (snapshot / "loans.csv").open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            found |= {row["borrower_name"], row["id_number"], row["phone"], row["bound_account"]}
    with (snapshot / "instructions.csv").open(encoding="utf-8") as handle:
        found |= {row["account"] for row in csv.DictReader(handle)}
    return {value for value in found if len(value) >= 3}


def _hostile_copy(bank_file: bytes, card: str, id_number: str, phone: str) -> tuple[bytes, bytes]:
    """A re-send whose invalid fields are a card, an ID and a phone (each message quotes its field),
    and a file with a stray line that quotes a card (rejected whole, its reason quoting the line)."""
    lines = bank_file.split(b"\n")
    details = [i for i, line in enumerate(lines) if line.startswith(b"D|")]
    bad = {2: f"{card}\x07", 8: f"卡号 card {card} 身份证{id_number} 手机{phone} " + "x" * 200}
    for i, (column, value) in zip(details[-4:-2], bad.items(), strict=True):
        cells = lines[i].split(b"|")
        cells[column] = value.encode("gb18030")
        lines[i] = b"|".join(cells)
    cells = lines[details[-2]].split(b"|")
    cells[2] = f"{id_number} {phone}\x1b".encode("gb18030")
    lines[details[-2]] = b"|".join(cells)
    stray = list(bank_file.split(b"\n"))
    stray.insert(10, f"X|card {card} id {id_number}".encode("gb18030"))
    return b"\n".join(lines), b"\n".join(stray)


def test_nothing_personal_leaves_the_product(recon_env: dict[str, str], tmp_path: Path) -> None:
    home = Path(recon_env["RECON_HOME"])
    env = {
        "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "RECON_HOME": str(home),
        "RECON_DATABASE_URL": recon_env["RECON_DATABASE_URL"], "RECON_LOG_LEVEL": "DEBUG",
        "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_LOGGING_LEVEL": "DEBUG",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }  # fmt: skip
    generated = tmp_path / "generated"
    said = [_recon(env, "init"), _recon(env, "generate", "--date", DAY, "--loans", "300", "--seed", "17", "--out",
                                        str(generated))]  # fmt: skip
    said.append(_recon(env, "import-expected", str(generated / "snapshot")))
    secrets = _secrets(generated / "snapshot")
    inbox = home / "inbox" / DAY
    inbox.mkdir(parents=True)
    for source in (generated / "inbox" / DAY).iterdir():
        (inbox / source.name).write_bytes(source.read_bytes())
    bank = next(inbox.glob("icbc_*.txt"))
    card = next(value for value in secrets if value.startswith("62") and len(value) >= 16)
    id_number = next(value for value in secrets if len(value) == 18 and value[:17].isdigit())
    phone = next(value for value in secrets if len(value) == 11 and value.startswith("1") and value.isdigit())
    copy, stray = _hostile_copy(bank.read_bytes(), card, id_number, phone)
    (inbox / bank.name.replace(".txt", "_resent.txt")).write_bytes(copy)
    (inbox / bank.name.replace(".txt", "_stray.txt")).write_bytes(stray)
    contract = next(generated.joinpath("snapshot", "loans.csv").open(encoding="utf-8").readlines()[1:2].__iter__())
    contract_no = contract.split(",", 1)[0]

    said.append(_recon(env, "run", "--date", DAY, "--json"))
    said.append(_recon(env, "rerun", "--from", DAY, "--to", DAY, "--json"))
    said.append(_recon(env, "status", contract_no))
    said.append(_recon(env, "status", contract_no, "--json"))
    said.append(_recon(env, "inspect", str(inbox / bank.name.replace(".txt", "_resent.txt"))))
    said.append(_recon(env, "inspect", "--json", str(inbox / bank.name.replace(".txt", "_stray.txt"))))
    allowed = {"inspect": (0, 2)}  # inspecting a file that is rejected exits 2
    failed = [
        (d.args[1:3], d.returncode, d.stderr[-300:]) for d in said if d.returncode not in allowed.get(d.args[1], (0,))
    ]
    assert not failed, failed
    run = said[3]
    assert '"status": "SUCCEEDED"' in run.stdout, run.stderr[-2000:]
    assert "DEBUG" in "".join(d.stderr for d in said), "the run was not at debug log level"

    written: dict[str, str] = {f"{' '.join(d.args[1:3])} (stdout)": d.stdout for d in said}
    written |= {f"{' '.join(d.args[1:3])} (stderr)": d.stderr for d in said}
    reports = list((home / "reports").iterdir())
    assert any(p.suffix == ".xlsx" for p in reports) and any(p.suffix == ".csv" for p in reports)
    for path in reports:
        if path.suffix == ".xlsx":
            with zipfile.ZipFile(path) as book:
                written |= {f"{path.name}!{m}": book.read(m).decode("utf-8", "replace") for m in book.namelist()}
        else:
            written[path.name] = path.read_text(encoding="utf-8-sig")
    reasons = list((home / "quarantine").rglob("*.reason.txt"))
    assert reasons, "the stray file was not quarantined with its reason"
    written |= {p.name: p.read_text(encoding="utf-8") for p in reasons}
    written |= {p.name: p.read_text(encoding="utf-8") for p in (home / "archive").rglob(".manifest.jsonl")}
    prefect_files = [p for p in (tmp_path / "prefect").rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in prefect_files), "no Prefect database was written"
    written |= {str(p.relative_to(tmp_path)): p.read_bytes().decode("utf-8", "replace") for p in prefect_files}
    assert any("recon-summary" in text for text in written.values()), "the run's artifacts were not found"

    leaks = {(where, secret) for where, text in written.items() for secret in secrets if secret in text}
    assert not leaks, sorted(leaks)[:10]
    # and the quoting is still there, masked: the reviewer sees which line and why
    quoted = [text[text.index("card ") : text.index("card ") + 60] for text in written.values() if "card " in text]
    assert quoted and all("*" in q for q in quoted), quoted
