"""The gallery: every finished image, newest first; the lightbox that steps through them
across pages; bulk actions on a selection; and ZIP downloads of them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.paginator import Paginator
from django.db.models import Count, Max, Prefetch, Q, QuerySet, Sum
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header, url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from .. import archive, tagging, zips
from ..filters import SORTS, TaskFilter, query_string
from ..models import ArchivedFile, TrackedTask
from .common import AuthedRequest, owned_task
from .tasks import detail_context

PAGE_SIZE = 50
SCOPES = {"all", "new", "selected"}
DEFAULT_SORT = "-finished"
# A grid's four images as four tiles ("split") or as the one grid: remembered per browser.
LAYOUT_COOKIE = "mjdash_quadrants"
LAYOUT_MAX_AGE = 365 * 24 * 3600
SAMPLE = 8  # the images an untrack confirmation names
CONFIRM_SALT = "mjdash.gallery.untrack"


def _finder(request: AuthedRequest, data) -> TaskFilter:
    # The action menu lists the actions of the user's done tasks: an index answers that at
    # any size, where "done with a picture" would read every row.
    done = TrackedTask.objects.filter(user=request.user).done()
    return TaskFilter(data, done, statuses=False)


def _images(request: AuthedRequest):
    return (
        TrackedTask.objects.filter(user=request.user)
        .finished_images()
        .select_related("gateway")
        .order_by("-finished_at", "-added_at", "-id")
    )


def _split(request: AuthedRequest) -> bool:
    return request.COOKIES.get(LAYOUT_COOKIE) == "split"


@login_required
@require_GET
def gallery(request: AuthedRequest) -> HttpResponse:
    archive.sweep()  # archive jobs a dead worker lost, at most once a minute
    finder = _finder(request, request.GET)
    quadrants = ArchivedFile.objects.filter(part__in=ArchivedFile.QUADRANTS).only("task", "part")
    rows = finder.apply(_images(request), DEFAULT_SORT).prefetch_related(
        Prefetch("files", queryset=quadrants, to_attr="quadrant_files")
    )
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page_obj": page,
        "new_count": _images(request).filter(downloaded_at=None).count(),
        "finder": finder,
        "split": _split(request),
        "query": query_string(request.GET),
        # The filters the ZIP and bulk forms carry: the filter's own fields, nothing else a
        # link could slip into the form (an "all" or a "confirm" of its own).
        "filters": [(k, v) for k in finder.fields for v in request.GET.getlist(k)],
    }
    return render(request, "tracker/gallery.html", context)


@login_required
@require_POST
def gallery_layout(request: AuthedRequest) -> HttpResponse:
    """Show a grid's four images as four tiles, or the grid as one tile."""
    split = request.POST.get("quadrants") == "split"
    response = redirect(_back(request))
    response.set_cookie(
        LAYOUT_COOKIE, "split" if split else "grid", max_age=LAYOUT_MAX_AGE, samesite="Lax"
    )
    return response


# The lightbox ----------------------------------------------------------------------------


@login_required
@owned_task
@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")  # one URL: the dialog's partial, or a page of its own
def lightbox(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    """One image, large, with its neighbours in the filtered gallery's order, across pages.
    A POST sets its favourite mark (the star, or the F key)."""
    if request.method == "POST":
        task.favourite = request.POST.get("favourite") == "1"
        task.save(update_fields=["favourite"])
        if not request.htmx:
            return redirect(request.get_full_path())
    finder = _finder(request, request.GET)
    rows = finder.apply(_images(request), DEFAULT_SORT)
    order = _order(finder)
    context = detail_context(task)
    parts = [f.part for f in context["quadrants"]]
    part = _number(request.GET.get("part"))
    here = Place(task, part if part in parts else None, parts)
    split = _split(request)
    kept = request.GET.copy()
    kept.pop("part", None)
    query = query_string(kept)
    steps = {
        name: _step(rows, order, here, forward=name == "next", split=split)
        for name in ("prev", "next")
    }
    context |= {
        "part": here.part,
        "here": request.get_full_path(),
        "gallery_url": reverse("gallery") + (f"?{query}" if query else ""),
        "views": {part: _view_url(task.task_id, part, query) for part in [None, *parts]},
        **{name: step and _view_url(*step, query) for name, step in steps.items()},
        "position": rows.filter(_beyond(order, task, after=False)).count() + 1,
        "total": rows.count(),
    }
    template = "tracker/_lightbox.html" if request.htmx else "tracker/gallery_image.html"
    return render(request, template, context)


@dataclass
class Place:
    """Where the lightbox is: a task, which of its grid's four images (None: the whole), and
    which of them the task has."""

    task: TrackedTask
    part: int | None
    parts: list[int]


def _view_url(task_id: str, part: int | None, query: str) -> str:
    """The lightbox's address for one image, with the gallery's filters."""
    extra = "&".join(x for x in (query, f"part={part}" if part else "") if x)
    return reverse("lightbox", args=[task_id]) + (f"?{extra}" if extra else "")


def _number(text: str | None) -> int | None:
    """A grid's part, 1 to 4 (anything else, a "²" or a 5,000-digit number, is none)."""
    return int(text) if text and re.fullmatch(r"[1-4]", text) else None


def _order(finder: TaskFilter) -> tuple[str, bool]:
    """The gallery's sort as (field, newest first?); ties go by id, highest first."""
    name = SORTS[finder.values()["sort"] or DEFAULT_SORT][1][0]
    return name.lstrip("-"), name.startswith("-")


def _beyond(order: tuple[str, bool], task: TrackedTask, *, after: bool) -> Q:
    """The rows that come after (or before) `task` in `order`, nulls last: a keyset, so a
    neighbour is one small query however many rows match, never a walk through the pages,
    and `task` itself need not match the filters (a hidden one opened from its link)."""
    field, descending = order
    value = getattr(task, field)
    further = "lt" if descending == after else "gt"
    id_further = "lt" if after else "gt"
    if value is None:  # among the nulls at the end: only the id decides
        nulls = Q(**{f"{field}__isnull": True, f"id__{id_further}": task.pk})
        return nulls if after else nulls | Q(**{f"{field}__isnull": False})
    found = Q(**{f"{field}__{further}": value}) | Q(**{field: value, f"id__{id_further}": task.pk})
    return found | Q(**{f"{field}__isnull": True}) if after else found


def _step(rows, order, here: Place, *, forward: bool, split: bool) -> tuple | None:
    """Where → (or ←) goes: the grid's next image, else the neighbouring task, on its first
    (or last) image when grids show as four tiles. None at either end of the filtered set."""
    if here.part is not None:
        sibling = here.part + (1 if forward else -1)
        if sibling in here.parts:
            return here.task.task_id, sibling
    found = rows.filter(_beyond(order, here.task, after=forward)).values_list("pk", "task_id")
    neighbour = found.first() if forward else found.last()
    if neighbour is None:
        return None
    pk, task_id = neighbour
    if not split:
        return task_id, None
    parts = ArchivedFile.objects.filter(task_id=pk, part__in=ArchivedFile.QUADRANTS)
    return task_id, parts.order_by("part" if forward else "-part").values_list(
        "part", flat=True
    ).first()


# Bulk actions on a selection -------------------------------------------------------------


def _selection(request: AuthedRequest) -> QuerySet:
    """The rows a bulk form names: every image matching its filters when `all` is 1, else its
    ticked IDs, each of which must be the user's own (one that is not: 404, nothing done)."""
    if request.POST.get("all") == "1":
        return _finder(request, request.POST).apply(_images(request), DEFAULT_SORT)
    ids = list(dict.fromkeys(request.POST.getlist("ids")))
    rows = TrackedTask.objects.filter(user=request.user, task_id__in=ids)
    if len(ids) != rows.count():
        raise Http404("No such task.")
    return rows


SAID = {  # what each bulk button says it did
    "favourite": ngettext_lazy(
        "%(count)d image added to favourites.", "%(count)d images added to favourites.", "count"
    ),
    "unfavourite": ngettext_lazy(
        "%(count)d image removed from favourites.",
        "%(count)d images removed from favourites.",
        "count",
    ),
    "hide": ngettext_lazy("%(count)d image hidden.", "%(count)d images hidden.", "count"),
    "unhide": ngettext_lazy(
        "%(count)d image shown again.", "%(count)d images shown again.", "count"
    ),
    "tag": ngettext_lazy("%(count)d image tagged.", "%(count)d images tagged.", "count"),
    "untrack": ngettext_lazy(
        "Stopped tracking %(count)d image.", "Stopped tracking %(count)d images.", "count"
    ),
}


def _do(action: str, rows: QuerySet, request: AuthedRequest) -> int:
    """Apply one bulk action to `rows`: how many rows it touched."""
    if action in ("favourite", "unfavourite"):
        return rows.update(favourite=action == "favourite")
    if action in ("hide", "unhide"):
        return rows.update(hidden=action == "hide")
    if action == "tag":
        return tagging.add(rows, request.POST.get("tags", ""), request.user)
    return archive.forget(TrackedTask.objects.filter(pk__in=rows.values("pk")))


@login_required
@require_POST
def gallery_bulk(request: AuthedRequest) -> HttpResponse:
    """Favourite, hide, tag or untrack the selection (untracking after a confirm step)."""
    action = request.POST.get("do")
    if action not in SAID:
        raise Http404("No such action.")
    rows = _selection(request)
    if not rows.exists():
        messages.warning(request, gettext("Select some images first."))
        return redirect(_back(request))
    if action == "tag" and not tagging.parse(request.POST.get("tags", "")):
        messages.warning(request, gettext("Type a tag to add first."))
        return redirect(_back(request))
    if action == "untrack" and not _confirmed(request, rows):
        count = rows.count()
        context = {
            "count": count,
            "sample": rows[:SAMPLE],
            "more": max(count - SAMPLE, 0),
            "fields": _repost(request),
            "confirm": signing.dumps(_fingerprint(rows), salt=CONFIRM_SALT),
            "changed": "confirm" in request.POST,
            "back": _back(request),
            "language_next": _back(request),
        }
        return render(request, "tracker/gallery_untrack.html", context)
    count = _do(action, rows, request)
    messages.success(request, SAID[action] % {"count": count})
    return redirect(_back(request))


def _fingerprint(rows: QuerySet) -> list[int]:
    """What identifies a selection: how many rows, and the sum and the largest of their keys.
    A row that joined or left the filter since the confirm page changes it."""
    found = rows.order_by().aggregate(n=Count("pk"), total=Sum("pk"), top=Max("pk"))
    return [found["n"], int(found["total"] or 0), found["top"] or 0]  # PostgreSQL: a Decimal


def _confirmed(request: AuthedRequest, rows: QuerySet) -> bool:
    """Did the confirm page, shown to this user within the hour, name exactly these rows?"""
    try:
        seen = signing.loads(request.POST.get("confirm", ""), salt=CONFIRM_SALT, max_age=3600)
    except signing.BadSignature:
        return False
    return seen == _fingerprint(rows)


def _repost(request: AuthedRequest) -> list[tuple[str, str]]:
    """The form's fields, to send again from the confirm step."""
    skip = {"csrfmiddlewaretoken", "confirm"}
    return [(k, v) for k, vs in request.POST.lists() if k not in skip for v in vs]


def _back(request: AuthedRequest) -> str:
    """The gallery page the form came from (`next`), or the gallery."""
    back = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(back, {request.get_host()}, request.is_secure()):
        return back
    return reverse("gallery")


# ZIPs ------------------------------------------------------------------------------------


@login_required
@require_POST
def download_zip(request: AuthedRequest) -> HttpResponse:
    """A ZIP of the selection (ticked, or all matching the filters), of the whole gallery,
    or of what was never downloaded."""
    scope = request.POST.get("scope", "all")
    if scope not in SCOPES:
        raise Http404("No such download.")
    rows = _finder(request, request.POST).apply(_images(request), DEFAULT_SORT)  # as shown
    if scope == "new":
        rows = rows.filter(downloaded_at=None)
    elif scope == "selected" and request.POST.get("all") != "1":
        ids = list(dict.fromkeys(request.POST.getlist("ids")))
        if not ids:
            messages.warning(request, gettext("Tick the images you want in the ZIP first."))
            return redirect("gallery")
        rows = rows.filter(task_id__in=ids)
        if len(ids) != rows.count():  # someone else's (or no such) task: 404
            raise Http404("No such task.")
    if not rows.exists():
        messages.info(
            request, gettext("Nothing new to download: every image is in an earlier ZIP.")
        )
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
