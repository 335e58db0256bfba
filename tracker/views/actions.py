"""Acting on a result: a finished task's buttons (U2, V3, zoom ...), the input a task in
MODAL waits for, and new jobs (Imagine). Each submit spends the user's quota at the gateway:
one submit per click (its idempotency key), and never on anyone else's task."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from .. import gateway
from ..forms import ImagineForm, ModalForm
from ..models import Submission, TrackedTask
from ..stored_text import render as translated
from .common import AuthedRequest, owned_task
from .dashboard import list_context
from .tasks import detail_context

State = Submission.State


@login_required
@owned_task
@require_POST
def task_action(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    custom_id, key = request.POST.get("custom_id", "")[:200], request.POST.get("key", "")
    if not key.startswith(f"action:{task.pk}:") or len(key) > 300:
        return _not_done(request, task, gettext("This button is out of date: reload the page."))
    try:
        submission = gateway.submit_action(task, custom_id, key)
    except gateway.GatewayError as exc:
        return _not_done(request, task, translated(exc.message))
    return _outcome(request, task, submission)


@login_required
@owned_task
@require_POST
def task_modal(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    form = ModalForm(request.POST)
    key = request.POST.get("key", "")
    if not form.is_valid() or not key.startswith(f"modal:{task.pk}:"):
        error = next(iter(form.errors.values()), [gettext("Reload the page and try again.")])
        return _not_done(request, task, error[0])
    try:
        submission = gateway.submit_modal(task, form.text(), key)
    except gateway.GatewayError as exc:
        return _not_done(request, task, translated(exc.message))
    return _outcome(request, task, submission)


@login_required
@require_POST
def imagine(request: AuthedRequest) -> HttpResponse:
    form = ImagineForm(request.POST, request.FILES)
    submission = None
    if form.is_valid():
        data = form.cleaned_data
        try:
            submission = gateway.imagine(
                request.user, data["prompt"], data["images"], data["mode"], data["key"]
            )
        except gateway.GatewayError as exc:
            form.add_error(None, translated(exc.message))
    if submission is not None and submission.state == State.ACCEPTED:
        form = ImagineForm()  # done: an empty form with a new key for the next job
    if not request.htmx:
        _flash(request, submission, form)
        return redirect("dashboard")
    context = {
        "imagine_form": form,
        "submission": submission,
        "submission_said": said(submission) if submission else "",
        **list_context(request),
    }
    return render(request, "tracker/dashboard.html#imagine-response", context)


def _outcome(request: AuthedRequest, task: TrackedTask, submission: Submission) -> HttpResponse:
    """Accepted: off to the task it started, which runs there live. Otherwise the task's page
    says why, and nothing was sent twice."""
    if submission.state == State.ACCEPTED and submission.task_id:
        message = gettext("Started task %(task_id)s from %(parent)s.")
        messages.success(request, message % {"task_id": submission.task_id, "parent": task.task_id})
        url = reverse("task_detail", args=[submission.task_id])
        return HttpResponseClientRedirect(url) if request.htmx else redirect(url)
    return _not_done(request, task, said(submission), level=messages.WARNING)


def said(submission: Submission) -> str:
    """What a submission that did not (yet) start a task of ours means, in plain words."""
    if submission.state == State.SENDING:
        return gettext("This was just sent: wait for its answer before trying again.")
    return translated(submission.message) or gettext("The gateway did not start a task.")


def _not_done(request: AuthedRequest, task: TrackedTask, message: str, level=messages.ERROR):
    if not request.htmx:
        messages.add_message(request, level, message)
        return redirect("task_detail", task_id=task.task_id)
    context = detail_context(task, action_message=message, action_level=level)
    return render(request, "tracker/_actions.html", context)


def _flash(request: AuthedRequest, submission: Submission | None, form: ImagineForm) -> None:
    if submission is not None and submission.state == State.ACCEPTED and submission.task_id:
        message = gettext("Imagine sent: task %(task_id)s is tracked and runs below.")
        messages.success(request, message % {"task_id": submission.task_id})
    elif submission is not None:
        messages.warning(request, said(submission))
    for errors in form.errors.values():
        messages.error(request, errors[0])
