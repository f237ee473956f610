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

    A file with a document type declaration is recognised by the namespace in its first bytes,
    never parsed (:func:`parse_iso20022` refuses it, saying why).
    """
    head = data[:4096].lstrip()
    if not head.startswith(b"<"):
        return None
    if DOCTYPE.search(head):
        found = NAMESPACE.search(data[:16384])
        return found.group(1).decode() if found else None
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError:
        return None
    namespace = etree.QName(root).namespace or ""
    if "urn:iso:std:iso:20022:tech:xsd:" not in namespace:
        return None
    name = namespace.rsplit(":", 1)[-1]  # e.g. pain.002.001.03
    return ".".join(name.split(".")[:2])


def _parser() -> Any:
    # no network, no entity expansion: a file must not make the reader fetch or explode
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_comments=True)


def _local(element: Any, *path: str) -> Any:
    """The first descendant following ``path`` by local names (any namespace)."""
    node = element
    for name in path:
        found = node.xpath(f"./*[local-name()='{name}']")
        if not found:
            found = node.xpath(f".//*[local-name()='{name}']")
        if not found:
            return None
        node = found[0]
    return node


def _text(element: Any, *path: str) -> str | None:
    node = _local(element, *path)
    if node is None or node.text is None:
        return None
    return str(node.text).strip()


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


def parse_iso20022(data: bytes) -> tuple[str, dt.date | None, pl.DataFrame]:
    """The message kind, the date it states and one row per transaction (text columns, ``line_no``)."""
    kind = message_kind(data)
    if kind is not None and DOCTYPE.search(data[:4096]):
        raise NotIso20022(DTD_REFUSED)
    if kind not in ("pain.002", "camt.054"):
        raise NotIso20022(f"not a pain.002 or camt.054 message (found {kind or 'no ISO 20022 XML'})")
    root = etree.fromstring(data, parser=_parser())
    created = _time(_text(root, "GrpHdr", "CreDtTm"))
    rows = _pain002_rows(root, created) if kind == "pain.002" else _camt054_rows(root, created)
    stated = created.astimezone(BUSINESS_TZ).date() if created else None
    frame = pl.DataFrame(
        rows,
        schema={
            "line_no": pl.Int64, "record_kind": pl.String, "status": pl.String, "channel_txn_id": pl.String,
            "reference": pl.String, "amount": pl.String, "currency": pl.String, "settled_at": pl.Datetime("us", "UTC"),
            "account_shown": pl.String, "failure_code": pl.String, "failure_text": pl.String, "raw_line": pl.String,
        },
    )  # fmt: skip
    return kind, stated, frame


def _pain002_rows(root: Any, created: dt.datetime | None) -> list[dict[str, Any]]:
    rows = []
    for tx in root.xpath(".//*[local-name()='TxInfAndSts']"):
        status = _text(tx, "TxSts") or ""
        amount = _local(tx, "InstdAmt")
        end_to_end = _text(tx, "OrgnlEndToEndId")
        rows.append(
            {
                "line_no": tx.sourceline,
                "record_kind": "debit",
                "status": "FAILED" if status in ("RJCT", "CANC") else "SUCCESS",
                "channel_txn_id": _text(tx, "StsId") or end_to_end,
                "reference": end_to_end,
                "amount": None if amount is None else (amount.text or "").strip(),
                "currency": None if amount is None else amount.get("Ccy"),
                "settled_at": created,
                "account_shown": _text(tx, "DbtrAcct", "IBAN"),
                "failure_code": _text(tx, "StsRsnInf", "Rsn", "Cd"),
                "failure_text": _text(tx, "StsRsnInf", "AddtlInf"),
                "raw_line": f"TxInfAndSts {end_to_end} {status}",
            }
        )
    return rows


def _camt054_rows(root: Any, created: dt.datetime | None) -> list[dict[str, Any]]:
    rows = []
    for entry in root.xpath(".//*[local-name()='Ntry']"):
        booked = _time(_text(entry, "BookgDt", "Dt") or _text(entry, "BookgDt", "DtTm")) or created
        direction = _text(entry, "CdtDbtInd")
        details = entry.xpath(".//*[local-name()='TxDtls']") or [entry]
        for tx in details:
            returned = _local(tx, "RtrInf") is not None or _text(entry, "RvslInd") == "true"
            amount = _local(tx, "AmtDtls", "Amt")
            if amount is None:
                amount = _local(entry, "Amt")
            end_to_end = _text(tx, "Refs", "EndToEndId")
            rows.append(
                {
                    "line_no": tx.sourceline,
                    "record_kind": "refund" if returned or direction == "DBIT" else "debit",
                    "status": "SUCCESS",
                    "channel_txn_id": _text(tx, "Refs", "TxId") or _text(entry, "AcctSvcrRef") or end_to_end,
                    "reference": end_to_end,
                    "amount": None if amount is None else (amount.text or "").strip(),
                    "currency": None if amount is None else amount.get("Ccy"),
                    "settled_at": booked,
                    "account_shown": _text(tx, "DbtrAcct", "IBAN"),
                    "failure_code": _text(tx, "RtrInf", "Rsn", "Cd"),
                    "failure_text": _text(tx, "RtrInf", "AddtlInf"),
                    "raw_line": f"Ntry {direction} {end_to_end}",
                }
            )
    return rows
