"""pandera (polars) contracts for every frame that crosses a module boundary."""

from schemas.frames import (
    ChannelRecordFrame,
    InstallmentFrame,
    InstructionFrame,
    LedgerFrame,
    LoanFrame,
    OutcomeFrame,
)

__all__ = [
    "ChannelRecordFrame",
    "InstallmentFrame",
    "InstructionFrame",
    "LedgerFrame",
    "LoanFrame",
    "OutcomeFrame",
]
