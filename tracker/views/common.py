"""What every view shares: the request type and the one owner-scoped task loader."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.shortcuts import get_object_or_404
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.http import parse_etags, quote_etag
from django.utils.translation import get_language
from django_htmx.middleware import HtmxDetails

from ..models import TrackedTask

TASK_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")
# A form's CSRF token is masked anew on every render; it says nothing about what changed.
CSRF_FIELD = re.compile(rb'name="csrfmiddlewaretoken" value="[^"]*"')


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


def unchanged_polls(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A poll whose answer has not changed is not sent again: the answer carries an ETag of
    its content, the browser revalidates with If-None-Match, and gets an empty 304 (its
    cached copy stands). Only plain 200s: the 286 that stops polling always goes out whole."""

    @wraps(view)
    def poll(request: AuthedRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        if request.method != "GET" or response.status_code != 200 or response.streaming:
            return response
        content = CSRF_FIELD.sub(b"", response.content)
        digest = hashlib.blake2b(content, digest_size=16).hexdigest()
        etag = quote_etag(f"{digest}-{get_language()}")
        if etag in parse_etags(request.headers.get("If-None-Match", "")):
            response = HttpResponseNotModified()
        response["ETag"] = etag
        patch_cache_control(response, private=True, no_cache=True)
        patch_vary_headers(response, ["HX-Request", "Cookie"])
        return response

    return poll
