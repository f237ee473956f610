"""Decoding: a file's bytes, strictly, to UTF-8 (GB18030 through :mod:`reconcile.gb18030`, a BOM taken
off), or the reason they cannot be; :class:`FileRejected` abandons a file inside the reader.
"""

from __future__ import annotations

import re

from reconcile.gb18030 import gb18030_to_marked_utf8, gb18030_to_utf8

#: A UTF-8 byte-order mark: the file is UTF-8, whatever its layout says.
BOM = b"\xef\xbb\xbf"


class FileRejected(Exception):
    """Raised inside the reader to abandon a file; it never leaves this module."""


_NOT_SPACE = re.compile(rb"\S")


def to_utf8(data: bytes, encoding: str, mark: str | None = None) -> tuple[bytes, bool]:
    """The file's bytes as UTF-8: BOM stripped; a NUL byte means binary; other encodings decoded
    strictly and re-encoded. With ``mark``, a GB18030 text gets it after every two-byte character
    (so characters count bytes, as fixed-width layouts do); the second value says whether it did
    (not for an ASCII text, one holding the mark itself, or anything the C loop hands back).

    UTF-8 and pure-ASCII files are not copied: polars' reader checks UTF-8 as it reads the lines
    (:func:`split_lines`), which is where a file that is not UTF-8 after all is rejected.
    """
    if _NOT_SPACE.search(data) is None:
        raise FileRejected("the file is empty")
    if b"\x00" in data[:4096]:
        raise FileRejected("the file is binary, not text (it contains NUL bytes)")
    if data.startswith(BOM):
        data, encoding = data[3:], "utf-8"
    codec = codec_name(encoding)
    if codec == "utf8" or data.isascii():
        return data, False
    try:
        if codec == "gb18030":
            marked = gb18030_to_marked_utf8(data, mark) if mark and mark.encode() not in data else None
            return (marked, True) if marked is not None else (gb18030_to_utf8(data), False)
        return data.decode(encoding).encode("utf-8"), False
    except UnicodeDecodeError as error:
        raise undecodable(data, encoding, error) from None


def codec_name(encoding: str) -> str:
    """An encoding's name compared: ``GB-18030`` and ``gb18030``, ``UTF_8`` and ``utf8`` alike."""
    return encoding.lower().replace("-", "").replace("_", "")


def undecodable(data: bytes, encoding: str, error: UnicodeDecodeError) -> FileRejected:
    line = data.count(b"\n", 0, error.start) + 1
    return FileRejected(
        f"the file cannot be decoded as {encoding} at byte {error.start} (line {line}): is it the right encoding?"
    )
