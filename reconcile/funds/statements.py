"""The collection account's bank statement as statement lines (:class:`schemas.funds.StatementLineFrame`).

Three kinds of file, each by its own reader, all to the same lines:

- **ISO 20022 camt.053** (bank-to-customer statement): one line per entry (``Ntry``); a batch entry
  whose transaction details each state an amount adding up to the entry's is one line per detail
  (each is its own remittance). Booking (``BookgDt``) and value date (``ValDt``) are kept apart;
  ``RvslInd`` marks a reversal. The XML is read as :mod:`reconcile.iso20022` reads it: no DTD, no
  entities, no network.
- **SWIFT MT940**: read by the ``mt-940`` library; ``:61:`` gives the value date, the entry date,
  the mark (``C``, ``D``, ``RC`` a reversed credit, ``RD`` a reversed debit) and the bank reference,
  ``:86:`` the details.
- **Chinese online-banking exports** (个人/企业网银 明细下载): by a :class:`BankExportLayout` of
  configuration — the header found by content among preamble lines, cells padded with spaces and
  TABs, income and expense columns (or one signed amount), a 合计 footer that is checked, not read.

Amounts become fen without a float; a line is signed (credits positive).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import mt940
import polars as pl
from lxml import etree

from reconcile.funds.rules import BankExportLayout
from reconcile.iso20022 import DOCTYPE, DTD_REFUSED, NotIso20022, _events, _malformed, message_kind
from reconcile.money import AmountError, yuan_text_to_fen
from reconcile.reader.decoding import to_utf8
from schemas.funds import STATEMENT_DTYPES, StatementLineFrame


class StatementRejected(ValueError):
    """The file cannot be read as a statement; the message says why, for a person."""


def decimal_to_fen(value: Decimal | str) -> int:
    """A decimal amount (``Decimal`` or text with a point or a comma) as fen; refuses a third decimal."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise AmountError(f"not an amount: {value!r}") from None
    fen = amount * 100
    if not amount.is_finite() or fen != fen.to_integral_value():
        raise AmountError(f"not an amount in fen: {value!r}")
    return int(fen)


def _key(*parts: object) -> str:
    return hashlib.sha256("\x1f".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def _frame(rows: list[dict[str, Any]], name: str, sha256: str, currency: str | None = "CNY") -> pl.DataFrame:
    """The lines as a checked frame; with ``currency``, a line in another currency refuses the file
    (the collection account is in yuan: euros are never read as fen)."""
    if currency is not None:
        other = next((row for row in rows if (row.get("currency") or currency) != currency), None)
        if other is not None:
            raise StatementRejected(
                f"line {other['line_no']} is in {other['currency']}, not {currency}: not the collection account's"
            )
    rows = [{key: value for key, value in row.items() if key != "currency"} for row in rows]
    frame = pl.DataFrame(
        [{**row, "source_file": name, "file_sha256": sha256} for row in rows], schema=STATEMENT_DTYPES, orient="row"
    ) if rows else pl.DataFrame(schema=STATEMENT_DTYPES)  # fmt: skip
    # the key of a line is what the bank says about it, not where it sits in the file: the same line
    # in tomorrow's cumulative download is the same line (a repeat inside one file is told by its place)
    frame = frame.with_columns(
        line_key=pl.concat_str(pl.col("account").fill_null("-"), pl.col("line_key"), separator="|")
    ).with_columns(
        line_key=pl.when(pl.col("line_key").is_duplicated())
        .then(pl.concat_str(pl.col("line_key"), pl.col("line_no").cast(pl.String), separator="#"))
        .otherwise(pl.col("line_key"))
    )
    return StatementLineFrame.validate(frame.select(list(STATEMENT_DTYPES)))


# ----------------------------------------------------------------------------------------- camt.053


def _date(text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        return None


def _find(element: Any, path: str) -> str | None:
    text = element.findtext(path)
    return None if text is None else " ".join(str(text).split())


def parse_camt053(
    data: bytes, name: str, sha256: str, check_balances: bool = True, currency: str | None = "CNY"
) -> pl.DataFrame:
    """Every entry of every statement of a camt.053 message as statement lines; a statement stating
    its opening (``OPBD``/``PRCD``) and closing booked balance (``CLBD``) must add up to the fen."""
    kind = message_kind(data)
    if kind is not None and DOCTYPE.search(data[:4096]):
        raise StatementRejected(DTD_REFUSED)
    if kind != "camt.053":
        raise StatementRejected(f"not a camt.053 statement (found {kind or 'no ISO 20022 XML'})")
    rows: list[dict[str, Any]] = []
    account: str | None = None
    balances: dict[str, int] = {}
    moved = 0
    try:
        for event, element in _events(data, events=("start", "end"), tag=("{*}Stmt", "{*}Ntry", "{*}Bal")):
            local = etree.QName(element).localname
            if local == "Stmt" and event == "start":
                account, balances, moved = None, {}, 0
            elif local == "Stmt" and check_balances:
                _camt_balances_agree(balances, moved, account, element.sourceline)
            elif local == "Bal" and event == "end":
                code = _find(element, "{*}Tp/{*}CdOrPrtry/{*}Cd")
                amount = _find(element, "{*}Amt")
                if code and amount is not None:
                    sign = -1 if _find(element, "{*}CdtDbtInd") == "DBIT" else 1
                    try:
                        balances[code] = sign * decimal_to_fen(amount)
                    except AmountError:
                        raise StatementRejected(
                            f"the {code} balance at line {element.sourceline} is not an amount: {amount!r}"
                        ) from None
            elif local == "Ntry" and event == "end":
                if account is None:
                    stmt = element.getparent()
                    account = _find(stmt, "{*}Acct/{*}Id/{*}IBAN") or _find(stmt, "{*}Acct/{*}Id/{*}Othr/{*}Id")
                found = _camt053_lines(element, account)
                moved += sum(line["amount_fen"] for line in found)
                rows.extend(found)
                element.clear(keep_tail=False)
    except etree.XMLSyntaxError as error:
        raise StatementRejected(str(_malformed(error))) from None
    except NotIso20022 as error:
        raise StatementRejected(str(error)) from None
    return _frame(rows, name, sha256, currency)


def _camt_balances_agree(balances: dict[str, int], moved: int, account: str | None, line: int) -> None:
    opening = balances.get("OPBD", balances.get("PRCD"))
    closing = balances.get("CLBD")
    if opening is not None and closing is not None and opening + moved != closing:
        raise StatementRejected(
            f"the statement of account {account} (at line {line}) does not add up: opening "
            f"{opening / 100:.2f} + entries {moved / 100:.2f} ≠ closing {closing / 100:.2f}"
        )


def _party(tx: Any, direction: str | None) -> tuple[str | None, str | None]:
    """The other side: the debtor of a credit, the creditor of a debit."""
    side = "Dbtr" if direction == "CRDT" else "Cdtr"
    name = _find(tx, f".//{{*}}RltdPties/{{*}}{side}/{{*}}Nm") or _find(
        tx, f".//{{*}}RltdPties/{{*}}{side}/{{*}}Pty/{{*}}Nm"
    )
    account = _find(tx, f".//{{*}}RltdPties/{{*}}{side}Acct/{{*}}Id/{{*}}IBAN") or _find(
        tx, f".//{{*}}RltdPties/{{*}}{side}Acct/{{*}}Id/{{*}}Othr/{{*}}Id"
    )
    return name, account


def _camt053_lines(entry: Any, account: str | None) -> list[dict[str, Any]]:
    amount_node = entry.find("{*}Amt")
    direction = _find(entry, "{*}CdtDbtInd")
    if amount_node is None or direction not in ("CRDT", "DBIT"):
        raise StatementRejected(f"an entry at line {entry.sourceline} states no amount or no credit/debit mark")
    try:
        entry_fen = decimal_to_fen(amount_node.text or "")
    except AmountError:
        raise StatementRejected(f"the entry at line {entry.sourceline} has amount {amount_node.text!r}") from None
    booked = _date(_find(entry, "{*}BookgDt/{*}Dt") or _find(entry, "{*}BookgDt/{*}DtTm"))
    valued = _date(_find(entry, "{*}ValDt/{*}Dt") or _find(entry, "{*}ValDt/{*}DtTm")) or booked
    if booked is None or valued is None:
        raise StatementRejected(f"the entry at line {entry.sourceline} has no booking date")
    reversal = (_find(entry, "{*}RvslInd") or "").lower() == "true"
    # a reversed credit takes money out, a reversed debit puts it back
    sign = (1 if direction == "CRDT" else -1) * (-1 if reversal else 1)
    entry_ref = _find(entry, "{*}AcctSvcrRef") or _find(entry, "{*}NtryRef")
    details = entry.findall("{*}NtryDtls/{*}TxDtls")
    amounts = []
    for tx in details:
        found = tx.find("{*}Amt")
        if found is None:
            found = tx.find("{*}AmtDtls/{*}TxAmt/{*}Amt")
        amounts.append(None if found is None else found.text)
    split = len(details) > 1 and all(a is not None for a in amounts)
    if split:
        try:
            fens = [decimal_to_fen(a or "") for a in amounts]
        except AmountError:
            split = False
        else:
            split = sum(fens) == entry_fen
    common = {"account": account, "booking_date": booked, "value_date": valued, "reversal": reversal,
              "currency": amount_node.get("Ccy")}  # fmt: skip
    extra = _find(entry, "{*}AddtlNtryInf")
    if not split:
        tx = details[0] if details else entry
        name, other = _party(tx, direction)
        narrative = " ".join(t for t in (_narrative(tx), extra) if t) or None
        reference = entry_ref or _find(tx, ".//{*}Refs/{*}EndToEndId")
        return [{
            **common, "line_no": entry.sourceline, "amount_fen": sign * entry_fen, "counterparty_name": name,
            "counterparty_account": other, "narrative": narrative, "bank_reference": reference,
            "line_key": _key("camt", reference, booked, sign * entry_fen, narrative),
            "raw_line": f"Ntry {direction} {amount_node.text} {booked} {narrative or ''}".strip(),
        }]  # fmt: skip
    lines = []
    for n, (tx, fen) in enumerate(zip(details, fens, strict=True), start=1):
        name, other = _party(tx, direction)
        narrative = " ".join(t for t in (_narrative(tx), extra) if t) or None
        reference = _find(tx, "{*}Refs/{*}AcctSvcrRef") or (f"{entry_ref}/{n}" if entry_ref else None)
        lines.append({
            **common, "line_no": tx.sourceline, "amount_fen": sign * fen, "counterparty_name": name,
            "counterparty_account": other, "narrative": narrative, "bank_reference": reference,
            "line_key": _key("camt", reference, booked, sign * fen, narrative, n),
            "raw_line": f"TxDtls {direction} {fen / 100:.2f} {booked} {narrative or ''}".strip(),
        })  # fmt: skip
    return lines


def _narrative(tx: Any) -> str | None:
    parts = [" ".join(str(t.text).split()) for t in tx.findall(".//{*}RmtInf/{*}Ustrd") if t.text]
    parts += [" ".join(str(t.text).split()) for t in tx.findall(".//{*}AddtlTxInf") if t.text]
    return " ".join(parts) or None


# ---------------------------------------------------------------------------------------- MT940

_TAG61 = re.compile(rb"^:61:", re.MULTILINE)
_TAG = re.compile(rb"^(?::(?P<tag>\d\d[A-Z]?):(?P<value>.*)|-\s*)$", re.MULTILINE)


_BALANCE = re.compile(r"^(?P<mark>[CD])(?P<date>\d{6})(?P<currency>[A-Z]{3})(?P<amount>[\d,]{1,15})$")


@dataclass
class _Mt940Statement:
    """One statement of an MT940 file: its account, balances (fen, signed) and its lines."""

    account: str | None = None
    opening: int | None = None
    closing: int | None = None
    lines: list[tuple[int, str | None]] = field(default_factory=list)  # (line, :86: text)


def _balance(value: str, line_no: int) -> int:
    found = _BALANCE.match(value.strip())
    if found is None:
        raise StatementRejected(f"line {line_no}: balance {value!r} is not mark, YYMMDD, currency and amount")
    try:
        fen = decimal_to_fen(found["amount"])
    except AmountError:
        raise StatementRejected(f"line {line_no}: balance {value!r} is not an amount in fen") from None
    return fen if found["mark"] == "C" else -fen


def _mt940_statements(data: bytes) -> list[_Mt940Statement]:
    """The statements of an MT940 file as the tags say them: for each ``:61:`` its line and its
    ``:86:`` text (line breaks taken out: a full 65-character line was cut mid-word, a shorter one
    ends a word); a statement's own ``:86:`` after its closing balance belongs to no line."""
    statements: list[_Mt940Statement] = []
    tag: bytes | None = None
    previous = b""
    for number, line in enumerate(data.replace(b"\r\n", b"\n").split(b"\n"), start=1):
        head = _TAG.match(line)
        if head is not None:
            last, tag = tag, head["tag"]
            value = (head["value"] or b"").decode("utf-8", errors="replace").strip()
            if tag == b"20" or not statements:
                statements.append(_Mt940Statement())
            current = statements[-1]
            if tag == b"25":
                current.account = value
            elif tag in (b"60F", b"60M"):
                current.opening = _balance(value, number)
            elif tag in (b"62F", b"62M"):
                current.closing = _balance(value, number)
            elif tag == b"61":
                current.lines.append((number, None))
            elif tag == b"86" and last == b"61" and current.lines:
                current.lines[-1] = (current.lines[-1][0], value)
            elif tag == b"86":
                tag = b"86 of the statement"
        elif tag == b"86" and statements and statements[-1].lines:
            at, text = statements[-1].lines[-1]
            glue = "" if len(previous) >= 65 else " "
            statements[-1].lines[-1] = (at, (text or "") + glue + line.decode("utf-8", errors="replace").strip())
        previous = line.rstrip()
    return [statement for statement in statements if statement.lines or statement.opening is not None]


MT940_START = re.compile(rb"^\s*(?:\{1:[^}]*\}\s*)?(?:\{2:[^}]*\}\s*)?(?:\{4:\s*)?:20:", re.MULTILINE)


def looks_like_mt940(data: bytes) -> bool:
    """A SWIFT MT940: ``:20:`` opens it and it has the ``:25:`` account and ``:60F:``/``:60M:`` balance tags."""
    head = data[:8192]
    return MT940_START.search(head) is not None and b":25:" in head and re.search(rb":60[FM]:", head) is not None


def parse_mt940(
    data: bytes, name: str, sha256: str, check_balances: bool = True, currency: str | None = "CNY"
) -> pl.DataFrame:
    """Every ``:61:`` statement line of an MT940 file (one or several statements) as statement lines.

    Each statement's opening balance plus its lines must make its closing balance, to the fen, or
    the file is refused (a truncated or damaged download); ``check_balances=False`` reads it anyway
    (for published samples whose balances were edited when they were anonymised)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # SWIFT's character set is a subset of ASCII; be lenient on bytes beyond
    transactions = mt940.models.Transactions()
    try:
        transactions.parse(text.replace("\r\n", "\n"))
    except Exception as error:  # the library raises what its parsers raise; the reviewer needs one sentence
        raise StatementRejected(f"the MT940 file does not parse: {type(error).__name__}: {error}") from None
    statements = _mt940_statements(data)
    blocks = [(line, statement.account, text) for statement in statements for line, text in statement.lines]
    if len(blocks) != len(transactions):
        raise StatementRejected(
            f"the MT940 file has {len(blocks)} :61: lines but {len(transactions)} read as transactions"
        )
    rows = []
    for (line_no, account, raw86), tx in zip(blocks, transactions, strict=True):
        data_ = tx.data
        status = str(data_.get("status") or "")
        if status not in ("C", "D", "RC", "RD"):
            raise StatementRejected(f"line {line_no}: mark {status!r} is not C, D, RC or RD")
        try:
            fen = decimal_to_fen(data_["amount"].amount.copy_abs())
        except AmountError:
            raise StatementRejected(f"line {line_no}: {data_['amount'].amount} is not an amount in fen") from None
        sign = 1 if status in ("C", "RD") else -1
        value_date = dt.date(*data_["date"].timetuple()[:3])
        entry = data_.get("entry_date") or data_.get("guessed_entry_date") or data_["date"]
        booking = dt.date(*entry.timetuple()[:3])
        details = " ".join((raw86 or str(data_.get("transaction_details") or "")).split()) or None
        reference = (data_.get("bank_reference") or "").strip() or None
        customer = (data_.get("customer_reference") or "").strip()
        rows.append({
            "line_no": line_no, "account": account, "booking_date": booking, "value_date": value_date,
            "amount_fen": sign * fen, "reversal": status.startswith("R"), "currency": data_["amount"].currency,
            "counterparty_name": " ".join(str(data_.get("applicant_name") or "").split()) or None,
            "counterparty_account": None, "narrative": details, "bank_reference": reference,
            "line_key": _key("mt940", reference, customer, value_date, sign * fen, details),
            "raw_line": f":61:{status} {fen / 100:.2f} {value_date} {customer} {details or ''}".strip(),
        })  # fmt: skip
    if check_balances:
        _check_balances(statements, rows)
    return _frame(rows, name, sha256, currency)


def _check_balances(statements: list[_Mt940Statement], rows: list[dict[str, Any]]) -> None:
    """Opening balance + the statement's lines = its closing balance, to the fen, or the file is refused."""
    amounts = {row["line_no"]: row["amount_fen"] for row in rows}
    for statement in statements:
        if statement.opening is None or statement.closing is None:
            continue
        moved = sum(amounts[line] for line, _ in statement.lines)
        if statement.opening + moved != statement.closing:
            first = statement.lines[0][0] if statement.lines else 0
            raise StatementRejected(
                f"the statement of account {statement.account} (from line {first}) does not add up: opening "
                f"{statement.opening / 100:.2f} + lines {moved / 100:.2f} ≠ closing {statement.closing / 100:.2f}"
            )


# ---------------------------------------------------------------- Chinese online-banking exports


_PADDING = " \t\u3000\"'="


def _cell(text: str) -> str:
    """A header cell: NFKC (``（收入）`` is ``(收入)``), padding stripped."""
    return unicodedata.normalize("NFKC", text).strip(_PADDING)


def _value(text: str) -> str:
    """A value cell as the bank wrote it, padding (spaces, TABs, Excel's ``="…"``) stripped."""
    return text.strip(_PADDING)


def looks_like_bank_export(data: bytes, layout: BankExportLayout) -> bool:
    """Whether the file's first lines hold ``layout``'s header."""
    try:
        utf8, _ = to_utf8(data[:16384], layout.encoding)
    except Exception:  # any decode trouble means: not this layout
        return False
    text = utf8.decode("utf-8", errors="ignore")
    return any(all(name in line for name in layout.header_contains) for line in text.splitlines()[:50])


def parse_bank_export(data: bytes, name: str, sha256: str, layout: BankExportLayout) -> pl.DataFrame:
    """The detail lines of a bank's download between its header and its 合计 footer."""
    try:
        utf8, _ = to_utf8(data, layout.encoding)
    except Exception as error:  # FileRejected or a decode error: one sentence for the reviewer
        raise StatementRejected(f"the statement does not decode as {layout.encoding}: {error}") from None
    lines = utf8.decode("utf-8").splitlines()
    header_at = next(
        (i for i, line in enumerate(lines[:200]) if all(name in line for name in layout.header_contains)), None
    )
    if header_at is None:
        raise StatementRejected(f"no header line holding {', '.join(layout.header_contains)} in the first 200 lines")
    columns = [_cell(c) for c in _split(lines[header_at], layout.delimiter)]
    wanted = [
        layout.booking_date, layout.value_date, layout.income, layout.expense, layout.amount, layout.direction,
        layout.counterparty_name, layout.counterparty_account, layout.bank_reference, *layout.narrative,
    ]  # fmt: skip
    missing = [c for c in wanted if c is not None and c not in columns]
    if missing:
        raise StatementRejected(f"the header lacks column(s) {', '.join(missing)}")
    account = None
    if layout.account_pattern:
        found = re.search(layout.account_pattern, "\n".join(lines[:header_at]))
        account = found.group(1) if found else None
    at = {c: columns.index(c) for c in wanted if c is not None}
    rows: list[dict[str, Any]] = []
    for line_no, line in enumerate(lines[header_at + 1 :], start=header_at + 2):
        if not line.strip(_PADDING + ","):
            continue
        cells = [_value(c) for c in _split(line, layout.delimiter)]
        if cells and _cell(cells[0]).startswith(layout.footer_prefixes):
            _footer_agrees(cells, at, layout, rows, line_no)
            break
        if len(cells) < len(columns):
            raise StatementRejected(f"line {line_no} has {len(cells)} cells, the header {len(columns)}")
        rows.append(_export_row(cells, at, layout, line_no, line, account))
    return _frame(rows, name, sha256)


def _footer_agrees(
    cells: list[str], at: dict[str, int], layout: BankExportLayout, rows: list[dict[str, Any]], line_no: int
) -> None:
    """The 合计 line's income and expense totals, where it states them, are the lines' sums."""
    sums = {
        layout.income: sum(row["amount_fen"] for row in rows if row["amount_fen"] > 0),
        layout.expense: -sum(row["amount_fen"] for row in rows if row["amount_fen"] < 0),
    }
    for column, total in sums.items():
        if column is None or at[column] >= len(cells) or not cells[at[column]]:
            continue
        try:
            stated = abs(yuan_text_to_fen(cells[at[column]]))
        except AmountError:
            said = cells[at[column]]
            raise StatementRejected(f"line {line_no}: the total {said!r} of {column} is not an amount") from None
        if stated != total:
            raise StatementRejected(
                f"line {line_no}: the footer states {column} {stated / 100:.2f}, the lines add up to {total / 100:.2f}"
            )


def _split(line: str, delimiter: str) -> list[str]:
    """One line's cells; a cell in double quotes may hold the delimiter (``"1,006,296.62"``)."""
    return next(csv.reader([line], delimiter=delimiter, quotechar='"', skipinitialspace=False), [])


def _export_date(text: str, layout: BankExportLayout, line_no: int) -> dt.date:
    for form in layout.date_formats:
        try:
            return dt.datetime.strptime(text, form).date()
        except ValueError:
            continue
    raise StatementRejected(f"line {line_no}: {text!r} is not a date ({' or '.join(layout.date_formats)})")


def _export_row(
    cells: list[str], at: dict[str, int], layout: BankExportLayout, line_no: int, line: str, account: str | None
) -> dict[str, Any]:
    def cell(column: str | None) -> str | None:
        return (cells[at[column]] or None) if column is not None else None

    try:
        if layout.income is not None and layout.expense is not None:
            income, expense = cell(layout.income), cell(layout.expense)
            credit = yuan_text_to_fen(income) if income and income not in ("-", "0", "0.00") else 0
            debit = yuan_text_to_fen(expense) if expense and expense not in ("-", "0", "0.00") else 0
            if credit and debit:
                raise StatementRejected(f"line {line_no} states both an income and an expense")
            fen = credit - abs(debit)
        else:
            fen = yuan_text_to_fen(cell(layout.amount) or "")
            said = cell(layout.direction)
            if said is not None:
                fen = abs(fen) if said in layout.credit_words else -abs(fen)
    except AmountError as error:
        raise StatementRejected(f"line {line_no}: {error}") from None
    booked = _export_date((cell(layout.booking_date) or "")[:19], layout, line_no)
    valued = _export_date(v[:19], layout, line_no) if (v := cell(layout.value_date)) else booked
    narrative = " ".join(t for c in layout.narrative if (t := cell(c))) or None
    reference = cell(layout.bank_reference)
    return {
        "line_no": line_no, "account": account, "booking_date": booked, "value_date": valued, "amount_fen": fen,
        "reversal": any(w in (narrative or "") for w in layout.reversal_words),
        "counterparty_name": cell(layout.counterparty_name), "counterparty_account": cell(layout.counterparty_account),
        "narrative": narrative, "bank_reference": reference,
        "line_key": _key("export", reference, booked, fen, narrative, cell(layout.counterparty_account)),
        "raw_line": line.strip(),
    }  # fmt: skip


def statement_kind(data: bytes, layouts: dict[str, BankExportLayout] | None = None) -> str | None:
    """What statement the bytes are (``camt.053``, ``mt940``, a bank download's layout name), or None."""
    if message_kind(data) == "camt.053":
        return "camt.053"
    if looks_like_mt940(data):
        return "mt940"
    return next((name for name, layout in (layouts or {}).items() if looks_like_bank_export(data, layout)), None)


def read_statement(
    data: bytes,
    name: str,
    layouts: dict[str, BankExportLayout] | None = None,
    check_balances: bool = True,
    currency: str | None = "CNY",
) -> tuple[str, pl.DataFrame]:
    """Recognise a statement by content and read it: (what it is, its lines). ``currency=None``
    accepts lines in any currency (for reading published samples, never for the books)."""
    try:
        return _read_statement(data, name, layouts, check_balances, currency)
    except StatementRejected:
        raise
    except (AmountError, ValueError, KeyError, IndexError) as error:  # a reader's surprise: the file, never the date
        raise StatementRejected(f"the statement cannot be read ({type(error).__name__}: {error})") from None


def _read_statement(
    data: bytes, name: str, layouts: dict[str, BankExportLayout] | None, check_balances: bool, currency: str | None
) -> tuple[str, pl.DataFrame]:
    sha256 = hashlib.sha256(data).hexdigest()
    kind = statement_kind(data, layouts)
    if kind == "camt.053":
        return kind, parse_camt053(data, name, sha256, check_balances, currency)
    if kind == "mt940":
        return kind, parse_mt940(data, name, sha256, check_balances, currency)
    if kind is not None and layouts is not None:
        return kind, parse_bank_export(data, name, sha256, layouts[kind])
    raise StatementRejected("not a statement this product reads (camt.053, MT940 or a configured bank download)")
