"""Zipped deliveries: members picked by content, unsafe or ambiguous zips refused whole."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

import pytest

from flows.config import load_channel_config
from reconcile.delivery import DeliveryRejected, unpack
from reconcile.settings import settings_from_mapping
from reconcile.synthetic import generate_days

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
BILL = generate_days(DAY, DAY, 80, seed=2).files[DAY]["alipay_trade_20261127.csv"]


class GbkNamedInfo(zipfile.ZipInfo):
    """A member named as Alipay's zips name them: GBK bytes, without the UTF-8 flag."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("gb18030"), self.flag_bits & ~0x800


def zipped(*members: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members:
            info = GbkNamedInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def test_the_bill_member_is_picked_by_content_and_named_after_the_zip() -> None:
    data = zipped(
        ("20889_20261127_业务明细(汇总).csv", "#汇总\n交易合计,1\n".encode("gb18030")),
        ("20889_20261127_业务明细.csv", BILL),
    )
    pieces = unpack("bills.zip", data, SETTINGS.layouts)
    assert [p.name for p in pieces] == ["bills.zip!20889_20261127_业务明细.csv"]
    assert pieces[0].data == BILL


def test_a_plain_file_is_one_piece() -> None:
    assert unpack("a.csv", BILL, SETTINGS.layouts)[0].data == BILL


@pytest.mark.parametrize(
    ("members", "reason"),
    [
        ((("a_业务明细.csv", BILL), ("b_业务明细.csv", BILL)), "two members hold the same kind of detail"),
        ((("../../etc/业务明细.csv", BILL),), "tries to leave its folder"),
        ((("/abs/业务明细.csv", BILL),), "tries to leave its folder"),
        ((("readme.txt", b"hello"),), "no member of the zip is a bill"),
    ],
)
def test_unsafe_or_ambiguous_zips_are_refused_whole(members: tuple[tuple[str, bytes], ...], reason: str) -> None:
    with pytest.raises(DeliveryRejected, match=reason):
        unpack("bills.zip", zipped(*members), SETTINGS.layouts)


def test_a_member_of_no_interest_is_never_inflated_whatever_it_claims() -> None:
    bomb = b"\0" * (300 << 20)  # compresses about 1000:1
    data = zipped(("readme.txt", bomb), ("x_业务明细.csv", BILL))
    assert len(data) < 1 << 20
    assert [p.data for p in unpack("bills.zip", data, SETTINGS.layouts)] == [BILL]


def test_a_bill_inflating_past_the_bound_refuses_its_zip() -> None:
    large = generate_days(DAY, DAY, 3000, seed=2).files[DAY]["alipay_trade_20261127.csv"]  # 135 KiB
    data = zipped(("x_业务明细.csv", large))
    assert unpack("bills.zip", data, SETTINGS.layouts, max_member_bytes=256 << 10)[0].data == large
    said = (
        r"inflates to [\d,]+ bytes from [\d,]+ \(\d+:1\); refused as unsafe: a member may inflate to at most 0.125 MB"
    )
    with pytest.raises(DeliveryRejected, match=said):
        unpack("bills.zip", data, SETTINGS.layouts, max_member_bytes=128 << 10)


def test_a_bill_that_inflates_more_than_two_hundred_to_one_is_a_bomb() -> None:
    padded = BILL.replace(b"\n", b" " * 4000 + b"\n", 3)  # the header lines stay readable
    data = zipped(("x_业务明细.csv", padded + b" " * (40 << 20)))
    with pytest.raises(DeliveryRejected, match=r"\([0-9,]{4,}:1\); refused as unsafe"):
        unpack("bills.zip", data, SETTINGS.layouts)


def test_a_member_whose_zip_understates_its_size_is_not_read_past_the_claim() -> None:
    data = bytearray(zipped(("x_业务明细.csv", BILL)))
    size = len(BILL).to_bytes(4, "little")
    small = (1000).to_bytes(4, "little")
    assert data.count(size) == 2  # the local header and the central directory
    data = bytearray(bytes(data).replace(size, small))
    with pytest.raises(DeliveryRejected, match=r"cannot be read: Bad CRC-32"):
        unpack("bills.zip", bytes(data), SETTINGS.layouts)


def test_a_damaged_zip_is_refused() -> None:
    data = zipped(("x_业务明细.csv", BILL))
    with pytest.raises(DeliveryRejected, match=r"damaged|cannot be read"):
        unpack("bills.zip", data[: len(data) // 2], SETTINGS.layouts)


@pytest.mark.slow
def test_a_zipped_bill_reconciles_like_the_plain_one(recon_env: dict[str, str], tmp_path: Path) -> None:
    import polars as pl
    from sqlalchemy import create_engine, select

    from flows.config import load_config
    from flows.db import ChannelRecord
    from flows.importer import import_snapshot, write_snapshot
    from flows.runner import reconcile_dates
    from flows.store import connect

    days = generate_days(DAY, DAY, 120, seed=12)
    write_snapshot(tmp_path / "snapshot", days.loans, days.installments, days.instructions)
    engine = connect(recon_env["RECON_DATABASE_URL"])
    import_snapshot(engine, tmp_path / "snapshot")
    engine.dispose()
    inbox = Path(recon_env["RECON_HOME"]) / "inbox" / DAY.isoformat()
    inbox.mkdir(parents=True)
    for name, data in days.files[DAY].items():
        if name.startswith("alipay"):
            (inbox / "20889_20261127.csv.zip").write_bytes(zipped((f"20889_{DAY:%Y%m%d}_业务明细.csv", data)))
        else:
            (inbox / name).write_bytes(data)
    summary = reconcile_dates(load_config(), [DAY], workbook=False)[0]
    assert summary["balanced"] and any(f["name"].endswith("业务明细.csv") for f in summary["files"])
    engine = create_engine(recon_env["RECON_DATABASE_URL"])
    with engine.connect() as conn:
        stored = dict(conn.execute(select(ChannelRecord.record_key, ChannelRecord.outcome)).all())
    engine.dispose()
    alipay = days.expected.filter(pl.col("subject_key").str.starts_with("alipay|"))
    assert alipay.height > 0
    assert {k: stored.get(k) for k in alipay["subject_key"]} == dict(
        alipay.select("subject_key", "expected_outcome").iter_rows()
    )
    assert list((Path(recon_env["RECON_HOME"]) / "archive" / DAY.isoformat()).glob("*20889_20261127.csv.zip"))
