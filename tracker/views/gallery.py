"""The gallery: every finished image, newest first, and ZIP downloads of them."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from .. import archive, zips
from ..filters import TaskFilter, query_string
from ..models import TrackedTask
from .common import AuthedRequest

PAGE_SIZE = 50
SCOPES = {"all", "new", "selected"}


def _finder(request: AuthedRequest, data) -> TaskFilter:
    return TaskFilter(data, _images(request), statuses=False)


def _images(request: AuthedRequest):
    return (
        TrackedTask.objects.filter(user=request.user)
        .finished_images()
        .select_related("gateway")
        .order_by("-finished_at", "-added_at", "-id")
    )


@login_required
@require_GET
def gallery(request: AuthedRequest) -> HttpResponse:
    archive.sweep()  # archive jobs a dead worker lost, at most once a minute
    finder = _finder(request, request.GET)
    page = Paginator(finder.apply(_images(request), "-finished"), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    context = {
        "page_obj": page,
        "new_count": _images(request).filter(downloaded_at=None).count(),
        "finder": finder,
        "query": query_string(request.GET),
        "filters": [(k, v) for k, vs in request.GET.lists() if k != "page" for v in vs],
    }
    return render(request, "tracker/gallery.html", context)


@login_required
@require_POST
def download_zip(request: AuthedRequest) -> HttpResponse:
    """A ZIP of the selection, of the whole gallery, or of what was never downloaded."""
    scope = request.POST.get("scope", "all")
    if scope not in SCOPES:
        raise Http404("No such download.")
    rows = _finder(request, request.POST).apply(_images(request), "-finished")  # as shown
    if scope == "new":
        rows = rows.filter(downloaded_at=None)
    elif scope == "selected":
        ids = list(dict.fromkeys(request.POST.getlist("ids")))
        if not ids:
            messages.warning(request, "Tick the images you want in the ZIP first.")
            return redirect("gallery")
        rows = rows.filter(task_id__in=ids)
        if len(ids) != rows.count():  # someone else's (or no such) task: 404
            raise Http404("No such task.")
    if not rows.exists():
        messages.info(request, "Nothing new to download: every image is in an earlier ZIP.")
        return redirect("gallery")
    quadrants = request.POST.get("quadrants") == "1"
    response = StreamingHttpResponse(
        zips.stream(rows.iterator(chunk_size=50), quadrants=quadrants),
        content_type="application/zip",
    )
    name = f"mjdash-{scope}-{timezone.localtime():%Y%m%d-%H%M%S}.zip"
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Cache-Control"] = "private, no-store"
    return response
