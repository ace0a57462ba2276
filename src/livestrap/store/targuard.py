"""A reader between the decompressor and tarfile: it counts and checks the raw tar stream.

It follows the tar headers itself, so it can refuse before tarfile parses them: extended
headers (pax `x`/`g`, GNU `L`/`K`) over MAX_EXT_HEADER bytes or chained (CPython before
3.11.10/3.12.6 takes quadratic time on crafted pax headers, CVE-2024-6232), headers whose
checksum is wrong, and any byte past `limit` (a decompression bomb stops at the first
byte over, whatever the members claim). Pax records are split by length, never by regex.
"""

from __future__ import annotations

import functools
import logging
import sys
from typing import IO

from livestrap.errors import ArchiveError

BLOCK = 512
MAX_EXT_HEADER = 8 << 10  # ours are a few dozen bytes; 8 KiB parse in well under 50 ms
MAX_EXT_CHAIN = 2  # e.g. GNU long name then pax; more only serves to cost time
EXTENDED = {b"x": "pax", b"g": "pax global", b"L": "GNU long name", b"K": "GNU long link"}
# first releases of each line whose tarfile has the CVE-2024-6232 fix
FIXED_TARFILE = {(3, 8): 20, (3, 9): 20, (3, 10): 15, (3, 11): 10, (3, 12): 6}

log = logging.getLogger(__name__)


def tarfile_has_header_redos(version: tuple[int, ...] = tuple(sys.version_info[:3])) -> bool:
    """Whether this interpreter's tarfile has the pax header ReDoS (CVE-2024-6232)."""
    major_minor, micro = (version[0], version[1]), version[2]
    if major_minor in FIXED_TARFILE:
        return micro < FIXED_TARFILE[major_minor]
    return major_minor < (3, 8)


@functools.cache
def warn_if_vulnerable() -> None:
    """Say once per process that the guard is all that stands before tarfile here."""
    if tarfile_has_header_redos():  # info: the guard covers it; a CLI need not print it
        log.info(
            "Python %s has CVE-2024-6232 in tarfile; bundle import refuses extended tar "
            "headers over %d bytes before tarfile sees them",
            sys.version.split()[0],
            MAX_EXT_HEADER,
        )


def _number(field: bytes, offset: int) -> int:
    """A tar numeric field: octal, or GNU base-256 (high bit of the first byte set)."""
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text or not all(48 <= c <= 55 for c in text):
        raise ArchiveError(f"cannot read bundle: bad tar header at byte {offset}: {field!r}")
    return int(text, 8)


def pax_size(data: bytes, offset: int) -> int | None:
    """The `size` record of a pax header, if any (records are `LEN key=value\\n`)."""
    size, pos = None, 0
    while pos < len(data):
        space = data.find(b" ", pos, pos + 20)
        if space < 0 or not data[pos:space].isdigit():
            raise ArchiveError(f"cannot read bundle: bad pax header at byte {offset}")
        end = pos + int(data[pos:space])
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if end <= space or end > len(data) or data[end - 1 : end] != b"\n" or not eq:
            raise ArchiveError(f"cannot read bundle: bad pax header at byte {offset}")
        if key == b"size":
            if not value.isdigit():
                raise ArchiveError(f"cannot read bundle: bad pax size at byte {offset}")
            size = int(value)
        pos = end
    return size


class TarGuard:
    """File-like reader over a tar stream (only read() is used by tarfile's stream mode)."""

    def __init__(self, raw: IO[bytes], limit: int) -> None:
        self._raw = raw
        self.limit = limit  # may be lowered once the metadata tells the image's size
        self.total = 0
        self._next = 0  # stream offset of the next header
        self._header = b""  # the header being collected (reads do not align with blocks)
        self._ext = b""  # data of the extended header being collected
        self._ext_len = 0
        self._ext_left = 0
        self._ext_type = b""
        self._chain = 0
        self._pax_size: int | None = None
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        start = self.total
        self.total += len(data)
        if self.total > self.limit:
            raise ArchiveError(
                f"bundle decompresses to more than {self.limit} bytes (its image size and "
                "the import limit allow no more)"
            )
        self._scan(data, start)
        return data

    def _scan(self, data: bytes, start: int) -> None:
        pos = 0
        while pos < len(data) and not self._ended:
            here = start + pos
            if self._ext_left:
                take = data[pos : pos + self._ext_left]
                self._ext += take
                self._ext_left -= len(take)
                pos += len(take)
                if not self._ext_left and self._ext_type in (b"x", b"g"):
                    found = pax_size(self._ext[: self._ext_len], here)
                    if self._ext_type == b"x":
                        self._pax_size = found
                continue
            if here < self._next:
                pos += min(len(data) - pos, self._next - here)
                continue
            need = BLOCK - len(self._header)
            self._header += data[pos : pos + need]
            pos += min(need, len(data) - pos)
            if len(self._header) == BLOCK:
                self._on_header(self._header, start + pos - BLOCK)
                self._header = b""

    def _on_header(self, hdr: bytes, offset: int) -> None:
        if hdr == bytes(BLOCK):
            self._ended = True  # tarfile stops at the first zero block too
            return
        stored = _number(hdr[148:156], offset)
        if stored != sum(hdr[:148]) + 8 * 32 + sum(hdr[156:]):
            raise ArchiveError(f"cannot read bundle: bad tar header checksum at byte {offset}")
        kind = hdr[156:157]
        size = _number(hdr[124:136], offset)
        if kind in EXTENDED:
            self._chain += 1
            if size > MAX_EXT_HEADER or size < 0:
                raise ArchiveError(
                    f"refusing bundle: {EXTENDED[kind]} header of {size} bytes at byte {offset} "
                    f"(at most {MAX_EXT_HEADER})"
                )
            if self._chain > MAX_EXT_CHAIN:
                raise ArchiveError(f"refusing bundle: chained extended headers at byte {offset}")
            self._ext, self._ext_len, self._ext_type = b"", size, kind
            self._ext_left = -(-size // BLOCK) * BLOCK
            self._next = offset + BLOCK + self._ext_left
            return
        if self._pax_size is not None:
            size = self._pax_size
        self._chain, self._pax_size = 0, None
        has_data = kind not in (b"1", b"2", b"3", b"4", b"5", b"6")
        self._next = offset + BLOCK + (-(-size // BLOCK) * BLOCK if has_data else 0)
