"""What every view shares: the request type and the one owner-scoped task loader."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404
from django_htmx.middleware import HtmxDetails

from ..models import TrackedTask

TASK_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


class AuthedRequest(HttpRequest):
    user: AbstractBaseUser
    htmx: HtmxDetails


def get_task_for_user(request: AuthedRequest, task_id: str) -> TrackedTask:
    """The only way a view loads a task: scoped to its owner, so a stranger gets 404. An ID
    no task can have (a NUL, a slash) is a 404 before any query."""
    if not TASK_ID.fullmatch(task_id):
        raise Http404("No such task.")
    task = get_object_or_404(
        TrackedTask.objects.select_related("gateway"), user=request.user, task_id=task_id
    )
    task.user = request.user  # the same account, already loaded: no second query for it
    return task


def owned_task(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Load the task named in the URL for its owner before anything else, method checks
    included, so a stranger gets the same 404 for every method on every task route."""

    @wraps(view)
    def load(request: AuthedRequest, task_id: str, **kwargs) -> HttpResponse:
        return view(request, get_task_for_user(request, task_id), **kwargs)

    return load
