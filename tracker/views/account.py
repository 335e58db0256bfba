"""The user's own settings (their own gateway) and sign-up."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LogoutView
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from .. import apitokens, archive, gateway, notify
from ..forms import ConnectionForm, EmailChannelForm, SignupForm, WebhookForm
from ..models import Channel, Profile, TrackedTask, gateway_for
from ..stored_text import render as translated
from .common import AuthedRequest


@login_required
@require_http_methods(["GET", "POST"])
def settings_page(request: AuthedRequest) -> HttpResponse:
    form = _connection_form(request, request.POST or None)
    if request.method == "POST" and request.POST.get("use_default"):
        Profile.objects.update_or_create(user=request.user, defaults={"gateway": None})
        messages.success(request, _("Using the site's default gateway again."))
        return redirect("settings")
    if request.method == "POST" and form.is_valid():
        gateway.choose(request.user, **form.cleaned_data)
        messages.success(request, _("Saved. Task IDs you add from now on use this gateway."))
        return redirect("settings")
    return settings_with(request, form)


def _connection_form(request: AuthedRequest, data=None) -> ConnectionForm:
    current = gateway_for(request.user)
    initial = {"base_url": current.display_url, "auth_style": current.auth_style}
    return ConnectionForm(data, initial=initial)


def settings_with(
    request: AuthedRequest, form: ConnectionForm | None = None, **extra
) -> HttpResponse:
    """The whole Settings page; `extra` adds to what it shows (a token just made, a
    notification form with its errors)."""
    current = gateway_for(request.user)
    context = {
        "form": form or _connection_form(request),
        "gateway": current,
        "is_default": current.shared,
        "archive_used": archive.usage(request.user),
        "archive_quota": archive.quota_bytes(),
        "archived_count": TrackedTask.objects.filter(
            user=request.user, archived_at__isnull=False
        ).count(),
        "tokens": apitokens.active(request.user),
        "channels": Channel.objects.filter(user=request.user),
        "webhook_form": WebhookForm(prefix=Channel.Kind.WEBHOOK),
        "email_form": EmailChannelForm(
            prefix=Channel.Kind.EMAIL, initial={"target": request.user.email}
        ),
        "mail_ready": notify.mail_ready(),
        "language_next": reverse("settings"),  # after a POST drew the page
        **extra,
    }
    return render(request, "tracker/settings.html", context)


@login_required
@require_POST
def token_create(request: AuthedRequest) -> HttpResponse:
    """A new API token, shown in this response only: it is not stored, put in the session or
    sent through a redirect, so nothing can show it twice."""
    try:
        row, token = apitokens.create(request.user, request.POST.get("name", ""))
    except apitokens.TooMany:
        messages.error(
            request,
            _("You have %(count)d working tokens, the most there can be: revoke one first.")
            % {"count": apitokens.MAX_ACTIVE},
        )
        return redirect("settings")
    response = settings_with(request, new_token=token, new_token_row=row)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def token_revoke(request: AuthedRequest) -> HttpResponse:
    row = apitokens.revoke(request.user, request.POST.get("token", ""))
    if row is None:  # someone else's, unknown, or revoked already
        raise Http404("No such token.")
    messages.success(
        request, _("Token “%(name)s” revoked: it no longer works.") % {"name": row.name}
    )
    return redirect("settings")


@login_required
@require_POST
def test_connection(request: AuthedRequest) -> HttpResponse:
    """One cheap call, and what it means in plain words."""
    ok, message = gateway.test_connection(request.user)
    context = {"test_ok": ok, "test_message": message}
    if request.htmx:
        return render(request, "tracker/settings.html#test-result", context)
    (messages.success if ok else messages.error)(request, translated(message))
    return redirect("settings")


@require_http_methods(["GET", "POST"])
def signup(request: AuthedRequest) -> HttpResponse:
    if not settings.MJDASH_ALLOW_SIGNUP:
        raise Http404("Sign-up is closed on this site.")
    if request.user.is_authenticated:
        return redirect("dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Paste a task ID to start tracking."))
        return redirect("dashboard")
    return render(request, "registration/signup.html", {"form": form})


class Logout(LogoutView):
    """Log out, and have the browser drop what it cached for this site: archived images are
    cached for a year, and the next person at a shared computer must not find them there."""

    def post(self, request, *args, **kwargs) -> HttpResponse:
        response = super().post(request, *args, **kwargs)
        response["Clear-Site-Data"] = '"cache"'
        return response
