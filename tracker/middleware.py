"""An expired session on an htmx request: send the whole page to the login form, instead of
swapping the login page into a fragment."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


class HtmxLoginRedirectMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        htmx = getattr(request, "htmx", None)
        login_url = resolve_url(settings.LOGIN_URL)
        if htmx and response.status_code == 302 and response["Location"].startswith(login_url):
            next_url = htmx.current_url_abs_path or "/"
            return HttpResponseClientRedirect(f"{login_url}?{urlencode({'next': next_url})}")
        return response
