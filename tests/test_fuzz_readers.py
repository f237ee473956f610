"""A fuzz target per layout reader: any bytes give records, invalid lines or a rejection — never an
exception, never a hang. Each layout starts from a good file of its own and is damaged at random
(bytes replaced, inserted, cut, lines repeated or dropped), and plain random bytes are tried too.
Bounded for CI: a few dozen examples per layout, each with a deadline."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.config import load_channel_config
from reconcile import synthetic as syn
from reconcile.delivery import DeliveryRejected, unpack
from reconcile.ingest import ParsedFile, identify_layout, parse_channel_file
from reconcile.intake import DiscoveredFile, claim, parse_files
from reconcile.settings import settings_from_mapping
from reconcile.text import QUOTE_CHARS
from schemas.frames import ChannelRecordFrame
from tests.conftest import REAL_SAMPLES
from tests.iso_files import Status, camt054, detail, pain002

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 12, seed=8, refund_every=5, fail_every=4)
ALIPAY_PERSONAL = REAL_SAMPLES / "alipay_personal_2023" / "example-alipay-records.csv"
ALIPAY_WEB = REAL_SAMPLES / "alipay_web_2019" / "example-alipay-records.csv"

#: layout → (channel, file name, a good file of that layout)
SEEDS: dict[str, tuple[str, str, bytes]] = {
    "alipay_trade": ("alipay", "alipay_trade_20261127.csv", syn.alipay_trade_bill(DAY, LINES)),
    "alipay_signcustomer": ("alipay", "alipay_account_20261127.csv", syn.alipay_account_bill(DAY, LINES)),
    "bank_pipe_v1": ("icbc", "icbc_result_20261127.txt", syn.bank_result_file(DAY, LINES)),
    "bank_fixed_v1": ("boc", "boc_result_20261127.txt", syn.bank_fixed_file(DAY, LINES)),
    "unionpay_zm": ("unionpay", syn.unionpay_zm_name(DAY), syn.unionpay_zm_file(DAY, LINES)),
    "offline_repayments": ("offline", "offline_repayments_20261127.csv", syn.offline_repayments_file(LINES)),
    "iso20022": (
        "iso20022",
        "status.xml",
        pain002(
            [Status("I1", "S1"), Status("I2", "S2", "RJCT", reason="AM04")], created=f"{DAY}T20:00:00", pretty=True
        ),
    ),
}
CAMT = camt054([("E1", "30.00", [detail("I1", "10.00"), detail("I2", "20.00")])], booked=str(DAY))
SEEDS["iso20022_camt"] = ("iso20022", "notice.xml", CAMT)
for _layout, _path in (("alipay_personal", ALIPAY_PERSONAL), ("alipay_personal_web2019", ALIPAY_WEB)):
    if _path.is_file():
        SEEDS[_layout] = ("alipay_personal", _path.name, _path.read_bytes())

HOSTILE_BYTES = st.sampled_from([b"\x00", b"\x07", b"\x1b", b"\x1c", b"\x1f", b"\r", b"\n", b"|", b",", b'"', b"\t",
                                 b"\xff", b"\xc3", b"\xe4\xb8", b"<", b"&", b"]]>", b"\xef\xbb\xbf", b"9" * 70,
                                 "支付宝".encode("gb18030"), b"1e+27", b"-", b"."])  # fmt: skip


@st.composite
def damaged(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` damaged by a few random edits, or plain random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=3000))
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        edit = draw(st.sampled_from(["replace", "insert", "cut", "repeat_line", "drop_line", "truncate"]))
        if edit == "replace" and data:
            data[at : at + 1] = draw(HOSTILE_BYTES | st.binary(min_size=1, max_size=4))
        elif edit == "insert":
            data[at:at] = draw(HOSTILE_BYTES | st.binary(min_size=1, max_size=8))
        elif edit == "cut":
            del data[at : at + draw(st.integers(1, 40))]
        elif edit == "truncate":
            del data[at:]
        else:
            lines = bytes(data).split(b"\n")
            n = draw(st.integers(0, max(len(lines) - 1, 0)))
            lines[n:n] = [lines[n]] if edit == "repeat_line" else []
            if edit == "drop_line":
                del lines[n]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


def _check(parsed: ParsedFile) -> None:
    assert isinstance(parsed, ParsedFile)
    if parsed.rejected_reason is not None:
        assert parsed.records.height == 0 and parsed.rejected_reason.strip()
        return
    if parsed.records.height:
        ChannelRecordFrame.validate(parsed.records)  # what is kept fits the columns on every database
    assert parsed.invalid["message"].null_count() == 0
    longest = parsed.invalid.select(pl.col("message", "raw_line").str.len_chars().max()).row(0)
    assert all(n is None or n <= QUOTE_CHARS + 40 for n in longest), longest


FUZZ = settings(max_examples=40, deadline=dt.timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)  # fmt: skip


@pytest.mark.parametrize("layout", sorted(SEEDS))
def test_any_bytes_in_a_layout_give_records_invalid_lines_or_a_rejection(layout: str) -> None:
    channel_id, name, seed = SEEDS[layout]
    channel = SETTINGS.channels[channel_id]
    spec = SETTINGS.layouts[layout.removesuffix("_camt")]
    _check(parse_channel_file(name, seed, "0" * 64, channel, spec, DAY))  # the seed itself reads

    @FUZZ
    @given(data=damaged(seed))
    def read_damaged(data: bytes) -> None:
        sha = hashlib.sha256(data).hexdigest()
        _check(parse_channel_file(name, data, sha, channel, spec, DAY))  # read as that layout, whatever it is
        found_channel, found_layout = claim(name, data, SETTINGS)  # and as the product would find it
        found = DiscoveredFile(name, Path(name), sha, len(data), found_channel, data, layout=found_layout)
        for parsed in parse_files([found], SETTINGS, DAY):
            _check(parsed)

    read_damaged()


@FUZZ
@given(data=damaged(SEEDS["alipay_trade"][2]), member=st.text(max_size=30))
def test_any_bytes_in_a_zip_give_pieces_or_a_refusal(data: bytes, member: str) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member or "x", data)
    zipped = buffer.getvalue()
    for blob in (zipped, zipped[: len(zipped) // 2], zipped.replace(b"PK\x01\x02", b"PK\x01\x03")):
        try:
            pieces = unpack("bills.zip", blob, SETTINGS.layouts)
        except DeliveryRejected as refused:
            assert str(refused)
            continue
        assert all(identify_layout(p.data, SETTINGS.layouts) is not None for p in pieces)
