"""A fuzz target per statement reader: any bytes give statement lines or a refusal with a reason
— never another exception, never a hang — whether read as the layout or found by content as the
product finds it. Each starts from a good statement (the golden fortnight's 招商银行 download, an
ICBC personal download, a camt.053 with a batch entry, an MT940) damaged at random."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from hypothesis import given

from flows.config import load_channel_config, load_funds_rules
from reconcile.funds.rules import packaged_funds_rules
from reconcile.funds.statements import StatementRejected, _read_statement, read_statement
from reconcile.intake import DiscoveredFile, claim, parse_files
from reconcile.settings import settings_from_mapping
from schemas.funds import StatementLineFrame
from tests import funds_week as W
from tests.test_fuzz_readers import FUZZ, damaged
from tests.test_statements import ICBC, MT940, _camt, _entry, _tx

LAYOUTS = packaged_funds_rules().statement_layouts
CHANNELS = load_channel_config()
FUNDS = load_funds_rules(None, tuple(CHANNELS["channels"]))
SETTINGS = dataclasses.replace(settings_from_mapping(CHANNELS), funds=FUNDS, funds_from=W.D(2026, 9, 28))
BATCH = "".join(_tx(a, "支付宝（中国）网络技术有限公司", f"结算 2026100{n}", f"T{n}") for n, a in
                enumerate(["100.00", "200.50", "0.25"], start=1))  # fmt: skip
SEEDS: dict[str, bytes] = {
    "cmb_corporate": W.statement_bytes(),
    "icbc_personal": ICBC.encode("gb18030"),
    "camt053": _camt(_entry("300.75", BATCH), closing="400.75"),
    "mt940": MT940.encode(),
}


@pytest.mark.parametrize("kind", sorted(SEEDS))
def test_any_bytes_of_a_statement_give_lines_or_a_reason(kind: str) -> None:
    seed = SEEDS[kind]
    assert read_statement(seed, "seed", LAYOUTS)[1].height > 0  # the seed itself reads

    @FUZZ
    @given(data=damaged(seed))
    def read_damaged(data: bytes) -> None:
        try:
            _, lines = _read_statement(data, "s", LAYOUTS, True, "CNY")  # no safety net: surprises show
        except StatementRejected as refused:
            assert str(refused).strip()
        else:
            StatementLineFrame.validate(lines)
            assert lines["line_key"].is_unique().all()
        sha = hashlib.sha256(data).hexdigest()
        channel, layout = claim("s", data, SETTINGS)
        found = DiscoveredFile("s", Path("s"), sha, len(data), channel, data, layout=layout)
        for parsed in parse_files([found], SETTINGS, dt.date(2026, 10, 14)):
            assert parsed.status in ("ACCEPTED", "REJECTED")
            assert parsed.rejected_reason is None or parsed.rejected_reason.strip()

    read_damaged()
