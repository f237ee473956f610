"""Builds the malformed-file corpus in this folder from one generated good day (explicit opt-in):

    python -m tests.corpus.build

Each case is a file plus a line in ``expected.csv``: the channel it is filed for and exactly what
the product must make of it — ``rejected: <reason>``, ``invalid line <n> <check>: <message>`` for
the first bad row of a good file, or ``accepted: <n> records``. Existing files are left as they are,
and the expectations in ``expected.csv`` are reviewed by a person and never rewritten by this script.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from pathlib import Path

from reconcile.money import fen_to_yuan_text, yuan_text_to_fen
from reconcile.synthetic import generate_days

HERE = Path(__file__).resolve().parent
DAY = dt.date(2026, 11, 27)


def _cases() -> dict[str, tuple[str, bytes]]:
    files = generate_days(DAY, DAY, 24, seed=31).files[DAY]
    bank = files["icbc_result_20261127.txt"]
    bill = files["alipay_trade_20261127.csv"]
    bank_lines = bank.decode("gb18030").split("\n")
    bill_text = bill.decode("gb18030")

    def bank_with(lines: list[str]) -> bytes:
        return "\n".join(lines).encode("gb18030")

    def summary(lines: list[str], **changes: str) -> list[str]:
        head = lines[0].split("|")
        for index, value in changes.items():
            head[int(index[1:])] = value
        return ["|".join(head), *lines[1:]]

    first = bank_lines[1].split("|")

    def detail(**changes: str) -> list[str]:
        cells = list(first)
        for index, value in changes.items():
            cells[int(index[1:])] = value
        return [bank_lines[0], "|".join(cells), *bank_lines[2:]]

    def zipped(*members: tuple[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, data in members:
                archive.writestr(name, data)
        return buffer.getvalue()

    return {
        "empty.txt": ("icbc", b""),
        "blank_lines_only.txt": ("icbc", b"\n\n  \n"),
        "binary.txt": ("icbc", b"\x00\x01\x02\x03PK"),
        "utf16.txt": ("icbc", bank.decode("gb18030").encode("utf-16")),
        "not_gbk.csv": ("alipay", b"#\xff\xfe\xfa\xfb\n"),
        "truncated_mid_line.txt": ("icbc", bank[: len(bank) * 2 // 3]),
        "no_summary_line.txt": ("icbc", bank_with(bank_lines[1:])),
        "two_summary_lines.txt": ("icbc", bank_with([bank_lines[0], *bank_lines])),
        "stray_line.txt": ("icbc", bank_with([*bank_lines[:-1], "X|junk", bank_lines[-1]])),
        "wrong_business_date.txt": ("icbc", bank_with(summary(bank_lines, f2="20261126"))),
        "future_business_date.txt": ("icbc", bank_with(summary(bank_lines, f2="20261128"))),
        "business_date_not_a_date.txt": ("icbc", bank_with(summary(bank_lines, f2="2026XX27"))),
        "count_off_by_one.txt": ("icbc", bank_with(summary(bank_lines, f3=str(int(bank_lines[0].split("|")[3]) + 1)))),
        "total_off_by_one_fen.txt": ("icbc", files["ccb_result_20261127.txt"]),
        "total_not_a_number.txt": ("icbc", bank_with(summary(bank_lines, f4="abc"))),
        "summary_too_short.txt": ("icbc", bank_with(["H|B1|20261127", *bank_lines[1:]])),
        "extra_column.txt": ("icbc", bank_with(detail(f10=first[10] + "|extra"))),
        "bad_settled_time.txt": ("icbc", bank_with(detail(f10="20261327250000"))),
        "unknown_status.txt": ("icbc", bank_with(detail(f6="X"))),
        "e_notation_reference.txt": ("icbc", bank_with(detail(f2="2.02302E+27"))),
        "duplicate_row.txt": (
            "icbc",
            bank_with(
                summary(
                    [*bank_lines[:2], bank_lines[1], *bank_lines[2:]],
                    f3=str(int(bank_lines[0].split("|")[3]) + 1),
                    f4=_plus(bank_lines[0].split("|")[4], first[5]),
                    f5=str(int(bank_lines[0].split("|")[5]) + (first[6] == "S")),
                    f6=_plus(bank_lines[0].split("|")[6], first[5] if first[6] == "S" else "0.00"),
                )
            ),
        ),
        "crlf_line_ends.txt": ("icbc", bank.replace(b"\n", b"\r\n")),
        "amount_with_yen_and_separators.txt": ("icbc", bank_with(detail(f5="¥" + _grouped(first[5])))),
        "alipay_missing_column.csv": ("alipay", bill_text.replace("商户订单号", "订单号").encode("gb18030")),
        "alipay_no_header.csv": (
            "alipay",
            "\n".join(line for line in bill_text.split("\r\n") if not line.startswith("支付宝交易号")).encode(
                "gb18030"
            ),
        ),
        "alipay_no_footer.csv": ("alipay", bill_text.rsplit("#-----", 1)[0].encode("gb18030")),
        "alipay_footer_total_off.csv": ("alipay", _footer_plus_one_fen(bill_text).encode("gb18030")),
        "alipay_no_business_date.csv": ("alipay", bill_text.replace("起始日期", "开始").encode("gb18030")),
        "alipay_utf8_bom.csv": ("alipay", b"\xef\xbb\xbf" + bill_text.encode("utf-8")),
        "alipay_header_only.csv": ("alipay", _header_only(bill_text).encode("gb18030")),
        "zip_two_detail_members.zip": ("alipay", zipped(("a_detail.csv", bill), ("b_detail.csv", bill))),
        "zip_member_escapes.zip": ("alipay", zipped(("../../escape_detail.csv", bill))),
        "zip_damaged.zip": ("alipay", zipped(("a_detail.csv", bill))[:200]),
        "zip_without_bills.zip": ("alipay", zipped(("readme.txt", b"nothing here"))),
        **_more_layouts(),
        **_wechat(),
        **_unionpay(),
        **_sectioned(),
    }


def _sectioned() -> dict[str, tuple[str, bytes]]:
    """Cases for a processor's sectioned file."""
    from reconcile import synthetic as syn

    text = syn.processor_sectioned_file(DAY, syn.sample_lines(DAY, 12, seed=11), split_every=3).decode("utf-8")
    lines = text.split("\n")
    row = next(n for n, line in enumerate(lines) if line.startswith("T0001|代扣|"))
    cells = lines[row].split("|")
    off = [*lines[:row], "|".join([*cells[:3], _plus(cells[3], "0.01")]), *lines[row + 1 :]]
    details = lines.index("明细信息")
    return {
        "baofoo_20261127_terminal_total_off.txt": ("baofoo", "\n".join(off).encode("utf-8")),
        "baofoo_20261127_no_summary_section.txt": ("baofoo", "\n".join([lines[0], *lines[details:]]).encode()),
    }


def _unionpay() -> dict[str, tuple[str, bytes]]:
    """Cases for UnionPay's ZM and ZME clearing files."""
    from reconcile import synthetic as syn

    lines = syn.sample_lines(DAY, 12, seed=9)
    zm = syn.unionpay_zm_file(DAY, lines).decode("gb18030").split("\r\n")
    kind_at = sum([3, 11, 11, 6, 10, 19, 12, 4, 2, 21, 2, 32, 2, 6, 10, 13, 13, 4, 15]) + 19  # 交易类型

    def zm_with(index: int, line: str) -> bytes:
        return "\r\n".join([*zm[:index], line, *zm[index + 1 :]]).encode("gb18030")

    name = syn.unionpay_zm_name(DAY)
    return {
        f"{name}_one_byte_short": ("unionpay", zm_with(1, zm[1][:100] + zm[1][101:])),
        f"{name}_field_runs_into_gap": ("unionpay", zm_with(2, zm[2][:3] + "X" + zm[2][4:])),
        f"{name}_unknown_kind": ("unionpay", zm_with(0, zm[0][:kind_at] + "71" + zm[0][kind_at + 2 :])),
        f"{name.replace('ZM_', 'ZME_')}_adjustments": ("unionpay", syn.unionpay_zme_file(DAY, lines.head(2))),
    }


def _wechat() -> dict[str, tuple[str, bytes]]:
    """Cases for WeChat Pay's trade bill and fund-flow bill."""
    from reconcile import synthetic as syn

    lines = syn.sample_lines(DAY, 12, seed=7)
    trade = syn.wechat_trade_bill(DAY, lines).decode("utf-8").split("\r\n")
    tab = syn.wechat_trade_bill(DAY, lines, tab=True).decode("utf-8").split("\r\n")
    flow = syn.wechat_fundflow_bill(DAY, lines).decode("utf-8").split("\r\n")

    def joined(rows: list[str]) -> bytes:
        return "\r\n".join(rows).encode("utf-8")

    totals = trade[-2].split(",")
    totals[0] = f"`{int(totals[0][1:]) + 1}"
    first_id = tab[1].split("\t")[5]
    flow_totals = flow[-2].split(",")
    flow_totals[1] = f"`{float(flow_totals[1][1:]) - 1:.1f}"
    return {
        "wechat_trade_20261127_count_off.csv": ("wechat", joined([*trade[:-2], ",".join(totals), trade[-1]])),
        "wechat_trade_20261127_no_summary.csv": ("wechat", joined([*trade[:-3], ""])),
        "wechat_trade_20261127_excel_e_notation.csv": (
            "wechat",
            joined([tab[0], tab[1].replace(first_id, "4.20000E+20", 1), *tab[2:]]),
        ),
        "wechat_trade_20261127_unknown_state.csv": (
            "wechat",
            joined([trade[0], trade[1].replace(",`SUCCESS,", ",`CLOSED,", 1), *trade[2:]]),
        ),
        "wechat_fundflow_20261127_income_count_off.csv": (
            "wechat",
            joined([*flow[:-2], ",".join(flow_totals), flow[-1]]),
        ),
    }


def _more_layouts() -> dict[str, tuple[str, bytes]]:
    """Cases for the fixed-width 回盘, the clearing file, the account bill and offline repayments."""
    from reconcile import synthetic as syn

    lines = syn.sample_lines(DAY, 12, seed=5)
    debits = lines.filter(lines["kind"] == "debit")
    fixed = syn.bank_fixed_file(DAY, debits).decode("gb18030").split("\r\n")
    name_at, amount_at = 61, 80  # character offsets in a detail line (the name is two-byte "X*")

    def fixed_with(index: int, line: str) -> bytes:
        return "\r\n".join([*fixed[:index], line, *fixed[index + 1 :]]).encode("gb18030")

    account = syn.alipay_account_bill(DAY, lines.filter(lines["status"] == "SUCCESS")).decode("gb18030")
    offline = syn.offline_repayments_file(debits.filter(debits["status"] == "SUCCESS")).decode("utf-8")
    first_amount = offline.split("\n")[1].split(",")[4]
    return {
        "boc_line_one_byte_long.txt": ("boc", fixed_with(2, fixed[2][:name_at] + "x" + fixed[2][name_at:])),
        "boc_name_straddles_two_fields.txt": (
            "boc",
            fixed_with(3, fixed[3][: amount_at - 1] + "王" + fixed[3][amount_at + 1 :]),
        ),
        "boc_total_off_by_one_fen.txt": ("boc", syn.bank_fixed_file(DAY, debits, total_error_fen=1)),
        "INN26112688ZM_898310048990001": ("unionpay", syn.unionpay_zm_file(DAY, lines)),
        "alipay_account_expense_count_off.csv": (
            "alipay",
            account.replace("#支出合计：", "#支出合计：1", 1).encode("gb18030"),
        ),
        "alipay_account_unknown_business_type.csv": (
            "alipay",
            account.replace(",在线支付,", ",红包,", 1).encode("gb18030"),
        ),
        "offline_missing_contract_column.csv": ("offline", offline.replace("合同号", "客户号", 1).encode("utf-8")),
        "offline_negative_amount.csv": (
            "offline",
            offline.replace("," + first_amount + ",", ",-" + first_amount + ",", 1).encode("utf-8"),
        ),
        # one store's line saved in GBK inside a UTF-8 file: the reader names the byte and the line
        "offline_one_line_in_gbk.csv": (
            "offline",
            b"\n".join(
                line.encode("gb18030" if number == 3 else "utf-8")
                for number, line in enumerate(offline.split("\n"), start=1)
            ),
        ),
    }


def _plus(yuan: str, more: str) -> str:
    return fen_to_yuan_text(yuan_text_to_fen(yuan) + yuan_text_to_fen(more))


def _grouped(yuan: str) -> str:
    whole, _, part = yuan.partition(".")
    return f"{int(whole):,}.{part}"


def _footer_plus_one_fen(text: str) -> str:
    head, _, rest = text.partition("#交易合计：")
    count, _, rest = rest.partition("笔，商家实收共")
    amount, _, rest = rest.partition("元")
    return f"{head}#交易合计：{count}笔，商家实收共{_plus(amount, '0.01')}元{rest}"


def _header_only(text: str) -> str:
    lines = text.split("\r\n")
    kept = [line for line in lines if line.startswith("#") or line.startswith("支付宝交易号")]
    footer = [
        line.replace(line.split("：", 1)[1].split("笔")[0], "0", 1) if "合计：" in line else line for line in kept
    ]
    return "\r\n".join(
        line.split("商家实收")[0] + ("商家实收共0.00元" if "交易合计" in line else "商家实收退款共-0.00元")
        if "合计：" in line
        else line
        for line in footer
    )


def main() -> None:
    rows = []
    for name, (channel, data) in _cases().items():
        path = HERE / name
        if not path.exists():
            path.write_bytes(data)
        rows.append({"file": name, "channel": channel})
    known = {line.split(",", 1)[0] for line in (HERE / "expected.csv").read_text(encoding="utf-8").splitlines()[1:]}
    missing = [row["file"] for row in rows if row["file"] not in known]
    if missing:
        print(f"add the expected outcome of {', '.join(missing)} to expected.csv (file,channel,expected)")
    print(f"{len(rows)} corpus files")


if __name__ == "__main__":
    main()
