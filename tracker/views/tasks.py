"""One task: its detail page, seed, re-check and untrack."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HTMX_STOP_POLLING

from .. import archive, buttons, gateway, tagging
from ..family import family
from ..forms import ModalForm
from ..models import ArchivedFile, TrackedTask
from ..stored_text import render as translated
from .common import AuthedRequest, owned_task, unchanged_polls


@login_required
@unchanged_polls
@owned_task
@require_GET
def task_detail(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    if request.htmx and request.GET.get("poll"):
        gateway.refresh_task_if_due(task)
        response = render(request, "tracker/task_detail.html#task-panel", detail_context(task))
        if not task.live:
            response.status_code = HTMX_STOP_POLLING
        return response
    context = detail_context(task, family=family(task), tags=list(task.tags.all()))
    return render(request, "tracker/task_detail.html", context)


def detail_context(task: TrackedTask, **extra) -> dict:
    """The page's context: the task and its archived files, sorted by kind. A clip takes the
    main spot when the task has one (the still becomes its poster)."""
    files = list(task.files.select_related("original"))
    whole = next((f for f in files if f.part == ArchivedFile.WHOLE), None)
    videos = [f for f in files if f.part >= ArchivedFile.FIRST_VIDEO]
    main_video = videos[0] if videos else (whole if whole and whole.is_video else None)
    return {
        "task": task,
        "actions": buttons.offered(task),
        "modal_form": ModalForm(initial={"key": buttons.modal_key(task)})
        if task.needs_input
        else None,
        "whole": whole,
        "main_video": main_video,
        "quadrants": [f for f in files if f.is_quadrant],
        "videos": [f for f in videos if f is not main_video],
        "kept_bytes": sum(f.original.size for f in files),
        **extra,
    }


def _modal_form(task: TrackedTask) -> ModalForm | None:
    """The form for the input a task in MODAL waits for (its prompt; a custom zoom's factor)."""
    return ModalForm(initial={"key": buttons.modal_key(task)}) if task.needs_input else None


@login_required
@owned_task
@require_http_methods(["GET", "POST"])
def task_archive(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    """The archive line of the page: polled while a job is owed; POST tries again after a
    failure that will not retry by itself."""
    if request.method == "POST" and not task.archiving and task.is_done:
        archive.retry(task)
        task.refresh_from_db()
    if not request.htmx:
        return redirect("task_detail", task_id=task.task_id)
    return _while_archiving(request, task, "tracker/_archive_state.html", detail_context(task))


@login_required
@owned_task
@require_GET
def task_thumb(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    """A thumbnail still being archived, asked again until it is there."""
    context = {"task": task, "small": bool(request.GET.get("small"))}
    return _while_archiving(request, task, "tracker/_thumb.html", context)


def _while_archiving(request, task: TrackedTask, template: str, context: dict) -> HttpResponse:
    """A partial that htmx asks for again while the task is being archived, then no more."""
    response = render(request, template, context)
    if not task.archiving_recently:
        response.status_code = HTMX_STOP_POLLING
    return response


@login_required
@owned_task
@require_POST
def task_organise(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    """A favourite, hidden from the default views, a note or tags: the user's own marks,
    which never reach the gateway."""
    if "favourite" in request.POST:
        task.favourite = request.POST["favourite"] == "1"
    if "hidden" in request.POST:
        task.hidden = request.POST["hidden"] == "1"
    if "note" in request.POST:
        task.note = request.POST["note"].strip()[:5000]
    task.save(update_fields=["favourite", "hidden", "note"])
    if "tags" in request.POST:
        tagging.replace(task, request.POST["tags"])
    if request.htmx:  # a gallery tile's star comes back as a star alone
        context = {"task": task, "compact": request.POST.get("compact") == "1"}
        return render(request, "tracker/_marks.html", context)
    messages.success(request, gettext("Saved."))
    return redirect("task_detail", task_id=task.task_id)


@login_required
@owned_task
@require_GET
def task_seed(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    seed, seed_error, can_retry = gateway.seed(task)
    context = detail_context(task, seed=seed, seed_error=seed_error, seed_can_retry=can_retry)
    template = "tracker/task_detail.html#seed" if request.htmx else "tracker/task_detail.html"
    return render(request, template, context)


@login_required
@owned_task
@require_POST
def task_recheck(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    gateway.recheck(task)
    task.refresh_from_db()
    if request.htmx:
        return render(request, "tracker/task_detail.html#task-panel", detail_context(task))
    if task.last_error:
        messages.warning(request, translated(task.last_error))
    else:
        messages.success(
            request,
            gettext("Checked %(task_id)s with the gateway just now.") % {"task_id": task.task_id},
        )
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, request.is_secure()):
        return redirect(next_url)
    return redirect("task_detail", task_id=task.task_id)


@login_required
@owned_task
@require_http_methods(["GET", "POST"])
def task_untrack(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    if request.method == "POST":
        archive.forget(TrackedTask.objects.filter(pk=task.pk))
        messages.success(
            request, gettext("Stopped tracking %(task_id)s.") % {"task_id": task.task_id}
        )
        return redirect("dashboard")
    return render(request, "tracker/untrack_confirm.html", {"task": task})
