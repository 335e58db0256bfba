"""Real, playable video clips for VIDEO tasks, different in bytes for every task.

media/ holds two 1.5 s 256x256 clips made once with ffmpeg (the sandbox never runs it): an
H.264 MP4, as gateways link them, and a VP9 WebM, which every Chromium build plays. Each task's
copy carries its task id where players never look: a trailing MP4 `free` box, or the payload of
the WebM's reserved Void element. Files are stored by their sha256, so two tasks must not share
one file; a player decodes both copies to the same frames.
"""

from __future__ import annotations

import functools
import hashlib
import struct
from pathlib import Path

MEDIA = Path(__file__).resolve().parent / "media"
CLIPS = {"mp4": "clip-h264.mp4", "webm": "clip-vp9.webm"}
CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm"}
# The ftyp box an MP4 starts with (the clip's own): what a file typed by its bytes shows first.
MP4_FTYP = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"

EBML_HEADER_ID = b"\x1a\x45\xdf\xa3"
SEGMENT_ID = b"\x18\x53\x80\x67"
VOID_ID = 0xEC


def video_bytes(task_id: str, index: int = 0, ext: str = "mp4") -> bytes:
    """The index-th clip of a task as `ext` ("mp4" or "webm"), marked with its task id."""
    marker = f"mjdash-sandbox video {task_id} {index}".encode()
    if ext == "mp4":
        return _clip("mp4") + struct.pack(">I", 8 + len(marker)) + b"free" + marker
    return _mark_webm(_clip("webm"), marker)


@functools.cache
def _clip(ext: str) -> bytes:
    return (MEDIA / CLIPS[ext]).read_bytes()


def _mark_webm(clip: bytes, marker: bytes) -> bytes:
    """The clip with `marker` written into the payload of the Void element ffmpeg reserves
    after the SeekHead: nothing moves, so every offset in SeekHead and Cues stays right."""
    start, size = _void_payload(clip)
    if len(marker) > size:  # a very long id: its digest still tells tasks apart
        marker = hashlib.sha256(marker).hexdigest().encode()[:size]
    return clip[:start] + marker.ljust(size, b"\x00") + clip[start + size :]


@functools.cache
def _void_payload(clip: bytes) -> tuple[int, int]:
    """Where the first Void element directly inside the Segment keeps its payload, and how
    many bytes it has."""
    if not clip.startswith(EBML_HEADER_ID):
        raise ValueError("not a WebM file")
    size, length = _vint(clip, 4)
    pos = 4 + length + size
    if clip[pos : pos + 4] != SEGMENT_ID:
        raise ValueError("no Segment after the EBML header")
    _, length = _vint(clip, pos + 4)
    pos += 4 + length
    while pos < len(clip):
        element_id, id_length = _element_id(clip, pos)
        size, length = _vint(clip, pos + id_length)
        payload = pos + id_length + length
        if element_id == VOID_ID:
            return payload, size
        pos = payload + size
    raise ValueError("the WebM clip has no Void element to carry the task id")


def _element_id(data: bytes, pos: int) -> tuple[int, int]:
    """An EBML element ID (its marker bits kept, as the spec writes IDs) and its length."""
    length = 9 - data[pos].bit_length()
    return int.from_bytes(data[pos : pos + length]), length


def _vint(data: bytes, pos: int) -> tuple[int, int]:
    """An EBML variable-length size: its value and how many bytes it takes."""
    length = 9 - data[pos].bit_length()
    value = data[pos] & ((1 << (8 - length)) - 1)
    for byte in data[pos + 1 : pos + length]:
        value = value << 8 | byte
    return value, length
