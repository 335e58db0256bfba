"""Export: the list as the dashboard's filters show it, as a CSV or JSON download."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from .. import export
from ..filters import TaskFilter
from ..models import TrackedTask
from .common import AuthedRequest


@login_required
@require_GET
def export_csv(request: AuthedRequest) -> HttpResponse:
    return _download(request, export.csv_stream, "text/csv; charset=utf-8", "csv")


@login_required
@require_GET
def export_json(request: AuthedRequest) -> HttpResponse:
    return _download(request, export.json_stream, "application/json", "json")


def _download(
    request: AuthedRequest, stream: Callable[..., Iterator[str]], content_type: str, ext: str
) -> HttpResponse:
    """The user's own rows through the same filters as the dashboard, streamed as made."""
    mine = TrackedTask.objects.filter(user=request.user)
    rows = TaskFilter(request.GET, mine).apply(mine)
    response = StreamingHttpResponse(stream(rows), content_type=content_type)
    name = f"mjdash-tasks-{timezone.localtime():%Y%m%d-%H%M%S}.{ext}"
    response["Content-Disposition"] = content_disposition_header(True, name)
    response["Cache-Control"] = "private, no-store"
    return response
