"""What arrived: a file as it is, or the members of a zip (Alipay delivers its bills zipped).

Members are picked by content, not by position or name: each is recognised by a layout or
ignored (summaries, read-me files). A zip is refused whole when a member's name tries to leave its
folder, when two members hold the same kind of detail, when it is damaged, or when no member is a
bill this product reads. Nothing is extracted to disk: members are read in memory.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from reconcile.ingest import identify_layout

ZIP_MAGIC = b"PK\x03\x04"
MAX_MEMBER_BYTES = 2 << 30
MAX_RATIO = 200  # a member that inflates more than this is treated as a zip bomb


class DeliveryRejected(ValueError):
    """The delivery cannot be read; the message says why, for the operator."""


@dataclass(frozen=True)
class Piece:
    """One readable file: ``name`` is the delivered name, or ``zip name!member`` for a member."""

    name: str
    data: bytes


def _member_name(info: zipfile.ZipInfo) -> str:
    """Member names without the UTF-8 flag are GBK bytes that zipfile decoded as cp437."""
    if info.flag_bits & 0x800:
        return info.filename
    try:
        return info.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return info.filename


def unpack(name: str, data: bytes, layouts: dict[str, dict[str, Any]]) -> list[Piece]:
    """The readable pieces of a delivery; raises :class:`DeliveryRejected` for a bad zip."""
    if not data.startswith(ZIP_MAGIC):
        return [Piece(name, data)]
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = [info for info in archive.infolist() if not info.is_dir()]
    except zipfile.BadZipFile as error:
        raise DeliveryRejected(f"the zip is damaged: {error}") from None
    pieces: list[Piece] = []
    seen: dict[str, str] = {}
    for info in infos:
        member = _member_name(info)
        parts = PurePosixPath(member.replace("\\", "/")).parts
        if member.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
            raise DeliveryRejected(f"member {member!r} tries to leave its folder; the zip is refused whole")
        if info.file_size > MAX_MEMBER_BYTES or info.file_size > MAX_RATIO * max(info.compress_size, 1):
            raise DeliveryRejected(f"member {member!r} would inflate to {info.file_size} bytes; refused as unsafe")
        try:
            body = archive.read(info)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError) as error:
            raise DeliveryRejected(f"member {member!r} cannot be read: {error}") from None
        layout = identify_layout(body, layouts)
        if layout is None:
            continue
        if layout in seen:
            raise DeliveryRejected(
                f"two members hold the same kind of detail ({seen[layout]!r} and {member!r}); which one is "
                "right cannot be decided, the zip is refused whole"
            )
        seen[layout] = member
        pieces.append(Piece(f"{name}!{parts[-1] if parts else member}", body))
    if not pieces:
        raise DeliveryRejected("no member of the zip is a bill this product reads")
    return pieces
