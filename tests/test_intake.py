"""Outcomes that come from the files themselves, and the history of files, over literal values."""

from __future__ import annotations

import datetime as dt

import polars as pl

from flows.config import load_config
from reconcile.ingest import ParsedFile, empty_invalid, empty_records
from reconcile.intake import (
    KNOWN_FILES_SCHEMA,
    file_history,
    file_outcomes,
    settle_repeats_across_files,
    skip_counted_elsewhere,
)

DAY = dt.date(2026, 11, 27)
SETTINGS = load_config({}).settings


def _file(name: str, channel: str, sha: str, rejected: str | None = None, invalid_lines: int = 0) -> ParsedFile:
    invalid = empty_invalid()
    if invalid_lines:
        invalid = pl.concat(
            [invalid, pl.DataFrame({"source_file": [name] * invalid_lines, "channel": [channel] * invalid_lines,
                                    "line_no": list(range(5, 5 + invalid_lines)), "raw_line": ["x|y"] * invalid_lines,
                                    "message": ["amount is not yuan"] * invalid_lines})],
            how="diagonal_relaxed",
        )  # fmt: skip
    return ParsedFile(name, sha, channel, "bank_pipe_v1", DAY, 10, empty_records(), invalid, rejected_reason=rejected)


def test_file_outcomes_name_each_file_channel_and_line() -> None:
    parsed = [
        _file("icbc_result_20261127.txt", "icbc", "s1", invalid_lines=2),
        _file("ccb_result_20261127.txt", "ccb", "s2", rejected="control totals disagree: 1 fen"),
    ]
    outcomes = file_outcomes(parsed, DAY, SETTINGS)
    expected_daily = sorted(c.channel_id for c in SETTINGS.channels.values() if c.expected_daily)
    missing = [f"channel|{c}|2026-11-27" for c in expected_daily if c not in ("icbc", "ccb")]
    assert sorted(outcomes.select("subject_key", "outcome").rows()) == sorted(
        [
            ("file|ccb_result_20261127.txt", "FILE_REJECTED"),
            ("icbc|line|icbc_result_20261127.txt|5", "INVALID_RECORD"),
            ("icbc|line|icbc_result_20261127.txt|6", "INVALID_RECORD"),
            *[(key, "MISSING_FILE") for key in missing],
        ]
    )
    assert missing, "the packaged channels expect daily files from more channels than these two"
    rejected = outcomes.filter(pl.col("outcome") == "FILE_REJECTED")
    assert rejected["message"].to_list() == ["control totals disagree: 1 fen"]
    assert outcomes["received_fen"].sum() == 0  # no money comes from a file outcome


def test_file_history_and_resends_from_another_date() -> None:
    earlier = dt.datetime(2026, 11, 27, 1, tzinfo=dt.UTC)
    later = dt.datetime(2026, 11, 28, 1, tzinfo=dt.UTC)
    known = pl.DataFrame(
        [
            ("old-version", "icbc_result_20261127.txt", DAY, earlier),  # the same name for this date, other bytes
            ("yesterday", "alipay_trade_20261126.csv", DAY - dt.timedelta(days=1), later),  # yesterday's bytes again
        ],
        schema={**KNOWN_FILES_SCHEMA, "registered_at": pl.Datetime("us", "UTC")},
        orient="row",
    )
    parsed = [
        _file("icbc_result_20261127.txt", "icbc", "new-version"),
        _file("alipay_trade_20261127.csv", "alipay", "yesterday"),
    ]
    history = file_history(known, DAY, parsed)
    assert history["new-version"]["replaces_sha256"] == "old-version"
    assert history["new-version"]["seen_before"] is False
    assert history["yesterday"]["seen_before"] is True
    assert history["yesterday"]["first_business_date"] == "2026-11-26"
    kept = skip_counted_elsewhere(parsed, history)
    assert [p.status for p in kept] == ["ACCEPTED", "SKIPPED"]
    assert kept[1].skipped == (
        "the same bytes were processed for business date 2026-11-26 as alipay_trade_20261126.csv: "
        "counted there, not again"
    )


def _records(name: str, *rows: tuple[str, int, str]) -> ParsedFile:
    """(transaction id, amount fen, status) lines of one file"""
    base = empty_records()
    records = pl.DataFrame(
        [
            {"source_file": name, "file_sha256": name * 4, "line_no": i + 2, "raw_line": f"{txn}|{fen}|{status}",
             "channel": "icbc", "record_kind": "debit", "status": status, "channel_txn_id": txn, "reference": f"P{txn}",
             "amount_fen": fen, "settled_at": dt.datetime(2026, 11, 27, 2, tzinfo=dt.UTC)}
            for i, (txn, fen, status) in enumerate(rows)
        ]
    )  # fmt: skip
    records = pl.concat([base, records], how="diagonal_relaxed").select(base.columns).cast(base.schema)
    return ParsedFile(name, name * 4, "icbc", "bank_pipe_v1", DAY, len(rows), records, empty_invalid())


def test_a_transaction_in_two_files_counts_once_or_waits_for_a_person() -> None:
    first = _records("a.txt", ("T1", 100, "SUCCESS"), ("T2", 200, "SUCCESS"), ("T3", 300, "SUCCESS"))
    resent = _records("b.txt", ("T1", 100, "SUCCESS"), ("T2", 250, "SUCCESS"), ("T4", 400, "FAILED"))
    a, b = settle_repeats_across_files([first, resent])
    assert a.records["channel_txn_id"].to_list() == ["T1", "T3"]  # T2 differs: no copy applied
    assert b.records["channel_txn_id"].to_list() == ["T4"]  # T1 counted once, in a.txt
    messages = pl.concat([a.invalid, b.invalid]).select("source_file", "line_no", "message").rows()
    why = "transaction T2 is read with different facts in a.txt line 3, b.txt line 3: nothing of it is applied"
    assert [(f, n) for f, n, _ in messages] == [("a.txt", 3), ("b.txt", 3)]
    assert all(m.startswith(why) for _, _, m in messages)
    assert any("same facts: counted once" in note for note in b.notes)
    assert settle_repeats_across_files([first]) == [first]


def test_invalid_transactions_sharing_a_line_have_keys_of_their_own() -> None:
    from reconcile.keys import invalid_line_key_expr

    lines = pl.DataFrame({"channel": ["iso", "iso", "iso", "iso"], "source_file": ["a.xml", "a.xml", "a.xml", "b.xml"],
                          "line_no": [2, 2, 3, 2]})  # fmt: skip
    assert lines.select(invalid_line_key_expr()).to_series().to_list() == [
        "iso|line|a.xml|2", "iso|line|a.xml|2#2", "iso|line|a.xml|3", "iso|line|b.xml|2"
    ]  # fmt: skip
