"""GB18030 bytes → UTF-8 bytes: strict always, fast for what channel files hold.

CPython's ``gb18030`` codec is the reference: it decides what is valid and names the byte where a
file stops being GB18030. It is also slow for a 100 MB bill (it decodes byte by byte into a string
that must then be encoded again). Channel files are ASCII with one- and two-byte Chinese
characters, so a small C loop (``reconcile/_gb18030.c``) translates those through a table of every
two-byte pair built *from the codec* — it holds no character data of its own — and hands anything
else (a four-byte sequence, a byte the table lacks) back to the codec. Where the C part was not
built (no compiler at install), the codec does all the work; the result is the same either way,
which ``tests/test_gb18030.py`` checks over every two-byte pair and random text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from itertools import chain

_transcode: Callable[[bytes, bytes, int], bytes | None] | None
try:
    from reconcile._gb18030 import transcode as _transcode
except ImportError:  # pragma: no cover - built without a C compiler
    _transcode = None


def accelerated() -> bool:
    """Whether the C part is built (otherwise the codec does all the work)."""
    return _transcode is not None


@functools.cache
def pair_table() -> bytes:
    """Every lead/trail byte pair the codec decodes to one character: its UTF-8 bytes and count."""
    table = bytearray(65536 * 4)
    trails = list(chain(range(0x40, 0x7F), range(0x80, 0xFF)))
    for lead in range(0x81, 0xFF):
        row = bytes(byte for trail in trails for byte in (lead, trail))
        try:  # a lead's whole row at once: one character per pair when every pair is valid
            texts = list(row.decode("gb18030"))
        except UnicodeDecodeError:
            texts = []
        if len(texts) != len(trails):
            texts = [_one_pair(lead, trail) for trail in trails]
        for trail, text in zip(trails, texts, strict=True):
            utf8 = text.encode("utf-8")
            if len(text) == 1 and len(utf8) <= 3:
                at = (lead << 8 | trail) * 4
                table[at : at + len(utf8)] = utf8
                table[at + 3] = len(utf8)
    return bytes(table)


def _one_pair(lead: int, trail: int) -> str:
    try:
        return bytes((lead, trail)).decode("gb18030")
    except UnicodeDecodeError:
        return ""


def gb18030_to_utf8(data: bytes) -> bytes:
    """``data.decode("gb18030").encode("utf-8")``, raising ``UnicodeDecodeError`` as that does."""
    if _transcode is not None:
        fast = _transcode(data, pair_table(), 0)
        if fast is not None:
            return fast
    return data.decode("gb18030").encode("utf-8")


def gb18030_to_marked_utf8(data: bytes, mark: str) -> bytes | None:
    """UTF-8 with ``mark`` after every two-byte character, so a character count of the result is
    a GB18030 byte count (fixed-width layouts); None when the C part is not built or the file
    holds anything but ASCII and two-byte characters (the caller then marks the decoded text)."""
    if _transcode is None:
        return None
    return _transcode(data, pair_table(), ord(mark))
