"""The finance workbook, opened as a reviewer would: numbers in yuan with their format, a total
row per sheet, the tie-out, every label and code in the workbook's language, a drop-down of the
allowed resolutions covering every row and refusing anything else, print settings, masking,
inert formulas, the CSV readable by Excel on Chinese Windows, and the date's current workbook.
Rendered through LibreOffice where it is installed: every sheet of this day prints on one page."""

from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from openpyxl import load_workbook

from flows.words import RESOLUTIONS, resolution_code, resolution_labels
from flows.workbook import COLUMNS, column_letter, display_width, short_id, write_workbook

FEN = {"received": 100_040, "applied": 60_000, "held": 40_040, "reversed": 500, "unapplied": 500, "released": 0}
SUMMARY = {
    "business_date": "2026-11-27",
    "run_id": "r1",
    "records": 3,
    "fen": FEN,
    "fen_by_channel": {
        "alipay": {
            "received": 100_000,
            "applied": 60_000,
            "held": 40_000,
            "reversed": 500,
            "unapplied": 500,
            "released": 0,
        },
        "icbc": {"received": 40, "applied": 0, "held": 40, "reversed": 0, "unapplied": 0, "released": 0},
    },
    "subjects": {"record": 3, "instruction": 1, "file": 1, "channel": 1},
    "balanced": True,
    "outcomes": {
        "MATCHED": 1,
        "UNMATCHED_DEBIT": 1,
        "DEBIT_FAILED": 1,
        "MISSING_RESULT": 1,
        "FILE_REJECTED": 1,
        "MISSING_FILE": 1,
    },
    "files": [
        {
            "name": "icbc_result_20261127.txt",
            "channel": "icbc",
            "status": "ACCEPTED",
            "rows": 2,
            "reason": None,
            "notes": [],
            "control_totals": [
                {
                    "applies_to": "all",
                    "stated_count": 2,
                    "stated_fen": 123_456,
                    "counted": 2,
                    "summed_fen": 123_456,
                    "agrees": True,
                }
            ],
        },
    ],
}
NAMES = {"alipay": "支付宝", "icbc": "工商银行"}


def exceptions(n: int = 1) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "exception_key": [f"UNMATCHED_DEBIT|alipay|x{i}" for i in range(n)],
            "outcome": ["UNMATCHED_DEBIT"] * n,
            "severity": ["HIGH"] * n,
            "business_date": ["2026-11-27"] * n,
            "age_days": [i % 40 for i in range(n)],
            "status": ["OPEN"] * n,
            "channel": ["alipay"] * n,
            "contract_no": [None] * n,
            "installment_no": [None] * n,
            "instruction_id": ["=HYPERLINK(1)"] * n,
            "channel_txn_id": [f"T{i}" for i in range(n)],
            "amount_fen": [123_456_789 + i for i in range(n)],
            "held_fen": [40] * n,
            "account_masked": ["6222021234561234"] * n,
            "explanation_zh": ["说明 卡号 6222021234561234"] * n,
            "explanation_en": ["text"] * n,
            "suggested_action": ["-核查 / -investigate"] * n,
            "source_file": ["f.csv"] * n,
            "line_no": [5] * n,
        }
    )


def _book(tmp_path: Path, language: str = "zh", rows: pl.DataFrame | None = None):  # type: ignore[no-untyped-def]
    path = write_workbook(tmp_path / "recon_20261127_r1.xlsx", SUMMARY, exceptions() if rows is None else rows,
                          language, NAMES)  # fmt: skip
    return path, load_workbook(path)


def test_money_is_numbers_in_yuan_with_a_total_row(tmp_path: Path) -> None:
    _, book = _book(tmp_path, rows=exceptions(3))
    sheet = book["无法匹配"]
    amount = column_letter("amount_yuan")
    cells = [sheet[f"{amount}{row}"] for row in (2, 3, 4)]
    assert [c.value for c in cells] == [Decimal("1234567.89"), Decimal("1234567.90"), Decimal("1234567.91")] or [
        round(c.value, 2) for c in cells
    ] == [1234567.89, 1234567.90, 1234567.91]
    assert all(c.number_format == "#,##0.00" and c.data_type == "n" for c in cells)
    total = sheet[f"{amount}5"]
    assert round(total.value, 2) == 3703703.70 and total.number_format == "#,##0.00"
    assert sheet["A5"].value == "合计 3" and sheet.max_row == 5


def test_the_summary_ties_out_per_channel_and_explains_every_count(tmp_path: Path) -> None:
    _, book = _book(tmp_path)
    rows = [[c.value for c in row] for row in book["总览"].iter_rows()]
    by_first = {row[0]: row for row in rows if row[0] is not None}
    assert by_first["支付宝"][1:10] == [1000, 600, 400, "相符", 5, 5, 0, "相符", None][: len(by_first["支付宝"][1:10])]
    assert by_first["全日合计"][4] == "相符" and round(by_first["全日合计"][1], 2) == 1000.40
    assert [by_first[k][1] for k in ("渠道记录", "无回盘的代扣指令", "被拒收的文件", "未送达文件的渠道")] == [
        3,
        1,
        1,
        1,
    ]
    assert by_first["结果合计(= 以上各项之和)"][1] == 6 == sum(SUMMARY["outcomes"].values())
    assert by_first["icbc_result_20261127.txt"][1:6] == [
        "工商银行",
        "已接收",
        2,
        "全部 2 / 1,234.56",
        "全部 2 / 1,234.56",
    ]
    assert by_first["0–1"][1] == 1 and by_first["> 30"][1] == 0


def test_every_label_and_code_is_in_the_workbooks_language(tmp_path: Path) -> None:
    _, zh = _book(tmp_path / "zh")
    _, en = _book(tmp_path / "en", "en")
    assert zh.sheetnames == ["总览", "无法匹配", "填写说明", "_recon"]  # the last one hidden, for the import
    assert en.sheetnames == ["Summary", "unmatched debit", "Instructions", "_recon"]
    assert zh["_recon"].sheet_state == "hidden" and zh["总览"].sheet_state == "visible"
    zh_row = [c.value for c in zh["无法匹配"][2]]
    en_row = [c.value for c in en["unmatched debit"][2]]
    status, severity, channel = (COLUMNS.index(c) for c in ("status", "severity", "channel"))
    assert (zh_row[status], zh_row[severity], zh_row[channel]) == ("未处理", "高", "支付宝")
    assert (en_row[status], en_row[severity]) == ("open", "high")
    assert [c.value for c in en["unmatched debit"][1]][COLUMNS.index("resolution")] == "resolution"
    action = COLUMNS.index("action")
    assert (zh_row[action], en_row[action]) == ("-核查", "-investigate")
    for book in (zh, en):
        assert not any(c.value and "OPEN" == c.value for row in book.worksheets[1].iter_rows() for c in row)


def test_the_resolution_drop_down_covers_every_row_and_refuses_anything_else(tmp_path: Path) -> None:
    for language in ("zh", "en"):
        _, book = _book(tmp_path / language, language, exceptions(7))
        sheet = book.worksheets[1]
        (validation,) = sheet.data_validations.dataValidation
        column = column_letter("resolution")
        assert str(validation.sqref) == f"{column}2:{column}8"
        assert validation.formula1 == '"' + ",".join(resolution_labels(language)) + '"'
        assert validation.showErrorMessage and validation.errorStyle == "stop"
        assert {resolution_code(choice) for choice in resolution_labels(language)} == set(RESOLUTIONS)
    assert len(",".join(resolution_labels("zh"))) < 255  # Excel's limit for a list written inline


def test_print_setup_short_ids_hidden_key_masking_and_inert_formulas(tmp_path: Path) -> None:
    _, book = _book(tmp_path)
    for sheet in book.worksheets[:-1]:  # the visible ones
        assert sheet.page_setup.orientation == "landscape" and sheet.page_setup.fitToWidth == 1
        assert sheet.sheet_properties.pageSetUpPr.fitToPage and sheet.print_title_rows == "$1:$1"
    sheet = book["无法匹配"]
    row = [c for c in sheet[2]]
    assert row[0].value == short_id("UNMATCHED_DEBIT|alipay|x0") and len(row[0].value) == 9
    assert all(sheet.column_dimensions[column_letter(c)].hidden for c in ("exception_key", "facts"))
    assert row[COLUMNS.index("exception_key")].value == "UNMATCHED_DEBIT|alipay|x0"
    texts = [str(c.value) for s in book.worksheets for r in s.iter_rows() for c in r if c.value is not None]
    assert "622202******1234" in texts and not any("6222021234561234" in t for t in texts)
    risky = [c for c in row if isinstance(c.value, str) and c.value.startswith(("=", "-"))]
    assert risky and all(c.data_type == "s" and c.quotePrefix for c in risky)
    assert sheet.freeze_panes == "B2" and sheet.auto_filter.ref == f"A1:{column_letter('facts')}2"
    assert not list(tmp_path.glob(".*partial"))


def test_the_current_workbook_and_a_csv_excel_reads(tmp_path: Path) -> None:
    path, _ = _book(tmp_path)
    current = tmp_path / "recon_20261127.xlsx"
    assert current.read_bytes() == path.read_bytes()
    second = write_workbook(
        tmp_path / "recon_20261127_r2.xlsx", {**SUMMARY, "run_id": "r2"}, exceptions(2), "zh", NAMES
    )
    assert path.exists() and current.read_bytes() == second.read_bytes()  # older kept, current replaced
    raw = (tmp_path / "recon_20261127_r1.detail.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "6222021234561234" not in raw.decode("utf-8-sig")


def test_chinese_characters_count_double_for_column_width() -> None:
    assert display_width("张三ab") == 6


def test_low_severity_exceptions_are_counted_on_the_summary_and_listed_in_csv(tmp_path: Path) -> None:
    rows = pl.concat(
        [
            exceptions(),
            exceptions().with_columns(
                exception_key=pl.lit("DEBIT_FAILED|icbc|y"), outcome=pl.lit("DEBIT_FAILED"), severity=pl.lit("LOW")
            ),
        ]
    )
    _, book = _book(tmp_path, rows=rows)
    assert "扣款失败" not in book.sheetnames
    low = [[c.value for c in row] for row in book["总览"].iter_rows() if row[1].value == "DEBIT_FAILED"]
    assert low[-1][:3] == ["扣款失败", "DEBIT_FAILED", 1] and round(low[-1][3], 2) == 1234567.89
    detail = pl.read_csv(tmp_path / "recon_20261127_r1.detail.csv")
    assert sorted(detail["outcome"].to_list()) == ["DEBIT_FAILED", "UNMATCHED_DEBIT"]


def test_the_detail_file_written_in_slices_is_the_file_written_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A month-end day's detail is prepared and written a slice at a time: one byte-order mark, one
    header, every row once, in order, masked and quoted as before."""
    import flows.workbook as workbook

    rows = exceptions(7).with_columns(
        explanation_en=pl.Series([f"line\x01{i}" for i in range(7)]),
        outcome=pl.Series(["DEBIT_FAILED", "UNMATCHED_DEBIT"] * 3 + ["DEBIT_FAILED"]),
        severity=pl.Series(["LOW", "HIGH"] * 3 + ["LOW"]),
    )
    whole = write_workbook(tmp_path / "whole" / "recon_20261127_r1.xlsx", SUMMARY, rows, "zh", NAMES)
    monkeypatch.setattr(workbook, "DETAIL_SLICE_ROWS", 2)
    sliced = write_workbook(tmp_path / "sliced" / "recon_20261127_r1.xlsx", SUMMARY, rows, "zh", NAMES)
    empty = write_workbook(tmp_path / "empty" / "recon_20261127_r1.xlsx", SUMMARY, rows.clear(), "zh", NAMES)
    detail = {p: p.with_name(p.stem + ".detail.csv").read_bytes() for p in (whole, sliced, empty)}
    assert detail[sliced] == detail[whole]
    text = detail[sliced].decode("utf-8")
    assert text.count("\ufeff") == 1 and text.count("exception_key") == 1 and len(text.splitlines()) == 8
    assert "line\\x016" in text and "'=HYPERLINK(1)" in text and "6222021234561234" not in text
    assert detail[empty].decode("utf-8").splitlines() == text.splitlines()[:1]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed: cannot render")
def test_each_sheet_of_ten_rows_prints_on_one_page(tmp_path: Path) -> None:
    path, book = _book(tmp_path, rows=exceptions(10))
    done = subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
                          capture_output=True, text=True, timeout=240, check=False)  # fmt: skip
    pdf = path.with_suffix(".pdf")
    assert pdf.exists(), done.stderr
    pages = next(line for line in subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
                 .splitlines() if line.startswith("Pages:"))  # fmt: skip
    assert int(pages.split()[1]) == len([s for s in book.worksheets if s.sheet_state == "visible"])


def test_a_files_reason_is_in_the_workbooks_language_with_money_in_yuan(tmp_path: Path) -> None:
    from reconcile.intake import UNRECOGNISED
    from reconcile.iso20022 import DTD_REFUSED

    reasons = [
        "control totals disagree (all): the file states 62 rows and 39645944 fen, its rows hold 62 and 39645943 fen",
        UNRECOGNISED,
        DTD_REFUSED,
        "the file is for business date 2026-11-27, but it was filed under 2026-11-28",
    ]
    files = [{"name": f"f{i}.txt", "channel": "icbc", "status": "REJECTED", "rows": 0, "reason": r, "notes": []}
             for i, r in enumerate(reasons)]  # fmt: skip
    note = "6 line(s) are neither debits nor refunds (收费) and were left aside"
    files.append({"name": "noted.txt", "channel": "icbc", "status": "ACCEPTED", "rows": 9, "reason": None,
                  "notes": [note]})  # fmt: skip
    summary = {**SUMMARY, "files": files}
    shown, noted = {}, {}
    for language in ("zh", "en"):
        path = write_workbook(tmp_path / language / "r.xlsx", summary, exceptions(), language, NAMES)
        rows = [[c.value for c in row] for row in load_workbook(path).worksheets[0].iter_rows()]
        shown[language] = [next(r[6] for r in rows if r[0] == f"f{i}.txt") for i in range(len(reasons))]
        noted[language] = next(r[6] for r in rows if r[0] == "noted.txt")
    assert noted == {"zh": "6 行既非扣款也非退款(收费),已另行搁置", "en": note}
    assert shown["en"] == reasons
    assert shown["zh"][0] == "控制总数不符(全部):文件声明 62 笔 396,459.44 元,实际读到 62 笔 396,459.43 元"
    assert shown["zh"][1].startswith("无法识别") and shown["zh"][2].startswith("XML 含有文档类型声明")
    assert shown["zh"][3] == "文件的业务日期是 2026-11-27,却放在 2026-11-28 的目录下"


def test_why_a_line_is_invalid_is_said_in_chinese_in_the_chinese_explanation() -> None:
    from flows.words import explanation_in

    said = {
        "settled_at: 20261399250000 is not a time of the form %Y%m%d%H%M%S": "结算时间 20261399250000 不是 "
        "%Y%m%d%H%M%S 格式的时间",
        "amount: 12.345 is not an amount with at most two decimals": "金额 12.345 不是最多两位小数的金额",
        "amount_fen: 1x / 2 is not an amount": "金额 1x / 2 不是金额",
        "status: 9 unknown value": None,  # not a reason the reader gives: kept as it is
        "status: unknown value 9": "状态 的取值 9 未知",
        "currency: USD is not this channel's currency (CNY)": "币种 USD 不是该渠道的币种(CNY),不能按人民币读取",
        "reference: 4.00123E+27 is in E-notation (spreadsheet damage), not an id": "参考号 4.00123E+27 是科学计数法"
        "(被电子表格软件破坏),已不是原编号",
        "transaction T1 appears more than once in the file": "交易 T1 在文件中出现不止一次",
        "amount: 1.2.3 is not an amount in yuan": "金额 1.2.3 不是以元为单位的金额",
        "amount: 12.5 is not an integer number of fen": "金额 12.5 不是以分为单位的整数金额",
        "line too long: 70000 bytes (a line of a channel file is at most 65536)": "行过长:70000 字节"
        "(渠道文件的一行最多 65536 字节)",
        "80 bytes where the layout has 96": "本行 80 字节,文件格式规定 96 字节",
    }
    for english, chinese in said.items():
        shown = explanation_in(f"f.txt 第 3 行无效：{english}", "zh")
        assert shown == f"f.txt 第 3 行无效：{chinese or english}", english
        assert explanation_in(f"f.txt line 3 is invalid: {english}", "en") == f"f.txt line 3 is invalid: {english}"
    both = explanation_in("f.txt 第 3 行无效：transaction T1 appears more than once in the file; amount: 1.001 is not "
                          "an amount with at most two decimals", "zh")  # fmt: skip
    assert both == "f.txt 第 3 行无效：交易 T1 在文件中出现不止一次; 金额 1.001 不是最多两位小数的金额"
