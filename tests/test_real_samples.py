"""The real public ISO 20022 samples in ../shared/real_samples/ (see its PROVENANCE.md)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.config import load_channel_config
from reconcile.ingest import identify_layout, parse_channel_file
from reconcile.settings import settings_from_mapping
from tests.conftest import REAL_SAMPLES

SETTINGS = settings_from_mapping(load_channel_config())
PAIN = REAL_SAMPLES / "iso20022_pain002" / "test-sepa-pain-unpaid.xml"
CAMT = REAL_SAMPLES / "iso20022_camt054" / "test-sepa-camt-054-unpaid.xml"

pytestmark = pytest.mark.skipif(
    not REAL_SAMPLES.is_dir(), reason=f"the real samples folder {REAL_SAMPLES} is absent: nothing to read"
)


def _parse(path: Path, currency: str = "EUR"):  # type: ignore[no-untyped-def]
    """The SEPA samples are in euros: read by a channel configured for them."""
    channel = replace(SETTINGS.channels["iso20022"], currency=currency)
    return parse_channel_file(path.name, path.read_bytes(), "0" * 64, channel, SETTINGS.layouts["iso20022"], None)


def test_a_channel_in_yuan_reads_no_euro_as_yuan() -> None:
    parsed = _parse(PAIN, currency="CNY")
    assert parsed.rejected_reason is None and parsed.records.height == 0
    assert parsed.invalid.height == 4
    assert set(parsed.invalid["message"]) == {"currency: EUR is not this channel's currency (CNY)"}


def test_pain002_sample_gives_four_rejections_with_their_reason_codes() -> None:
    parsed = _parse(PAIN)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    records = parsed.records.sort("line_no")
    assert records["status"].to_list() == ["FAILED"] * 4
    assert records["failure_code"].to_list() == ["AC01", "MS02", "MD06", "AM04"]
    assert records["failure_reason"].to_list() == ["INVALID_ACCOUNT", "OTHER", "OTHER", "INSUFFICIENT_FUNDS"]
    assert records["reference"].to_list() == ["E2EID1", "E2EID2", "E2EID3", "E2EID4"]
    assert records["amount_fen"].to_list() == [10000] * 4


def test_camt054_sample_gives_a_return_with_ac06() -> None:
    parsed = _parse(CAMT)
    assert parsed.rejected_reason is None
    row = parsed.records.row(0, named=True)
    assert (row["record_kind"], row["failure_code"], row["reference"], row["amount_fen"]) == (
        "refund", "AC06", "E2EID1", 10000,
    )  # fmt: skip


def test_iso_files_are_recognised_by_content_and_other_samples_are_not_taken_for_them() -> None:
    assert identify_layout(PAIN.read_bytes(), SETTINGS.layouts) == "iso20022"
    assert identify_layout(CAMT.read_bytes(), SETTINGS.layouts) == "iso20022"
    statement = REAL_SAMPLES / "iso20022_camt053" / "camt053.v8.xml"
    assert identify_layout(statement.read_bytes(), SETTINGS.layouts) is None
    assert identify_layout((REAL_SAMPLES / "nacha_ach" / "ppd-debit.ach").read_bytes(), SETTINGS.layouts) is None


def test_a_file_filed_under_another_date_is_rejected() -> None:
    import datetime as dt

    channel = replace(SETTINGS.channels["iso20022"], currency="EUR")
    parsed = parse_channel_file(
        PAIN.name, PAIN.read_bytes(), "0" * 64, channel, SETTINGS.layouts["iso20022"], dt.date(2016, 10, 9)
    )
    assert parsed.rejected_reason is not None and "2016-10-08" in parsed.rejected_reason


def test_recon_inspect_reports_what_the_product_makes_of_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = json.loads(CliRunner().invoke(app, ["inspect", "--json", str(PAIN)]).output)
    assert said["invalid_rows"] == 4 and said["by_status"] == []  # euros, and the channel is in yuan
    config = tmp_path / "channels.toml"
    packaged = (Path(__file__).parents[1] / "reconcile" / "channels.toml").read_text(encoding="utf-8")
    config.write_text(packaged.replace("[channels.iso20022]\n", '[channels.iso20022]\ncurrency = "EUR"\n'), "utf-8")
    monkeypatch.setenv("RECON_CHANNELS_FILE", str(config))
    result = CliRunner().invoke(app, ["inspect", "--json", str(PAIN)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["layout"] == "iso20022 pain.002" and report["business_date"] == "2016-10-08"
    assert report["by_status"] == [{"record_kind": "debit", "status": "FAILED", "count": 4, "fen": 40000,
                                    "yuan": "400.00"}]  # fmt: skip


@pytest.mark.parametrize(
    ("folder", "layout", "rows", "records", "invalid", "aside", "last"),
    [
        # every line is read: kept, invalid (the masked samples repeat an id) or set aside (其他 / 不计收支)
        ("alipay_personal_2021", "alipay_personal", 16, 4, 5, 7, ("debit", "10000891202112098830044", 750)),
        ("alipay_personal_2023", "alipay_personal", 10, 5, 1, 4, ("debit", "xxxx", 990)),
        ("alipay_web_2019", "alipay_personal_web2019", 7, 4, 1, 2, ("debit", "T200P133899", 8300)),
    ],
)
def test_alipay_personal_exports_are_recognised_read_and_kept_as_evidence(
    folder: str, layout: str, rows: int, records: int, invalid: int, aside: int, last: tuple[str, str, int]
) -> None:
    from reconcile.ingest import set_aside_evidence
    from reconcile.intake import claim

    path = REAL_SAMPLES / folder / "example-alipay-records.csv"
    data = path.read_bytes()
    assert claim(path.name, data, SETTINGS) == ("alipay_personal", layout)
    parsed = parse_channel_file(
        path.name, data, "0" * 64, SETTINGS.channels["alipay_personal"], SETTINGS.layouts[layout], None
    )
    assert parsed.rejected_reason is None
    assert (parsed.rows, parsed.records.height, parsed.invalid.height) == (rows, records, invalid)
    assert parsed.notes[0].startswith(f"{aside} line(s) are neither debits nor refunds")
    final = parsed.records.sort("line_no").row(-1, named=True)
    assert (final["record_kind"], final["reference"], final["amount_fen"]) == last
    assert set(parsed.invalid["check"]) == {"duplicate_record"}
    evidence = set_aside_evidence([parsed], SETTINGS)[0]
    assert evidence.records.height == 0 and "read as evidence" in evidence.notes[-1]
