"""/mj/image/<id>[/<part>][/thumb]: the owner's pictures and videos.

An archived file is sent from the archive (no gateway call, cached for good by the browser).
Before the archive has it, the whole result streams from the gateway with no-store, as does
an unfinished task's progress preview. Thumbnails and quadrants only ever come from the
archive: the gallery and the task list never load an original.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils.html import escape
from django.utils.http import content_disposition_header
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from .. import gateway
from ..gateway import GatewayError, TaskNotFound
from ..models import ArchivedFile, TrackedTask
from ..sendfile import send_blob
from ..tasks import archive_soon
from ..thumbnails import download_name
from .common import AuthedRequest, owned_task

# An image response is a file, never a document: even a file that slipped past the checks
# can run nothing and load nothing from mjdash's origin.
FILE_CSP = "default-src 'none'; sandbox"
PLACEHOLDER = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 320" width="320" height="320">'
    '<rect width="320" height="320" fill="#e9ecef"/>'
    '<text x="160" y="170" font-family="sans-serif" font-size="30" fill="#495057" '
    'text-anchor="middle">{}</text></svg>'
)


@login_required
@owned_task
@require_GET
def image(
    request: AuthedRequest, task: TrackedTask, part: int = 0, thumb: bool = False
) -> HttpResponse:
    thumb = thumb or bool(request.GET.get("thumb"))
    kept = None
    if task.archived_at is not None:  # a row not archived has no files: no query for them
        kept = task.files.select_related("original", "thumbnail").filter(part=part).first()
    if kept is not None:
        return _archived(request, task, kept, thumb)
    if thumb:
        return _no_thumbnail(task)
    if part != ArchivedFile.WHOLE:
        raise Http404("This task has no such picture.")
    return _streamed(request, task)


def _archived(
    request: AuthedRequest, task: TrackedTask, kept: ArchivedFile, thumb: bool
) -> HttpResponse:
    blob = kept.thumbnail if thumb else kept.original
    if blob is None:  # a video whose first frame could not be read
        return _placeholder(gettext("No preview"), status=404)
    name = download_name(task.prompt, task.task_id, blob.content_type, kept.part)
    response = send_blob(request, blob, name=name, attachment=bool(request.GET.get("download")))
    response["Content-Security-Policy"] = FILE_CSP
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _no_thumbnail(task: TrackedTask) -> HttpResponse:
    """Thumbnails come from the archive only. A finished task not archived yet gets its job
    queued (if none is owed) and a picture that says so; the page asks again later."""
    if not task.is_done:
        return _placeholder(gettext("No image yet"), status=404)
    if task.archive_due_at is None and task.archive_attempts == 0:
        archive_soon([task])
    return _placeholder(
        gettext("Not archived yet") if task.archive_error else gettext("Archiving…")
    )


def _streamed(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    """The gateway's copy, streamed: before archiving, and for progress previews."""
    try:
        stream = gateway.open_image(task)
    except GatewayError as exc:
        return _unavailable(request, task, exc)
    response = StreamingHttpResponse(stream.chunks(), content_type=stream.content_type)
    if stream.content_length is not None:  # checked against the cap; a short body aborts
        response["Content-Length"] = str(stream.content_length)
    response["Content-Security-Policy"] = FILE_CSP
    response["X-Content-Type-Options"] = "nosniff"
    attachment = bool(request.GET.get("download"))
    name = download_name(task.prompt, task.task_id, stream.content_type)
    response["Content-Disposition"] = content_disposition_header(attachment, name)
    response["Cache-Control"] = "private, no-store"
    return response


def _placeholder(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(
        PLACEHOLDER.format(escape(text)),
        content_type="image/svg+xml",
        status=status,
        headers={"Content-Security-Policy": FILE_CSP, "Cache-Control": "private, no-store"},
    )


def _unavailable(request: AuthedRequest, task: TrackedTask, exc: GatewayError) -> HttpResponse:
    """An <img> gets a placeholder picture; a person gets a page that says what happened."""
    status = 502
    if isinstance(exc, TaskNotFound) or exc.permanent and exc.status in (403, 404, 410):
        status = 404
    if request.headers.get("Sec-Fetch-Dest") in ("image", "video"):
        return _placeholder(gettext("Image unavailable"), status=status)
    context = {"task": task, "message": exc.message}
    return render(request, "tracker/image_unavailable.html", context, status=status)
