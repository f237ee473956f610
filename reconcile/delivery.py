"""What arrived: a file as it is, or the members of a zip (Alipay delivers its bills zipped).

Members are picked by content, not by position or name: each is recognised by a layout or
ignored (summaries, read-me files). A zip is refused whole when a member's name tries to leave its
folder, when a member inflates past the bound (a zip bomb, or a bill larger than any channel
sends), when two members hold the same kind of detail, when it is damaged, or when no member is a
bill this product reads. Nothing is extracted to disk: members are read as streams, a member is
recognised from its first 64 KiB (one of no interest is never inflated whole), and a recognised
one is inflated in pieces, counted as they come, never trusting the sizes the zip claims.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from reconcile.ingest import identify_layout
from reconcile.layouts import LayoutSpec

ZIP_MAGIC = b"PK\x03\x04"
#: The most a member may inflate to, unless configured (``RECON_MAX_MEMBER_MB``): a day's bill of a
#: large merchant is some hundreds of MB.
MAX_MEMBER_BYTES = 512 << 20
MAX_RATIO = 200  # text compresses 5–20:1; a member that inflates more than this is treated as a bomb
HEAD_BYTES = 64 << 10  # what recognising a member looks at
CHUNK_BYTES = 4 << 20


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


def unpack(
    name: str, data: bytes, layouts: dict[str, LayoutSpec], max_member_bytes: int = MAX_MEMBER_BYTES
) -> list[Piece]:
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
        bound = min(max_member_bytes, MAX_RATIO * max(info.compress_size, 1))
        try:
            with archive.open(info) as stream:
                head = stream.read(HEAD_BYTES)
                layout = identify_layout(head, layouts)
                if layout is None:  # of no interest: never inflated further, whatever its size
                    continue
                if info.file_size > bound:
                    raise DeliveryRejected(_too_large(member, info.file_size, info, max_member_bytes))
                body = _inflate(stream, head, bound, member, info, max_member_bytes)
        except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as error:
            raise DeliveryRejected(f"member {member!r} cannot be read: {error}") from None
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


def _inflate(stream: Any, head: bytes, bound: int, member: str, info: zipfile.ZipInfo, limit: int) -> bytes:
    """The rest of a member, piece by piece, refused as soon as it passes ``bound``."""
    body = bytearray(head)
    while chunk := stream.read(CHUNK_BYTES):
        body += chunk
        if len(body) > bound:
            raise DeliveryRejected(_too_large(member, len(body), info, limit, at_least=True))
    return bytes(body)


def _too_large(member: str, size: int, info: zipfile.ZipInfo, limit: int, at_least: bool = False) -> str:
    ratio = size / max(info.compress_size, 1)
    return (
        f"member {member!r} inflates to {'more than ' if at_least else ''}{size:,} bytes from {info.compress_size:,} "
        f"({ratio:,.0f}:1); refused as unsafe: a member may inflate to at most {limit / (1 << 20):g} MB "
        f"and {MAX_RATIO}:1"
    )
