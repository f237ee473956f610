"""The malformed-file corpus: each file gives exactly the error (or result) written beside it."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from pathlib import Path

import pytest

from flows.config import load_channel_config
from reconcile.delivery import DeliveryRejected, unpack
from reconcile.ingest import identify_layout, parse_channel_file
from reconcile.settings import settings_from_mapping

CORPUS = Path(__file__).with_name("corpus")
SETTINGS = settings_from_mapping(load_channel_config())
with open(CORPUS / "expected.csv", encoding="utf-8") as handle:
    CASES = list(csv.DictReader(handle))


def what_the_product_makes_of(file: str, channel_id: str) -> str:
    data = (CORPUS / file).read_bytes()
    channel = SETTINGS.channels[channel_id]
    try:
        piece = unpack(file, data, SETTINGS.layouts)[0]
    except DeliveryRejected as rejected:
        return f"rejected: {rejected}"
    # the channel's layout the content shows (Alipay sends two), as the run would pick it
    own = {name: SETTINGS.layouts[name] for name in channel.layouts}
    layout = SETTINGS.layouts[identify_layout(piece.data, own) or channel.layout]
    parsed = parse_channel_file(
        piece.name, piece.data, hashlib.sha256(piece.data).hexdigest(), channel, layout, dt.date(2026, 11, 27)
    )
    if parsed.rejected_reason:
        return f"rejected: {parsed.rejected_reason}"
    if parsed.invalid.height:
        first = parsed.invalid.row(0, named=True)
        return f"invalid line {first['line_no']} {first['check']}: {first['message']}"
    return f"accepted: {parsed.records.height} records"


def test_the_corpus_has_at_least_thirty_malformed_files() -> None:
    malformed = [case for case in CASES if not case["expected"].startswith("accepted")]
    assert len(malformed) >= 30
    assert all((CORPUS / case["file"]).exists() for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["file"] for case in CASES])
def test_each_file_gives_its_exact_error(case: dict[str, str]) -> None:
    assert what_the_product_makes_of(case["file"], case["channel"]) == case["expected"]
