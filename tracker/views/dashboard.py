"""The dashboard: paste task IDs, and the live list that polls."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods
from django_htmx.http import HTMX_STOP_POLLING

from .. import archive, gateway
from ..filters import TaskFilter, query_string
from ..forms import ImagineForm, PasteForm
from ..models import TrackedTask, TrackedTaskQuerySet
from ..stored_text import render as translated
from .common import AuthedRequest, unchanged_polls

PAGE_SIZE = 50


@login_required
@require_http_methods(["GET", "POST"])
def dashboard(request: AuthedRequest) -> HttpResponse:
    form = PasteForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        result = gateway.track(request.user, form.cleaned_data["ids"])
        if not request.htmx:
            _flash(request, result)
            return redirect("dashboard")
        if result.throttled:  # what was not looked up stays in the box
            form = PasteForm(initial={"ids": "\n".join(result.throttled)})
        elif result.added or result.already:
            form = PasteForm()
    if request.method == "GET":
        gateway.refresh_due(request.user)
        archive.sweep()  # archive jobs a dead worker lost, at most once a minute
    context = {
        "form": form,
        "result": result,
        "imagine_form": ImagineForm(),
        **list_context(request),
    }
    if request.htmx and request.method == "POST":
        return render(request, "tracker/dashboard.html#paste-response", context)
    return render(request, "tracker/dashboard.html", context)


@login_required
@unchanged_polls
@require_GET
def task_list(request: AuthedRequest) -> HttpResponse:
    """The poll target. Reads the database; the gateway service decides whether to ask."""
    gateway.refresh_due(request.user)
    context = list_context(request)
    response = render(request, "tracker/dashboard.html#task-list-response", context)
    if not context["polling"]:
        response.status_code = HTMX_STOP_POLLING
    return response


def list_context(request: AuthedRequest) -> dict:
    mine = TrackedTask.objects.filter(user=request.user)
    finder = TaskFilter(request.GET, mine)
    page = Paginator(finder.apply(mine), PAGE_SIZE).get_page(request.GET.get("page"))
    tasks = list(page.object_list.prefetch_related("tags"))
    counts = mine.aggregate(
        total=Count("id"),
        running=Count("id", filter=TrackedTaskQuerySet.UNFINISHED),
        done=Count("id", filter=TrackedTaskQuerySet.DONE),
        failed=Count("id", filter=TrackedTaskQuerySet.FAILED),
    )
    unreachable = gateway.unreachable_for(request.user)
    return {
        "page_obj": page,
        "tasks": tasks,
        "counts": counts,
        "outages": [translated(message) for message in unreachable.values()],
        "outage_ids": set(unreachable),
        "polling": any(t.live for t in tasks),
        "finder": finder,
        "query": query_string(request.GET),
    }


def _flash(request: AuthedRequest, result: gateway.TrackResult) -> None:
    if result.nothing_found:
        messages.warning(request, gettext("No task IDs found in what you pasted."))
        return
    level = messages.SUCCESS if result.added else messages.INFO
    summary = gettext("%(added)d added, %(already)d already tracked, %(rejected)d rejected.")
    counts = {
        "added": len(result.added),
        "already": len(result.already),
        "rejected": len(result.rejected) + result.more_rejected,
    }
    messages.add_message(request, level, summary % counts)
    if result.refusal:
        messages.error(request, translated(result.refusal))
    for token, reason in result.rejected[:20]:
        rejected = gettext("Rejected “%(token)s”: %(reason)s")
        messages.warning(request, rejected % {"token": token, "reason": reason})
