"""The JSON API under /api/: a personal access token in `Authorization: Bearer`, JSON in
and out, every error included. Its task dict is the export's (tracker/export.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from functools import cache, wraps
from pathlib import Path

from django.core.exceptions import RequestDataTooBig
from django.core.paginator import EmptyPage, Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .. import apitokens, export, gateway
from ..filters import TaskFilter
from ..forms import MAX_PASTE
from ..models import TrackedTask
from .common import AuthedRequest, get_task_for_user

logger = logging.getLogger(__name__)
SCHEMA = Path(__file__).resolve().parent.parent / "openapi.json"
PER_PAGE, MAX_PER_PAGE = 50, 200
MAX_BODY = 4 * MAX_PASTE  # bytes: the paste box's limit, in the widest UTF-8


class ApiError(Exception):
    def __init__(self, status: int, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


def error(status: int, message: str, **headers: str) -> JsonResponse:
    """Every error the API sends: {"error": {"status", "message"}}, never a page."""
    body = {"error": {"status": status, "message": message}}
    response = JsonResponse(body, status=status, headers=headers)
    response["Cache-Control"] = "no-store"
    return response


def api(*methods: str) -> Callable:
    """Token, rate, the task named in the URL (its owner's, else 404, before the method is
    looked at, as on the pages), then the method: each refused with a JSON error."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        # Token-only: no session cookie is ever read, so a cross-site form cannot call it
        # as a logged-in user, and CSRF protection has nothing to protect.
        @csrf_exempt
        @wraps(view)
        def run(request: AuthedRequest, **kwargs) -> HttpResponse:
            try:
                request.user = _token(request).user
                if "task_id" in kwargs:
                    kwargs["task"] = get_task_for_user(request, kwargs.pop("task_id"))
                if request.method not in methods:
                    allowed = ", ".join(methods)
                    raise ApiError(405, f"Use {allowed} here.", Allow=allowed)
                response = view(request, **kwargs)
            except Http404:
                return error(404, "No such task.")
            except ApiError as exc:
                return error(exc.status, exc.message, **exc.headers)
            except Exception:  # a bug of ours: logged, and still JSON, never a page
                logger.exception("API error on %s", request.path)
                return error(500, "Something went wrong on our side; try again later.")
            response["Cache-Control"] = "no-store"
            return response

        return run

    return decorate


def _token(request: AuthedRequest):
    token = apitokens.authenticate(request)
    if token is None:
        raise ApiError(
            401,
            "Send a working API token as 'Authorization: Bearer mjd_…' (make one on Settings).",
            **{"WWW-Authenticate": 'Bearer realm="mjdash"'},
        )
    wait = apitokens.retry_after(token)
    if wait:
        raise ApiError(
            429, f"Too many requests: try again in {wait} s.", **{"Retry-After": str(wait)}
        )
    return token


@api("GET", "POST")
def task_list(request: AuthedRequest) -> HttpResponse:
    if request.method == "POST":
        return _track(request)
    gateway.refresh_due(request.user)
    mine = TrackedTask.objects.filter(user=request.user)
    rows = TaskFilter(request.GET, mine).apply(mine)
    per_page = min(max(_number(request.GET.get("per_page"), PER_PAGE), 1), MAX_PER_PAGE)
    paginator = Paginator(export.with_related(rows), per_page)
    try:
        page = paginator.page(_number(request.GET.get("page"), 1))
    except EmptyPage:
        raise ApiError(404, f"No such page: there are {paginator.num_pages}.") from None
    return JsonResponse(
        {
            "count": paginator.count,
            "page": page.number,
            "pages": paginator.num_pages,
            "next": _page_url(request, page.next_page_number()) if page.has_next() else None,
            "previous": (
                _page_url(request, page.previous_page_number()) if page.has_previous() else None
            ),
            "results": [export.as_dict(task) for task in page.object_list],
        }
    )


@api("GET")
def task_detail(request: AuthedRequest, task: TrackedTask) -> HttpResponse:
    gateway.refresh_task_if_due(task)
    return JsonResponse(export.one(task))  # the row as the refresh left it


def _track(request: AuthedRequest) -> HttpResponse:
    """Track the IDs in the body, as the paste box would: {"ids": "text"}, {"ids": [...]}
    or the text itself."""
    result = gateway.track(request.user, _pasted_text(request))
    body = {
        "added": result.added,
        "already": result.already,
        "duplicates": result.duplicates,
        "rejected": [{"id": token, "reason": reason} for token, reason in result.rejected],
        "more_rejected": result.more_rejected,
        "truncated": result.truncated,
        "not_looked_up": result.throttled,
        "refusal": result.refusal,
        "gateway_ok": result.gateway_ok,
    }
    return JsonResponse(body, status=201 if result.added else 200)


def _pasted_text(request: AuthedRequest) -> str:
    try:
        body = request.body
    except RequestDataTooBig:  # over Django's own cap: refused before it is read
        body = None
    if body is None or len(body) > MAX_BODY:
        raise ApiError(413, f"The body is over {MAX_BODY} bytes: send fewer IDs at a time.")
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ApiError(400, "The body is not UTF-8 text.") from None
    if request.content_type == "application/json":
        text = _ids_from_json(text)
    if len(text) > MAX_PASTE:
        raise ApiError(413, f"More than {MAX_PASTE} characters: send fewer IDs at a time.")
    if not text.strip():
        raise ApiError(400, 'No task IDs: send {"ids": "…"}, {"ids": […]} or the IDs as text.')
    return text


def _ids_from_json(text: str) -> str:
    try:
        ids = json.loads(text).get("ids")
    except (ValueError, AttributeError, RecursionError):
        raise ApiError(400, 'The body is not a JSON object like {"ids": "…"}.') from None
    if isinstance(ids, list) and all(_is_id(i) for i in ids):
        return "\n".join(str(i) for i in ids)
    if not isinstance(ids, str):
        raise ApiError(400, '"ids" must be text or a list of task IDs.')
    return ids


def _is_id(value) -> bool:
    """A list's item: text, or a whole number (the proxies' IDs are digits)."""
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _number(value: str | None, default: int) -> int:
    """A page or page size; anything but a whole number is the default, as the UI does."""
    return (
        int(value)
        if value and value.isascii() and value.isdecimal() and len(value) < 7
        else default
    )


def _page_url(request: AuthedRequest, number: int) -> str:
    query = request.GET.copy()
    query["page"] = str(number)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


@csrf_exempt
def openapi(request: AuthedRequest) -> HttpResponse:
    """The API's description, OpenAPI 3.1; public, like any API's documentation."""
    if request.method not in ("GET", "HEAD"):
        return error(405, "Use GET here.", Allow="GET")
    return HttpResponse(_schema(), content_type="application/json")


@cache
def _schema() -> bytes:
    return SCHEMA.read_bytes()


@csrf_exempt
def not_found(request: AuthedRequest) -> HttpResponse:
    """Anything else under /api/ (a missing slash included): a JSON 404, not a page."""
    return error(404, "No such endpoint; the API is described at /api/openapi.json.")
