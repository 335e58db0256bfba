"""Login throttling hooks for django-axes: whose address a login comes from, and the page a
locked-out login gets."""

from __future__ import annotations

import ipaddress
import math

from axes.helpers import get_cool_off
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str | None:
    """The address failures are counted against. With no proxy in front, the connection's own
    (REMOTE_ADDR). Behind MJDASH_PROXY_COUNT proxies that each append to X-Forwarded-For, the
    entry the outermost one added: anything left of it is the client's own claim, and forged
    entries must not buy a fresh count."""
    remote = request.META.get("REMOTE_ADDR")
    count = settings.MJDASH_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if len(hops) < count:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return remote


def locked_out(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """Our own page, status 429, for a login (ours or the admin's) refused by the lockout."""
    cool_off = get_cool_off(request)
    minutes = math.ceil(cool_off.total_seconds() / 60) if cool_off else None
    return render(request, "registration/locked.html", {"minutes": minutes}, status=429)
