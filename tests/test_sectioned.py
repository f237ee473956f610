"""A processor's sectioned file: a summary section (totals per terminal and transaction type) before
the details, and payments split among accounts (分账) that are one payment, not duplicates."""

from __future__ import annotations

import datetime as dt

import polars as pl

from flows.config import load_channel_config
from flows.words import reason_in
from reconcile import synthetic as syn
from reconcile.ingest import ParsedFile, parse_channel_file
from reconcile.intake import claim
from reconcile.settings import settings_from_mapping

DAY = dt.date(2026, 11, 27)
SETTINGS = settings_from_mapping(load_channel_config())
LINES = syn.sample_lines(DAY, 120, seed=6)
FACTS = ["record_kind", "status", "channel_txn_id", "reference", "amount_fen", "settled_at", "failure_reason"]
NAME = "baofoo_20261127.txt"


def read(data: bytes) -> ParsedFile:
    channel, layout = claim(NAME, data, SETTINGS)
    assert (channel, layout) == ("baofoo", "processor_sectioned")
    return parse_channel_file(NAME, data, "0" * 64, SETTINGS.channels["baofoo"], SETTINGS.layouts[layout], DAY)


def test_split_lines_are_one_payment_and_the_file_reads_back_exactly() -> None:
    data = syn.processor_sectioned_file(DAY, LINES, split_every=4)
    text = data.decode().splitlines()
    details = text[text.index("明细信息") + 2 :]
    parsed = read(data)
    assert parsed.rejected_reason is None and parsed.invalid.height == 0
    assert parsed.rows == len(details) > LINES.height  # more lines than payments
    written = LINES.select(
        pl.col("kind").alias("record_kind"), "status", pl.col("txn_id").alias("channel_txn_id"), "reference",
        "amount_fen", "settled_at",
    ).sort(FACTS[:5])  # fmt: skip
    assert parsed.records.select(FACTS[:6]).sort(FACTS[:5]).equals(written)
    splits = len(details) - LINES.height
    said = f"{splits} payment(s) arrived as {2 * splits} split lines (分账) and were read as one each"
    assert parsed.notes == (said,)
    assert parsed.records.filter(pl.col("status") == "FAILED")["failure_reason"].null_count() == 0


def test_the_summary_section_gives_a_total_per_terminal_and_kind_and_one_for_all() -> None:
    data = syn.processor_sectioned_file(DAY, LINES)
    text = data.decode().splitlines()
    details = [line.split("|") for line in text[text.index("明细信息") + 2 :]]
    kinds = {"代扣": "debit", "退款": "refund"}
    groups = {(kinds[cells[1]], f"终端号 {cells[0]}") for cells in details}
    assert len(groups) >= 3  # two terminals, refunds on at least one
    parsed = read(data)
    scoped = [t for t in parsed.control_totals if t.scope != "汇总"]
    assert {(t.applies_to, t.scope) for t in scoped} == groups
    for total in scoped:
        terminal = total.scope.split()[1] if total.scope else ""
        mine = [c for c in details if c[0] == terminal and kinds[c[1]] == total.applies_to]
        assert (total.counted, total.stated_count) == (len(mine), len(mine))
    assert all(t.agrees for t in parsed.control_totals)
    every = parsed.control_totals[-1]
    assert (every.applies_to, every.scope, every.stated_count) == ("all", "汇总", parsed.rows)
    assert sum(t.stated_count or 0 for t in scoped) == every.stated_count


def _changed(data: bytes, old: str, new: str) -> bytes:
    text = data.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


def test_a_terminal_total_that_disagrees_rejects_the_file_naming_the_terminal() -> None:
    data = syn.processor_sectioned_file(DAY, LINES)
    row = next(line for line in data.decode().splitlines() if line.startswith("T0002|代扣|"))
    terminal, kind, count, amount = row.split("|")
    parsed = read(_changed(data, row, f"{terminal}|{kind}|{int(count) + 1}|{amount}"))
    assert parsed.rejected_reason is not None
    said = f"control totals disagree (debit, 终端号 T0002): the file states {int(count) + 1} rows"
    assert parsed.rejected_reason.startswith(said)
    assert reason_in(parsed.rejected_reason, "zh").startswith("控制总数不符(扣款, 终端号 T0002):")


def test_a_missing_or_strange_summary_section_rejects_the_file() -> None:
    data = syn.processor_sectioned_file(DAY, LINES)
    assert read(_changed(data, "总笔数", "笔数")).rejected_reason == (
        "no summary section with the columns 终端号, 交易类型, 总笔数, 总金额: the file may be truncated"
    )
    assert read(_changed(data, "T0001|退款|", "T0001|冲正|")).rejected_reason == (
        "the summary section's 交易类型 '冲正' is not a kind the layout knows"
    )


def test_a_split_part_number_seen_twice_makes_the_payment_unreadable_not_a_split() -> None:
    data = syn.processor_sectioned_file(DAY, LINES, split_every=4)
    lines = data.decode().splitlines()
    second = next(n for n, line in enumerate(lines) if line.split("|")[4:5] == ["2"])
    lines[second] = "|".join([*lines[second].split("|")[:4], "1", *lines[second].split("|")[5:]])
    parsed = read(("\n".join(lines) + "\n").encode())
    assert parsed.rejected_reason is None
    found = parsed.invalid.select("line_no", "message").rows()
    assert found == [(second, "split payment: a part number appears twice"),
                     (second + 1, "split payment: a part number appears twice")]  # fmt: skip


def _split_payment(data: bytes) -> tuple[list[str], int]:
    """The file's lines and the index of the first split payment's second part."""
    lines = data.decode().split("\n")
    return lines, next(n for n, line in enumerate(lines) if line.split("|")[4:5] == ["2"])


def _with_summary_of(lines: list[str]) -> bytes:
    """The lines with the summary section recomputed from the details (as a processor would)."""
    details = [line.split("|") for line in lines[lines.index("明细信息") + 2 :] if line]
    rows: dict[tuple[str, str], list[int]] = {}
    for cells in details:
        count_fen = rows.setdefault((cells[0], cells[1]), [0, 0])
        count_fen[0] += 1
        count_fen[1] += int(cells[5].replace(".", ""))
    start, end = lines.index("终端号|交易类型|总笔数|总金额") + 1, lines.index("明细信息")
    summary = [f"{t}|{k}|{n}|{f // 100}.{f % 100:02d}" for (t, k), (n, f) in sorted(rows.items())]
    return "\n".join([*lines[:start], *summary, *lines[end:]]).encode()


def test_a_split_payment_that_cannot_be_put_together_whole_is_never_read_in_part() -> None:
    data = syn.processor_sectioned_file(DAY, LINES, split_every=4)
    lines, second = _split_payment(data)
    txn = lines[second].split("|")[3]
    first = next(n for n, line in enumerate(lines) if line.split("|")[3:5] == [txn, "1"])

    def with_part(cells: dict[int, str], *, repeat: bool = False) -> ParsedFile:
        changed = lines[second].split("|")
        for column, value in cells.items():
            changed[column] = value
        body = [*lines[:second], "|".join(changed), *([lines[second]] if repeat else []), *lines[second + 1 :]]
        return read(_with_summary_of(body))

    cases = {
        "split payment: its parts disagree on the status": with_part({6: "失败", 7: "余额不足"}),
        "split payment: its parts disagree on the reference": with_part({2: "P99999999999999"}),
        "split payment: a part number appears twice": with_part({}, repeat=True),
        "split payment: another of its parts could not be read, so none is": with_part({8: "2026-11-31 08:00:00"}),
    }
    for said, parsed in cases.items():
        assert parsed.rejected_reason is None, parsed.rejected_reason
        assert parsed.records.filter(pl.col("channel_txn_id") == txn).height == 0, said  # no half payment
        mine = parsed.invalid.filter(pl.col("line_no").is_in([first + 1, second + 1]))
        assert mine.height == 2 and mine["message"].str.contains(said.split(": ")[1].split(",")[0]).any(), said


def test_a_day_with_no_lines_has_an_empty_summary_section() -> None:
    parsed = read(syn.processor_sectioned_file(DAY, LINES.clear()))
    assert parsed.rejected_reason is None and parsed.records.height == 0
    assert [(t.scope, t.stated_count, t.counted) for t in parsed.control_totals] == [("汇总", 0, 0)]
