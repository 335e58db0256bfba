"""Sending an archived file: a strong ETag (its sha256), 304 on If-None-Match, 206 for one
byte range (so a browser can seek in a video), and the bytes streamed from the storage in
blocks, never read whole into memory. Behind nginx or Apache, the web server can send the
file instead (MJDASH_ACCEL_REDIRECT / MJDASH_SENDFILE)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from .archive import storage
from .models import Blob

BLOCK = 256 * 1024
IMMUTABLE = "private, max-age=31536000, immutable"
RANGE = re.compile(r"bytes=([0-9]{0,18})-([0-9]{0,18})")  # ASCII digits, no huge numbers


def send_blob(request: HttpRequest, blob: Blob, *, name: str, attachment: bool) -> HttpResponse:
    etag = f'"{blob.sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": IMMUTABLE,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition_header(attachment, name),
    }
    if etag in _etags(request.headers.get("If-None-Match", "")):
        return HttpResponse(status=304, headers={k: headers[k] for k in ("ETag", "Cache-Control")})
    byte_range = _range(request, etag, blob.size)
    if byte_range == "unsatisfiable":
        return HttpResponse(status=416, headers={"Content-Range": f"bytes */{blob.size}"})
    if byte_range is None and settings.MJDASH_ACCEL_REDIRECT:
        return _by_web_server(blob, headers, "X-Accel-Redirect", settings.MJDASH_ACCEL_REDIRECT)
    if byte_range is None and settings.MJDASH_SENDFILE:
        return _by_web_server(blob, headers, "X-Sendfile", "")
    source = storage().open(blob.name, "rb")
    if byte_range is None:
        response = FileResponse(
            source,
            as_attachment=attachment,
            filename=name,
            content_type=blob.content_type,
            headers=headers,
        )
        response.block_size = BLOCK
        response["Content-Length"] = str(blob.size)
        return response
    start, end = byte_range
    response = StreamingHttpResponse(
        _slice(source, start, end), status=206, content_type=blob.content_type, headers=headers
    )
    response["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
    response["Content-Length"] = str(end - start + 1)
    return response


def _etags(value: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in value.split(",")} if value else set()


def _range(request: HttpRequest, etag: str, size: int):
    """(first, last) byte for one satisfiable range; None for the whole file (no Range, an
    If-Range for another version, several ranges); "unsatisfiable" past the end."""
    value = request.headers.get("Range", "")
    if_range = request.headers.get("If-Range", "")
    match = RANGE.fullmatch(value.strip())
    if not match or (if_range and if_range != etag) or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if first == "":  # the last N bytes
        start, end = max(0, size - int(last)), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start >= size or start > end:
        return "unsatisfiable"
    return start, end


def _slice(source, start: int, end: int) -> Iterator[bytes]:
    try:
        source.seek(start)
        left = end - start + 1
        while left > 0:
            block = source.read(min(BLOCK, left))
            if not block:
                return
            left -= len(block)
            yield block
    finally:
        source.close()


def _by_web_server(blob: Blob, headers: dict, header: str, prefix: str) -> HttpResponse:
    """An empty answer that tells nginx (X-Accel-Redirect) or Apache (X-Sendfile) which file
    to send; they answer Range requests themselves."""
    target = prefix.rstrip("/") + "/" + blob.name if prefix else storage().path(blob.name)
    response = HttpResponse(content_type=blob.content_type, headers=headers)
    response[header] = target
    return response
