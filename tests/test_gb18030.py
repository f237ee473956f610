"""GB18030 → UTF-8: the C loop gives exactly what CPython's codec gives, or hands the bytes back.

The codec is the reference for every outcome, including where a file stops being GB18030.
"""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconcile import gb18030
from reconcile.gb18030 import gb18030_to_utf8, pair_table

needs_c = pytest.mark.skipif(not gb18030.accelerated(), reason="reconcile._gb18030 was not built (no C compiler)")


def by_codec(data: bytes) -> bytes | str:
    try:
        return data.decode("gb18030").encode("utf-8")
    except UnicodeDecodeError as error:
        return f"undecodable at {error.start}"


def by_us(data: bytes) -> bytes | str:
    try:
        return gb18030_to_utf8(data)
    except UnicodeDecodeError as error:
        return f"undecodable at {error.start}"


@needs_c
def test_every_two_byte_pair_translates_as_the_codec_does_or_is_handed_back() -> None:
    from reconcile._gb18030 import transcode

    table = pair_table()
    taken = 0
    for lead in range(0x80, 0x100):
        for trail in range(0x100):
            # between ASCII, so the eight-bytes-at-a-time path meets the pair at every alignment
            data = b"ab" * (trail % 5) + bytes((lead, trail)) + b"0123456789"
            fast = transcode(data, table)
            if fast is not None:
                taken += 1
                assert fast == by_codec(data), (hex(lead), hex(trail))
            assert by_us(data) == by_codec(data), (hex(lead), hex(trail))
    assert taken > 20_000  # the GBK repertoire goes through the C loop, not the codec


@needs_c
def test_a_four_byte_character_or_a_lone_lead_byte_goes_to_the_codec() -> None:
    from reconcile._gb18030 import transcode

    rare = "还款 𠮷 €".encode("gb18030")  # 𠮷 is four bytes in GB18030
    assert transcode(rare, pair_table()) is None
    assert gb18030_to_utf8(rare) == "还款 𠮷 €".encode()
    assert transcode("还款".encode("gb18030")[:-1], pair_table()) is None
    assert by_us("还款".encode("gb18030")[:-1]) == by_codec("还款".encode("gb18030")[:-1]) == "undecodable at 2"


def test_the_table_has_a_wrong_size_refused() -> None:
    if not gb18030.accelerated():
        pytest.skip("reconcile._gb18030 was not built (no C compiler)")
    from reconcile._gb18030 import transcode

    with pytest.raises(ValueError, match="65536 entries"):
        transcode(b"abc", b"short")


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="gb18030", exclude_categories=["Cs"]), max_size=80))
def test_any_gb18030_text_comes_back_as_the_same_text(text: str) -> None:
    assert gb18030_to_utf8(text.encode("gb18030")) == text.encode("utf-8")


@settings(max_examples=300)
@given(st.binary(max_size=64))
def test_any_bytes_give_what_the_codec_gives_or_fail_where_it_fails(data: bytes) -> None:
    assert by_us(data) == by_codec(data)


@settings(max_examples=200)
@given(st.lists(st.sampled_from(["还款", "交易", "王*", "T2026", ",", "\r\n", "¥", "·", "—", " "]), max_size=40))
def test_bill_like_text_round_trips(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert gb18030_to_utf8(codecs.encode(text, "gb18030")) == text.encode("utf-8")


def test_a_bill_with_a_four_byte_character_reads_through_the_codec() -> None:
    import datetime as dt

    from flows.config import load_channel_config
    from reconcile import synthetic as syn
    from reconcile.ingest import parse_channel_file
    from reconcile.settings import settings_from_mapping

    settings = settings_from_mapping(load_channel_config())
    day = dt.date(2026, 11, 27)
    lines = syn.sample_lines(day, 20, seed=2)
    bill = syn.alipay_trade_bill(day, lines.filter(lines["status"] == "SUCCESS")).decode("gb18030")
    rare = bill.replace("贷款还款", "贷款还款𠮷", 1).encode("gb18030")
    parsed = parse_channel_file(
        "alipay_trade_20261127.csv", rare, "0" * 64, settings.channels["alipay"], settings.layouts["alipay_trade"], day
    )
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    assert parsed.records.filter(parsed.records["raw_line"].str.contains("贷款还款𠮷")).height == 1


@needs_c
@settings(max_examples=200)
@given(st.text(alphabet=st.characters(codec="gbk", exclude_categories=["Cs"]), max_size=60))
def test_marked_text_counts_gb18030_bytes(text: str) -> None:
    from reconcile.gb18030 import gb18030_to_marked_utf8

    data = text.encode("gb18030")
    marked = gb18030_to_marked_utf8(data, "\x01")
    assert marked is not None
    expected = "".join(c + "\x01" if ord(c) > 0x7F else c for c in text)
    assert marked.decode("utf-8") == expected
    assert len(marked.decode("utf-8")) == len(data)


def test_a_fixed_width_file_reads_the_same_marked_by_the_c_loop_or_by_expressions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datetime as dt

    from flows.config import load_channel_config
    from reconcile import ingest
    from reconcile import synthetic as syn
    from reconcile.reader import decoding
    from reconcile.settings import settings_from_mapping

    settings = settings_from_mapping(load_channel_config())
    day = dt.date(2026, 11, 27)
    lines = syn.sample_lines(day, 60, seed=4)
    clean = syn.bank_fixed_file(day, lines.filter(lines["kind"] == "debit"))
    text = clean.decode("gb18030").split("\r\n")
    text[3] = text[3][:79] + "王" + text[3][81:]  # a character across a field boundary (as in the corpus)
    shifted = "\r\n".join(text).encode("gb18030")

    def read(data: bytes) -> ingest.ParsedFile:
        return ingest.parse_channel_file(
            "boc_result_20261127.txt", data, "0" * 64, settings.channels["boc"], settings.layouts["bank_fixed_v1"], day
        )

    fast = [read(clean), read(shifted)]
    monkeypatch.setattr(decoding, "gb18030_to_marked_utf8", lambda data, mark: None)
    slow = [read(clean), read(shifted)]
    assert fast[0].records.height > 20 and fast[0].records.equals(slow[0].records)
    assert fast[0].invalid.height == slow[0].invalid.height == 0
    assert fast[1].rejected_reason == slow[1].rejected_reason
    assert "straddles two fields" in (fast[1].rejected_reason or "")


def test_a_large_mixed_text_comes_back_whole() -> None:
    """Long runs of ASCII between characters, so the eight-bytes-at-a-time path meets every case."""
    import random

    draw = random.Random(7)
    alphabet = [chr(c) for c in range(0x20, 0x7F)] + list("还款交易王李张账户状态异常，。：￥·—") + ["\r\n", "\t"]
    text = "".join(draw.choice(alphabet) if draw.random() < 0.3 else "A" * draw.randint(0, 20) for _ in range(60_000))
    assert gb18030_to_utf8(text.encode("gb18030")) == text.encode("utf-8")


def test_a_fixed_width_file_holding_the_marker_byte_keeps_it_in_its_raw_line() -> None:
    import datetime as dt

    from flows.config import load_channel_config
    from reconcile import ingest
    from reconcile import synthetic as syn
    from reconcile.settings import settings_from_mapping

    settings = settings_from_mapping(load_channel_config())
    day = dt.date(2026, 11, 27)
    lines = syn.sample_lines(day, 20, seed=4)
    text = syn.bank_fixed_file(day, lines.filter(lines["kind"] == "debit")).decode("gb18030").split("\r\n")
    text[2] = text[2][:-1] + "\x01"  # a control byte in the last (padded) field keeps the line's width
    parsed = ingest.parse_channel_file(
        "boc_result_20261127.txt",
        "\r\n".join(text).encode("gb18030"),
        "0" * 64,
        settings.channels["boc"],
        settings.layouts["bank_fixed_v1"],
        day,
    )
    kept = parsed.records.filter(parsed.records["line_no"] == 3)["raw_line"].to_list()
    assert kept == [text[2]]
