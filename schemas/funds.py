"""The frame contracts of funds reconciliation (资金对账): expected settlements, statement lines,
allocations. Money is Int64 fen and signed where a column says so; dates are Shanghai dates."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

#: What a classified statement line is to the funds passes.
LINE_KINDS = ["settlement", "fee", "other"]


class ExpectationFrame(pa.DataFrameModel):
    """One expected settlement per channel × merchant × business date."""

    expectation_key: pl.String = pa.Field(unique=True, description="stable key: channel|merchant|date")
    channel: pl.String = pa.Field(description="channel id")
    merchant_id: pl.String = pa.Field(description="the channel's merchant id ('-' when one is configured)")
    business_date: pl.Date = pa.Field(description="the date the money was collected (Shanghai)")
    debits: pl.Int64 = pa.Field(ge=0, description="successful debits counted")
    gross_fen: pl.Int64 = pa.Field(ge=0, description="collected, fen")
    refunds: pl.Int64 = pa.Field(ge=0, description="successful refunds counted")
    refunds_fen: pl.Int64 = pa.Field(ge=0, description="refunded, fen")
    fee_expected_fen: pl.Int64 = pa.Field(ge=0, description="fee by the channel's fee rule, fen")
    fee_reported_fen: pl.Int64 = pa.Field(nullable=True, description="fee the channel says it charged, fen")
    fee_netted: pl.Boolean = pa.Field(description="the fee is taken out of the payout (else billed apart)")
    net_fen: pl.Int64 = pa.Field(description="what the channel owes us for the date, fen (negative: we owe it)")
    gross_stated_fen: pl.Int64 = pa.Field(nullable=True, description="the channel's collected (a bank's batch total)")
    net_stated_fen: pl.Int64 = pa.Field(nullable=True, description="the channel's net (UnionPay's 清算净额)")
    payout_stated_fen: pl.Int64 = pa.Field(nullable=True, description="the channel's payouts (Alipay's 提现)")
    window_from: pl.Date = pa.Field(description="first value date on which the money is in time")
    window_to: pl.Date = pa.Field(description="last value date on which the money is in time")

    class Config:
        strict = False


class StatementLineFrame(pa.DataFrameModel):
    """One line of the collection account's bank statement, with its provenance."""

    line_key: pl.String = pa.Field(unique=True, description="stable key of the line")
    source_file: pl.String = pa.Field(description="file name as delivered")
    file_sha256: pl.String = pa.Field(str_length=64, description="SHA-256 of the file's bytes")
    line_no: pl.Int64 = pa.Field(ge=1, description="line (or element line) in the file")
    account: pl.String = pa.Field(nullable=True, description="our account the statement is of")
    booking_date: pl.Date = pa.Field(description="记账日期 booking date")
    value_date: pl.Date = pa.Field(description="起息日 value date (the booking date when not stated)")
    amount_fen: pl.Int64 = pa.Field(description="signed: a credit positive, a debit negative, fen")
    reversal: pl.Boolean = pa.Field(description="the bank marks the line a reversal (冲正, RC/RD, RvslInd)")
    counterparty_name: pl.String = pa.Field(nullable=True, description="对方户名")
    counterparty_account: pl.String = pa.Field(nullable=True, description="对方账号")
    narrative: pl.String = pa.Field(nullable=True, description="摘要 / 附言 / :86: / remittance information")
    bank_reference: pl.String = pa.Field(nullable=True, description="the bank's own reference of the line")
    raw_line: pl.String = pa.Field(description="the line as read, for a person")

    class Config:
        strict = False


#: Polars dtypes of a statement line frame (before classification).
STATEMENT_DTYPES: dict[str, pl.DataType] = {
    "line_key": pl.String(),
    "source_file": pl.String(),
    "file_sha256": pl.String(),
    "line_no": pl.Int64(),
    "account": pl.String(),
    "booking_date": pl.Date(),
    "value_date": pl.Date(),
    "amount_fen": pl.Int64(),
    "reversal": pl.Boolean(),
    "counterparty_name": pl.String(),
    "counterparty_account": pl.String(),
    "narrative": pl.String(),
    "bank_reference": pl.String(),
    "raw_line": pl.String(),
}
