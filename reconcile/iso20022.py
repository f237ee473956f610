"""ISO 20022 status and notification files as canonical channel records.

- ``pain.002`` (customer payment status report): each ``TxInfAndSts`` with status ``RJCT`` is a
  failed debit of the transaction whose ``OrgnlEndToEndId`` is our instruction id, with its reason
  code; accepted transactions are successes.
- ``camt.054`` (debit/credit notification): a credited entry is a collected debit; an entry with
  return information (``RtrInf``) is a return — a reversal of the collection it names — with the
  return reason.

Elements are found by local name, so any message version parses. Every record keeps the line of
the element it came from. Amounts go from decimal text to fen without a float.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import polars as pl
from lxml import etree

from reconcile.codes import FailureReason
from reconcile.settings import BUSINESS_TZ

#: ISO 20022 external status reason codes → the shared failure list.
ISO_REASONS: dict[str, FailureReason] = {
    "AC01": FailureReason.INVALID_ACCOUNT,  # incorrect account number
    "AC04": FailureReason.ACCOUNT_CLOSED,
    "AC06": FailureReason.ACCOUNT_FROZEN,  # blocked account
    "AC13": FailureReason.INVALID_ACCOUNT,  # invalid debtor account type
    "AG01": FailureReason.NO_AGREEMENT,  # transaction forbidden on this account
    "AM04": FailureReason.INSUFFICIENT_FUNDS,
    "AM05": FailureReason.OTHER,  # duplication
    "BE05": FailureReason.NAME_ID_MISMATCH,  # unrecognised initiating party
    "MD01": FailureReason.NO_AGREEMENT,  # no mandate
    "MD02": FailureReason.NO_AGREEMENT,  # missing mandate data
    "MD06": FailureReason.OTHER,  # refund requested by the end customer
    "MD07": FailureReason.ACCOUNT_CLOSED,  # end customer deceased
    "MS02": FailureReason.OTHER,  # reason not specified by the customer
    "MS03": FailureReason.OTHER,  # reason not specified by the agent
    "SL01": FailureReason.CHANNEL_ERROR,
}


class NotIso20022(ValueError):
    """The bytes are not a pain.002 or camt.054 message."""


#: A document type declaration: ISO 20022 messages have none, and one can define entities that
#: expand (billion laughs) or reach outside the file. A file declaring one is refused, by name.
DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
NAMESPACE = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:((?:pain|camt|pacs)\.\d{3})")
DTD_REFUSED = (
    "the XML declares a document type (<!DOCTYPE …>): refused — ISO 20022 messages have none, and a DTD "
    "can define entities that expand or reach outside the file"
)


def message_kind(data: bytes) -> str | None:
    """``pain.002``, ``camt.054`` (or another ISO message name), or None when not ISO 20022 XML.

    Only the root element is read (a large file is not parsed to be recognised); a file with a
    document type declaration is recognised by the namespace in its first bytes, never parsed
    (:func:`parse_iso20022` refuses it, saying why).
    """
    head = data[:4096].lstrip()
    if not head.startswith(b"<"):
        return None
    if DOCTYPE.search(head):
        found = NAMESPACE.search(data[:16384])
        return found.group(1).decode() if found else None
    try:
        _, root = next(_events(data, events=("start",)))
    except (etree.XMLSyntaxError, StopIteration):
        return None
    namespace = etree.QName(root).namespace or ""
    if "urn:iso:std:iso:20022:tech:xsd:" not in namespace:
        return None
    name = namespace.rsplit(":", 1)[-1]  # e.g. pain.002.001.03
    return ".".join(name.split(".")[:2])


def _events(data: bytes, events: tuple[str, ...] = ("end",), tag: Any = None) -> Any:
    # no network, no DTD, no entity expansion, libxml2's limits on depth and text size kept: a
    # file must not make the reader fetch, explode or take the machine's memory
    return etree.iterparse(
        io.BytesIO(data), events=events, tag=tag, resolve_entities=False, no_network=True, load_dtd=False,
        huge_tree=False, remove_comments=True, remove_pis=True,
    )  # fmt: skip


#: What libxml2's own limits say, in the words a reviewer needs.
_LIMITS = (
    ("Excessive depth", "the XML nests elements deeper than 256 levels: refused (ISO 20022 messages nest a few dozen)"),
    ("Text node too long", "the XML holds a text of more than 10 MB in one element: refused (no ISO 20022 field is)"),
    ("huge text node", "the XML holds a text of more than 10 MB in one element: refused (no ISO 20022 field is)"),
)


def _malformed(error: etree.XMLSyntaxError) -> NotIso20022:
    message = str(error)
    for words, reason in _LIMITS:
        if words in message:
            return NotIso20022(f"{reason}, at line {error.lineno}")
    return NotIso20022(f"the XML is malformed at line {error.lineno}: {message.split(', line ')[0]}")


def _text(element: Any, path: str) -> str | None:
    """The text at ``path`` below ``element``, by local names (``{*}`` matches any namespace)."""
    text = element.findtext(path)
    return None if text is None else str(text).strip()


def _time(text: str | None) -> dt.datetime | None:
    """ISO time; without an offset it is taken as Shanghai time, as every file time is."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        try:
            value = dt.datetime.combine(dt.date.fromisoformat(text), dt.time(0))
        except ValueError:
            return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BUSINESS_TZ)
    return value.astimezone(dt.UTC)


ROW_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "line_no": pl.Int64, "record_kind": pl.String, "status": pl.String, "channel_txn_id": pl.String,
    "reference": pl.String, "amount": pl.String, "currency": pl.String, "settled_at": pl.Datetime("us", "UTC"),
    "account_shown": pl.String, "failure_code": pl.String, "failure_text": pl.String, "raw_line": pl.String,
}  # fmt: skip


def parse_iso20022(data: bytes) -> tuple[str, dt.date | None, pl.DataFrame]:
    """The message kind, the date it states and one row per transaction (text columns, ``line_no``).

    The file is read as a stream of elements: each transaction is taken when its element ends and
    then dropped, so a file of half a million transactions never sits in memory as a tree.
    """
    kind = message_kind(data)
    if kind is not None and DOCTYPE.search(data[:4096]):
        raise NotIso20022(DTD_REFUSED)
    if kind not in ("pain.002", "camt.054"):
        raise NotIso20022(f"not a pain.002 or camt.054 message (found {kind or 'no ISO 20022 XML'})")
    wanted = "{*}TxInfAndSts" if kind == "pain.002" else "{*}Ntry"
    created: dt.datetime | None = None
    rows: list[dict[str, Any]] = []
    try:
        for _, element in _events(data, tag=("{*}GrpHdr", wanted)):
            if etree.QName(element).localname == "GrpHdr":
                created = _time(_text(element, "{*}CreDtTm"))
            elif kind == "pain.002":
                rows.append(_pain002_row(element, created))
            else:
                rows.extend(_camt054_rows(element, created))
            element.clear(keep_tail=False)
            while element.getprevious() is not None:  # what was read before: no longer needed
                del element.getparent()[0]
    except etree.XMLSyntaxError as error:
        raise _malformed(error) from None
    stated = created.astimezone(BUSINESS_TZ).date() if created else None
    frame = pl.DataFrame(rows, schema=ROW_SCHEMA)
    if frame.height and frame["line_no"].max() >= _SIXTEEN_BITS:  # type: ignore[operator]
        frame = frame.with_columns(line_no=_opening_lines(data, frame["line_no"]))
    return kind, stated, frame


#: libxml2 keeps a line number in 16 bits; past it, an element's line is its first child's.
_SIXTEEN_BITS = 65535
_OPENING = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:TxInfAndSts|TxDtls|Ntry)[\s/>]")


def _opening_lines(data: bytes, told: pl.Series) -> pl.Series:
    """The line each transaction's element opens on, where libxml2's is approximate: the last
    opening tag of a transaction element at or before the line it told."""
    lines, previous, line = [], 0, 1
    for found in _OPENING.finditer(data):
        line += data.count(b"\n", previous, found.start())
        previous = found.start()
        lines.append(line)
    openings = pl.Series(lines, dtype=pl.Int64)
    index = openings.search_sorted(told, side="right") - 1
    exact = told < _SIXTEEN_BITS
    return pl.select(
        pl.when(exact | (index < 0)).then(told).otherwise(openings.gather(index.clip(0)))
    ).to_series().alias("line_no")


def _first_by_name(element: Any) -> dict[str, Any]:
    """Each local name below ``element`` → its first element, in one walk (cheaper than a search
    per field when every field is wanted)."""
    found: dict[str, Any] = {}
    for node in element.iter():
        tag = node.tag
        if isinstance(tag, str):
            found.setdefault(tag[tag.rfind("}") + 1 :], node)
    return found


def _stripped(node: Any) -> str | None:
    return None if node is None or node.text is None else str(node.text).strip()


def _pain002_row(tx: Any, created: dt.datetime | None) -> dict[str, Any]:
    named = _first_by_name(tx)
    status = _stripped(named.get("TxSts")) or ""
    amount = named.get("InstdAmt")
    end_to_end = _stripped(named.get("OrgnlEndToEndId"))
    failed = status in ("RJCT", "CANC")
    debtor = named.get("DbtrAcct")
    return {
        "line_no": tx.sourceline,
        "record_kind": "debit",
        "status": "FAILED" if failed else "SUCCESS",
        "channel_txn_id": _stripped(named.get("StsId")) or end_to_end,
        "reference": end_to_end,
        "amount": None if amount is None else (amount.text or "").strip(),
        "currency": None if amount is None else amount.get("Ccy"),
        "settled_at": created,
        "account_shown": None if debtor is None else _text(debtor, ".//{*}IBAN"),
        "failure_code": _text(tx, ".//{*}StsRsnInf/{*}Rsn/{*}Cd") if "StsRsnInf" in named else None,
        "failure_text": _text(tx, ".//{*}StsRsnInf/{*}AddtlInf") if "StsRsnInf" in named else None,
        "raw_line": f"TxInfAndSts {end_to_end} {status}",
    }


#: Where a camt.054 transaction detail states its own amount, most specific first.
_DETAIL_AMOUNTS = ("{*}Amt", "{*}AmtDtls/{*}TxAmt/{*}Amt", "{*}AmtDtls/{*}InstdAmt/{*}Amt", ".//{*}AmtDtls//{*}Amt")


def _camt054_rows(entry: Any, created: dt.datetime | None) -> list[dict[str, Any]]:
    """One row per transaction detail of an entry (an entry without details is one transaction).

    A detail's id is its ``TxId``; without one, the entry's reference and the detail's place in
    it (an entry of several details shares one reference). The entry's amount is a detail's only
    when the entry has one detail: a total is never split by guessing.
    """
    booked = _time(_text(entry, "{*}BookgDt/{*}Dt") or _text(entry, "{*}BookgDt/{*}DtTm")) or created
    direction = _text(entry, "{*}CdtDbtInd")
    entry_ref = _text(entry, "{*}AcctSvcrRef")
    reversed_entry = _text(entry, "{*}RvslInd") == "true"
    details = entry.findall(".//{*}TxDtls") or [entry]
    rows = []
    for n, tx in enumerate(details, start=1):
        amount = next((found for path in _DETAIL_AMOUNTS if (found := tx.find(path)) is not None), None)
        if amount is None and len(details) == 1:
            amount = entry.find("{*}Amt")
        end_to_end = _text(tx, "{*}Refs/{*}EndToEndId")
        own_id = _text(tx, "{*}Refs/{*}TxId")
        if own_id is None and entry_ref is not None and len(details) > 1:
            own_id = f"{entry_ref}/{n}"
        returned = tx.find(".//{*}RtrInf") is not None or reversed_entry
        rows.append(
            {
                "line_no": tx.sourceline,
                "record_kind": "refund" if returned or direction == "DBIT" else "debit",
                "status": "SUCCESS",
                "channel_txn_id": own_id or entry_ref or end_to_end,
                "reference": end_to_end,
                "amount": None if amount is None else (amount.text or "").strip(),
                "currency": None if amount is None else amount.get("Ccy"),
                "settled_at": booked,
                "account_shown": _text(tx, ".//{*}DbtrAcct//{*}IBAN"),
                "failure_code": _text(tx, ".//{*}RtrInf/{*}Rsn/{*}Cd"),
                "failure_text": _text(tx, ".//{*}RtrInf/{*}AddtlInf"),
                "raw_line": f"Ntry {direction} {end_to_end}",
            }
        )
    return rows
