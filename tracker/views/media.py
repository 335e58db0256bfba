"""/mj/image/<id>: the owner's image, streamed from the configured gateway only."""

from __future__ import annotations

import hashlib

from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import gateway
from ..gateway import GatewayError, TaskNotFound
from ..models import TrackedTask
from ..thumbnails import download_name, thumbnail
from .common import AuthedRequest, owned_task

THUMB_MAX_SOURCE = 40 * 1024 * 1024
UNAVAILABLE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 320" width="320" height="320">'
    '<rect width="320" height="320" fill="#e9ecef"/>'
    '<text x="160" y="165" font-family="sans-serif" font-size="18" fill="#6c757d" '
    'text-anchor="middle">Image unavailable</text></svg>'
)


# An image response is a file, never a document: even a file that slipped past the checks
# can run nothing and load nothing from mjdash's origin.
FILE_CSP = "default-src 'none'; sandbox"


@login_required
@owned_task
@require_GET
def image(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    if request.GET.get("thumb"):
        return _thumbnail(request, task)
    try:
        stream = gateway.open_image(task)
    except GatewayError as exc:
        return _unavailable(request, task, exc)
    response = StreamingHttpResponse(stream.chunks(), content_type=stream.content_type)
    if stream.content_length is not None:  # checked against the cap; a short body aborts
        response["Content-Length"] = str(stream.content_length)
    response["Content-Security-Policy"] = FILE_CSP
    attachment = bool(request.GET.get("download"))
    name = download_name(task.prompt, task.task_id, stream.content_type)
    response["Content-Disposition"] = content_disposition_header(attachment, name)
    response["Cache-Control"] = "private, max-age=86400" if task.is_done else "private, no-store"
    return response


def _thumbnail(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    """A small WebP of a finished image, made once and kept in the cache."""
    if not task.is_done:
        return _unavailable(request, task, GatewayError("Not finished yet."), status=404)
    key = "thumb:" + hashlib.sha256(f"{task.gateway_id}:{task.task_id}".encode()).hexdigest()
    etag = f'"{key[6:22]}"'
    if request.headers.get("If-None-Match") == etag:
        return HttpResponse(status=304, headers={"ETag": etag})
    data = cache.get(key)
    if data is None:
        try:
            data = thumbnail(gateway.open_image(task, THUMB_MAX_SOURCE).read())
        except (GatewayError, ValueError) as exc:
            error = exc if isinstance(exc, GatewayError) else GatewayError(str(exc))
            return _unavailable(request, task, error)
        cache.set(key, data, timeout=7 * 86400)
    return HttpResponse(
        data,
        content_type="image/webp",
        headers={
            "ETag": etag,
            "Cache-Control": "private, max-age=604800",
            "Content-Security-Policy": FILE_CSP,
        },
    )


def _unavailable(
    request: AuthedRequest, task: TrackedTask, exc: GatewayError, status: int = 502
) -> HttpResponse:
    """An <img> gets a placeholder picture; a person gets a page that says what happened."""
    if isinstance(exc, TaskNotFound) or exc.permanent and exc.status in (403, 404, 410):
        status = 404
    if request.GET.get("thumb") or request.headers.get("Sec-Fetch-Dest") == "image":
        return HttpResponse(
            UNAVAILABLE_SVG,
            content_type="image/svg+xml",
            status=status,
            headers={"Content-Security-Policy": FILE_CSP},
        )
    context = {"task": task, "message": exc.message}
    return render(request, "tracker/image_unavailable.html", context, status=status)
