"""Ready-made HTTP bodies of one snapshot: encoded and compressed once, aged per request.

The status document is the same bytes for every caller of one variant and
view until the next snapshot, except ``age``, which grows with every request.
So the document is encoded once as the bytes before the ``age`` value and the
bytes after it, and each request only formats one number between them.

The gzip body is spliced the same way: everything before ``age`` is deflated
once and ended with a full flush (byte-aligned, no reference back into it),
and each request appends one small *stored* deflate block holding the age and
the few keys after it, then the CRC and length. A gzip answer therefore costs
a CRC over a couple of hundred bytes, not a compression of the document.
Brotli is not offered: its streams cannot be continued after a reset the way
deflate's can, so a per-request age would mean per-request compression.

The strong ``ETag`` names the document without its age (a hash of the bytes
around it, one per content coding, as HTTP requires); ``age`` is the one key
that moves under an unchanged ETag, exactly as the ``Age`` header would for a
cached copy.
"""

from __future__ import annotations

import hashlib
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["Body", "StatusDocument", "accepts_gzip", "etag_matches"]

_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # no name, no mtime, OS unknown
_AGE_KEY = "age"


@dataclass(frozen=True, slots=True)
class Body:
    content: bytes
    etag: str
    gzip: bool


def _age_text(age: float | None) -> bytes:
    # repr() of a finite float is valid JSON and round-trips exactly.
    return b"null" if age is None else repr(float(age)).encode()


class StatusDocument:
    """One snapshot in one view, ready to be sent many times."""

    __slots__ = ("_deflated_head", "_head", "_head_crc", "_tail", "age", "etag", "gzip_etag", "received_at")

    def __init__(self, data: dict[str, Any], received_at: float) -> None:
        #: The age the server stamped, and when the bridge received it (monotonic).
        age = data.get(_AGE_KEY)
        self.age: float | None = float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None
        self.received_at = received_at
        keys = list(data)
        at = keys.index(_AGE_KEY) if _AGE_KEY in data else len(keys)
        before = {k: data[k] for k in keys[:at]}
        after = {k: data[k] for k in keys[at + 1 :]}
        # '{...' without its closing brace, then ',"age":'; the tail is ',...}'.
        head = orjson.dumps(before)[:-1]
        self._head = head + (b',"age":' if before else b'"age":')
        tail = orjson.dumps(after)
        self._tail = (b"," + tail[1:]) if after else b"}"
        digest = hashlib.blake2b(self._head + b"\0" + self._tail, digest_size=12).hexdigest()
        self.etag = f'"{digest}"'
        self.gzip_etag = f'"{digest}-gz"'
        compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
        self._deflated_head = _GZIP_HEADER + compressor.compress(self._head) + compressor.flush(zlib.Z_FULL_FLUSH)
        self._head_crc = zlib.crc32(self._head)

    def current_age(self, now: float | None = None) -> float | None:
        if self.age is None:
            return None
        return self.age + max(0.0, (time.monotonic() if now is None else now) - self.received_at)

    def identity(self, now: float | None = None) -> bytes:
        return self._head + _age_text(self.current_age(now)) + self._tail

    def gzipped(self, now: float | None = None) -> bytes:
        rest = _age_text(self.current_age(now)) + self._tail
        size = len(rest)
        if size > 0xFFFF:  # the keys after age are a few hundred bytes; never expected
            raise ValueError("status tail too long for one stored block")
        crc = zlib.crc32(rest, self._head_crc)
        total = len(self._head) + size
        # Final stored block (BFINAL=1, BTYPE=00, byte-aligned), then the gzip trailer.
        return b"".join(
            (
                self._deflated_head,
                b"\x01",
                struct.pack("<HH", size, size ^ 0xFFFF),
                rest,
                struct.pack("<II", crc & 0xFFFFFFFF, total & 0xFFFFFFFF),
            )
        )

    def body(self, gzip: bool, now: float | None = None) -> Body:
        if gzip:
            return Body(self.gzipped(now), self.gzip_etag, True)
        return Body(self.identity(now), self.etag, False)

    def matches(self, if_none_match: str) -> bool:
        return etag_matches(if_none_match, (self.etag, self.gzip_etag))

    def max_age(self, refresh_interval: float | None, now: float | None = None) -> int:
        """Whole seconds until the next round is due; 0 when unknown or overdue."""
        age = self.current_age(now)
        if refresh_interval is None or age is None:
            return 0
        return max(0, int(refresh_interval - age))


def etag_matches(header: str, etags: tuple[str, ...]) -> bool:
    """If-None-Match uses the weak comparison: ``W/`` prefixes are ignored."""
    header = header.strip()
    if header == "*":
        return True
    for candidate in header.split(","):
        tag = candidate.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag in etags:
            return True
    return False


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether the client takes gzip (q=0 refuses it)."""
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        params = params.strip().replace(" ", "")
        if params.startswith("q="):
            try:
                return float(params[2:]) > 0
            except ValueError:
                return False
        return True
    return False
