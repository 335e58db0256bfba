"""What every view shares: the request type and the one owner-scoped task loader."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django_htmx.middleware import HtmxDetails

from ..models import TrackedTask


class AuthedRequest(HttpRequest):
    user: AbstractBaseUser
    htmx: HtmxDetails


def get_task_for_user(request: AuthedRequest, task_id: str) -> TrackedTask:
    """The only way a view loads a task: scoped to its owner, so a stranger gets 404."""
    return get_object_or_404(
        TrackedTask.objects.select_related("connection"), user=request.user, task_id=task_id
    )
