"""An image or video streamed from a gateway: typed by its bytes, capped, on one deadline."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx

from . import errors
from .errors import UpstreamError, _transport_error
from .guard import deadline

# What a file is, from its first bytes: the gateway's Content-Type is never trusted, so SVG
# and HTML labelled as images are refused, whatever the header says.
MAGIC = [
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after RIFF....
    (b"ftyp", 4, "video/mp4"),
    (b"\x1a\x45\xdf\xa3", 0, "video/webm"),
]
SNIFF_BYTES = 16
OUT_CHUNK = 128 * 1024


def sniff(head: bytes) -> str:
    """The media type that the bytes themselves show, or "" when they are no picture or
    video mjdash serves."""
    for magic, offset, kind in MAGIC:
        if head[offset : offset + len(magic)] == magic:
            if kind == "image/webp" and not head.startswith(b"RIFF"):
                continue
            return kind
    return ""


class ImageStream:
    """An open upstream image: its type (from its magic bytes) and checked length, and its
    bytes as a sync iterator held to one overall deadline and a size cap. A stream that runs
    over either, or ends short of the length it promised, raises mid-way, so the response
    is aborted and the client sees a failure, never a truncated "success"."""

    def __init__(self, response: httpx.Response, deadline: float, max_bytes: int):
        self._response = response
        self._deadline = deadline
        self._max_bytes = max_bytes
        self.content_length = _declared_length(response, max_bytes)  # refuses any encoding
        self._reads = response.iter_bytes()  # so these are the raw reads, checked each time
        self._head = self._read_head()
        self.content_type = sniff(self._head)
        if not self.content_type:
            self.close()
            declared = response.headers.get("content-type", "").split(";")[0].strip()
            raise UpstreamError(errors.NOT_MEDIA.english(declared), status=200)

    def _read_head(self) -> bytes:
        head = b""
        try:
            while len(head) < SNIFF_BYTES:
                head += self._next_read()
        except StopIteration:
            pass
        return head

    def _next_read(self) -> bytes:
        try:
            with deadline(self._deadline):  # no single read outlasts the whole deadline
                chunk = next(self._reads)
        except httpx.HTTPError as exc:
            self.close()
            if time.monotonic() >= self._deadline:
                raise UpstreamError(errors.IMAGE_SLOW.english()) from exc
            raise _transport_error(exc) from exc
        if time.monotonic() > self._deadline:
            self.close()
            raise UpstreamError(errors.IMAGE_SLOW.english())
        return chunk

    def _pieces(self) -> Iterator[bytes]:
        yield self._head
        while True:
            try:
                yield self._next_read()
            except StopIteration:
                return

    def chunks(self) -> Iterator[bytes]:
        """The bytes in blocks of about OUT_CHUNK (network reads are often a few KB: joining
        them into one buffer, not re-concatenating, keeps the relay near the wire's speed)."""
        total, buffer = 0, bytearray()
        try:
            for piece in self._pieces():
                total += len(piece)
                if total > self._max_bytes:
                    raise UpstreamError(errors.IMAGE_TOO_LARGE.english())
                buffer += piece
                if len(buffer) >= OUT_CHUNK:
                    yield bytes(buffer)
                    buffer.clear()
            if self.content_length is not None and total != self.content_length:
                raise UpstreamError(errors.IMAGE_CUT_SHORT.english())
            if buffer:
                yield bytes(buffer)
        finally:
            self.close()

    def read(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        self._response.close()


def _declared_length(response: httpx.Response, max_bytes: int) -> int | None:
    """The Content-Length, checked: over the cap is refused before the first byte. A
    compressed picture is refused outright: mjdash asked for none, and a few KB of gzip can
    hold gigabytes."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        response.close()
        raise UpstreamError(errors.IMAGE_COMPRESSED.english(), permanent=True)
    value = response.headers.get("content-length", "")
    if not value.isascii() or not value.isdigit():
        return None
    if int(value) > max_bytes:
        response.close()
        raise UpstreamError(errors.IMAGE_TOO_LARGE.english(), permanent=True)
    return int(value)
