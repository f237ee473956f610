"""ISO 20022 messages built for tests: pain.002 status reports and camt.054 notifications."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PAIN = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"
CAMT = "urn:iso:std:iso:20022:tech:xsd:camt.054.001.02"


@dataclass(frozen=True)
class Status:
    """One ``TxInfAndSts``: our instruction id, the bank's status id, the status and amount."""

    instruction_id: str
    status_id: str
    status: str = "ACSC"
    amount: str = "100.00"
    currency: str = "CNY"
    reason: str | None = None


def pain002(statuses: Iterable[Status], created: str = "2026-11-27T20:00:00", pretty: bool = False) -> bytes:
    """A status report; ``pretty``: one element per line, as banks' files often are (many lines)."""
    end = "\n" if pretty else ""
    parts = [
        f'<?xml version="1.0" encoding="UTF-8"?>{end}<Document xmlns="{PAIN}"><CstmrPmtStsRpt>{end}',
        f"<GrpHdr><MsgId>M1</MsgId>{end}<CreDtTm>{created}</CreDtTm></GrpHdr>{end}<OrgnlPmtInfAndSts>{end}",
    ]
    for s in statuses:
        reason = f"<StsRsnInf><Rsn><Cd>{s.reason}</Cd></Rsn></StsRsnInf>{end}" if s.reason else ""
        parts.append(
            f"<TxInfAndSts>{end}<StsId>{s.status_id}</StsId>{end}<OrgnlEndToEndId>{s.instruction_id}</OrgnlEndToEndId>"
            f'{end}<TxSts>{s.status}</TxSts>{end}{reason}<OrgnlTxRef>{end}<Amt><InstdAmt Ccy="{s.currency}">'
            f"{s.amount}</InstdAmt></Amt>{end}<DbtrAcct><Id><IBAN>6222020200001234</IBAN></Id></DbtrAcct>{end}"
            f"</OrgnlTxRef>{end}</TxInfAndSts>{end}"
        )
    parts.append("</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>\n")
    return "".join(parts).encode()


def camt054(entries: Iterable[tuple[str, str, list[str]]], booked: str = "2026-11-27") -> bytes:
    """A notification: each entry is (entry reference, entry total, detail XML fragments)."""
    body = "".join(
        f'<Ntry><Amt Ccy="CNY">{total}</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>{booked}</Dt></BookgDt>'
        f"<AcctSvcrRef>{ref}</AcctSvcrRef><NtryDtls>{''.join(details)}</NtryDtls></Ntry>\n"
        for ref, total, details in entries
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{CAMT}"><BkToCstmrDbtCdtNtfctn>\n'
        f"<GrpHdr><MsgId>N1</MsgId><CreDtTm>{booked}T21:00:00</CreDtTm></GrpHdr>\n<Ntfctn>\n{body}"
        "</Ntfctn></BkToCstmrDbtCdtNtfctn></Document>\n"
    ).encode()


def detail(end_to_end: str, amount: str | None = None, tx_id: str | None = None) -> str:
    """A ``TxDtls`` with its references and, optionally, its own amount."""
    own = f'<Amt Ccy="CNY">{amount}</Amt>' if amount else ""
    ident = f"<TxId>{tx_id}</TxId>" if tx_id else ""
    return f"<TxDtls><Refs><EndToEndId>{end_to_end}</EndToEndId>{ident}</Refs>{own}</TxDtls>\n"
