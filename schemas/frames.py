"""The frame contracts. Each field's description doubles as documentation for finance.

Money columns end in ``_fen`` and are Int64; times are UTC-aware datetimes; business dates are
Shanghai calendar dates.
"""

from __future__ import annotations

import pandera.polars as pa
import polars as pl
from pandera.engines.polars_engine import DateTime

UTC = {"time_unit": "us", "time_zone": "UTC"}
REPAYMENT_METHODS = ["equal_installment", "equal_principal", "interest_first", "bullet"]
PLATFORM_STATUSES = ["success", "failed", "unknown"]
CONTRACT_PATTERN = r"^[A-Za-z0-9_-]{1,40}$"


class LoanFrame(pa.DataFrameModel):
    """One row per loan contract, from the servicing snapshot."""

    contract_no: pl.String = pa.Field(unique=True, str_matches=CONTRACT_PATTERN, description="合同号 contract no")
    borrower_name: pl.String = pa.Field(str_length={"min_value": 1}, description="借款人姓名 (PII)")
    id_number: pl.String = pa.Field(str_matches=r"^\d{17}[\dXx]$", description="身份证号 (PII)")
    phone: pl.String = pa.Field(str_matches=r"^1\d{10}$", description="手机号 (PII)")
    principal_fen: pl.Int64 = pa.Field(gt=0, description="本金, fen")
    annual_rate: pl.String = pa.Field(str_matches=r"^0?\.\d{1,6}$|^0$", description="年利率 as a decimal fraction")
    term_months: pl.Int64 = pa.Field(ge=1, le=120, description="期数 in months")
    repayment_method: pl.String = pa.Field(isin=REPAYMENT_METHODS, description="还款方式")
    start_date: pl.Date = pa.Field(description="起息日 (Shanghai)")
    grace_days: pl.Int64 = pa.Field(ge=0, le=60, description="宽限期 days after the due date")
    bound_channel: pl.String = pa.Field(description="绑定渠道: alipay or a bank channel id")
    bound_account: pl.String = pa.Field(str_length={"min_value": 4}, description="绑定账户 card or Alipay login (PII)")

    class Config:
        strict = True


class InstallmentFrame(pa.DataFrameModel):
    """One row per installment of a loan: what is due and when."""

    contract_no: pl.String = pa.Field(str_matches=CONTRACT_PATTERN, description="合同号")
    installment_no: pl.Int64 = pa.Field(ge=1, description="期次, from 1")
    due_date: pl.Date = pa.Field(description="应还日 (Shanghai)")
    principal_due_fen: pl.Int64 = pa.Field(ge=0, description="应还本金, fen")
    interest_due_fen: pl.Int64 = pa.Field(ge=0, description="应还利息, fen")
    fee_due_fen: pl.Int64 = pa.Field(ge=0, description="应还费用, fen")
    penalty_due_fen: pl.Int64 = pa.Field(ge=0, description="应还罚息, fen")

    class Config:
        strict = False
        unique = ("contract_no", "installment_no")


class InstructionFrame(pa.DataFrameModel):
    """One row per debit instruction (代扣指令) the platform sent to a channel."""

    instruction_id: pl.String = pa.Field(
        unique=True, str_matches=r"^[A-Za-z0-9_-]{1,64}$", description="商户订单号 / 请求流水号"
    )
    contract_no: pl.String = pa.Field(str_matches=CONTRACT_PATTERN, description="合同号")
    installment_no: pl.Int64 = pa.Field(ge=1, description="期次")
    channel: pl.String = pa.Field(description="渠道 the instruction was sent to")
    account: pl.String = pa.Field(str_length={"min_value": 4}, description="debited account (PII)")
    amount_fen: pl.Int64 = pa.Field(gt=0, description="代扣金额, fen")
    requested_at: DateTime = pa.Field(dtype_kwargs=UTC, description="when the platform sent it (UTC)")
    platform_status: pl.String = pa.Field(
        isin=PLATFORM_STATUSES, description="what the channel's API told the platform"
    )
    platform_code: pl.String = pa.Field(nullable=True, description="the channel's code as the platform recorded it")

    class Config:
        strict = True


#: Text a record's fields may hold: no control character (TAB aside). Lengths are the columns'
#: (``flows/db.py``), so SQLite and PostgreSQL accept and refuse exactly the same records.
NO_CONTROL = r"^[^\x00-\x08\x0a-\x1f\x7f]*$"
#: No line of a channel file moves more than this (10 billion yuan): a larger amount is damage, and
#: a day's sums stay far inside Int64.
MAX_LINE_FEN = 10**12


class ChannelRecordFrame(pa.DataFrameModel):
    """One row per line of a channel file, in canonical form, with its provenance."""

    source_file: pl.String = pa.Field(description="file name as delivered")
    file_sha256: pl.String = pa.Field(str_length=64, description="SHA-256 of the file's bytes")
    line_no: pl.Int64 = pa.Field(ge=1, description="line in the file, from 1")
    channel: pl.String = pa.Field(description="channel id")
    record_kind: pl.String = pa.Field(isin=["debit", "refund"], description="debit or refund/reversal")
    status: pl.String = pa.Field(isin=["SUCCESS", "FAILED"], description="the channel's word")
    channel_txn_id: pl.String = pa.Field(
        str_length={"min_value": 1, "max_value": 64}, str_matches=NO_CONTROL, description="channel transaction id"
    )
    reference: pl.String = pa.Field(
        nullable=True, str_length={"max_value": 64}, str_matches=NO_CONTROL,
        description="our instruction id as the channel echoes it",
    )  # fmt: skip
    amount_fen: pl.Int64 = pa.Field(
        gt=0, le=MAX_LINE_FEN, description="amount, fen (refunds positive; kind says the sign)"
    )
    settled_at: DateTime = pa.Field(dtype_kwargs=UTC, description="when the channel settled it (UTC)")
    account_shown: pl.String = pa.Field(
        nullable=True, str_length={"max_value": 64}, str_matches=NO_CONTROL,
        description="account as the channel shows it, maybe masked",
    )  # fmt: skip
    memo: pl.String = pa.Field(
        nullable=True, str_length={"max_value": 500}, str_matches=NO_CONTROL,
        description="free memo; may carry a contract no",
    )  # fmt: skip
    failure_code: pl.String = pa.Field(
        nullable=True, str_length={"max_value": 32}, str_matches=NO_CONTROL, description="raw failure code"
    )
    failure_text: pl.String = pa.Field(
        nullable=True, str_length={"max_value": 200}, str_matches=NO_CONTROL, description="raw failure words"
    )
    failure_reason: pl.String = pa.Field(nullable=True, description="failure mapped to the shared list")
    refund_request_no: pl.String = pa.Field(
        nullable=True, str_length={"max_value": 64}, str_matches=NO_CONTROL, description="refund request no (refunds)"
    )

    class Config:
        strict = False


class OutcomeFrame(pa.DataFrameModel):
    """One outcome per record, per due instruction without a record, per file and missing channel."""

    subject: pl.String = pa.Field(
        isin=["record", "instruction", "file", "channel"], description="what the outcome is about"
    )
    subject_key: pl.String = pa.Field(unique=True, description="stable key of the record, instruction, file or channel")
    outcome: pl.String = pa.Field(description="outcome code")
    flags: pl.String = pa.Field(description="other rules that fired, comma-separated")
    amount_fen: pl.Int64 = pa.Field(nullable=True, description="amount received or reversed, fen")
    applied_fen: pl.Int64 = pa.Field(description="what went onto (or off) installments, fen")
    held_fen: pl.Int64 = pa.Field(ge=0, description="what was held (or released, for reversals), fen")

    class Config:
        strict = False


class LedgerFrame(pa.DataFrameModel):
    """The settlement ledger: one row per applied payment or reversal, keyed by channel transaction."""

    channel: pl.String = pa.Field(description="channel id")
    channel_txn_id: pl.String = pa.Field(description="channel transaction id (refund request no for refunds)")
    kind: pl.String = pa.Field(isin=["payment", "reversal"], description="payment or reversal")
    seq: pl.Int64 = pa.Field(ge=1, description="which installment of the ones a payment reached, from 1")
    contract_no: pl.String = pa.Field(nullable=True, description="合同号, null when held unmatched")
    installment_no: pl.Int64 = pa.Field(nullable=True, description="期次")
    amount_fen: pl.Int64 = pa.Field(ge=0, description="amount received or reversed, fen")
    penalty_fen: pl.Int64 = pa.Field(description="onto penalty (negative for a reversal)")
    fee_fen: pl.Int64 = pa.Field(description="onto fee")
    interest_fen: pl.Int64 = pa.Field(description="onto interest")
    principal_fen: pl.Int64 = pa.Field(description="onto principal")
    held_fen: pl.Int64 = pa.Field(description="held for refund or review (negative: a hold released)")
    settled_at: DateTime = pa.Field(dtype_kwargs=UTC, description="when the channel settled it")

    class Config:
        strict = False
        unique = ("channel", "channel_txn_id", "kind", "seq")


#: Polars dtypes of an instruction frame (InstructionFrame), for building empty or literal frames.
INSTRUCTION_DTYPES: dict[str, pl.DataType] = {
    "instruction_id": pl.String(),
    "contract_no": pl.String(),
    "installment_no": pl.Int64(),
    "channel": pl.String(),
    "account": pl.String(),
    "amount_fen": pl.Int64(),
    "requested_at": pl.Datetime("us", "UTC"),
    "platform_status": pl.String(),
    "platform_code": pl.String(),
}

#: Polars dtypes of earlier ledger payments that refunds may name (``MatchInput.prior_payments``).
PRIOR_PAYMENT_DTYPES: dict[str, pl.DataType] = {
    "channel": pl.String(),
    "channel_txn_id": pl.String(),
    "seq": pl.Int64(),
    "reference": pl.String(),
    "contract_no": pl.String(),
    "installment_no": pl.Int64(),
    "penalty_fen": pl.Int64(),
    "fee_fen": pl.Int64(),
    "interest_fen": pl.Int64(),
    "principal_fen": pl.Int64(),
    "held_fen": pl.Int64(),
}
