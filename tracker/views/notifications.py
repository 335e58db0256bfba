"""Settings → Notifications: the user's webhooks and e-mail addresses for finished tasks,
each with its last outcome and a "Send a test" button. (The page itself is account.py's.)"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from .. import notify
from ..forms import EmailChannelForm, WebhookForm
from ..models import Channel
from ..stored_text import render as translated
from .account import settings_with
from .common import AuthedRequest

FORMS = {Channel.Kind.WEBHOOK: WebhookForm, Channel.Kind.EMAIL: EmailChannelForm}


def get_channel_for_user(request: AuthedRequest, channel_id: int) -> Channel:
    """The only way a view loads a channel: its owner's, or 404."""
    return get_object_or_404(Channel, pk=channel_id, user=request.user)


@login_required
@require_POST
def channel_add(request: AuthedRequest, kind: str) -> HttpResponse:
    form = FORMS[kind](request.POST, prefix=kind)
    if kind == Channel.Kind.EMAIL and not notify.mail_ready():
        messages.error(request, _("This site has no mail server set up, so it cannot send e-mail."))
        return redirect("settings")
    if not form.is_valid():  # the page again, with what was typed (but the secret) and why
        return settings_with(request, **{f"{kind}_form": form})
    try:
        notify.add_channel(request.user, kind, **form.cleaned_data)
    except notify.TooMany:
        messages.error(
            request,
            _("You have %(count)d notifications set up, the most there can be: remove one first.")
            % {"count": Channel.MAX_PER_USER},
        )
        return redirect("settings")
    messages.success(request, _("Saved. Tasks that finish from now on are announced there."))
    return redirect("settings")


@login_required
@require_POST
def channel_test(request: AuthedRequest, channel_id: int) -> HttpResponse:
    """One message now, marked as a test; its outcome is kept like any other's."""
    channel = get_channel_for_user(request, channel_id)
    sent, error = notify.send_test(channel)
    if request.htmx:
        channel.refresh_from_db()
        return render(request, "tracker/settings.html#channel", {"channel": channel})
    if sent:
        messages.success(request, _("The test was sent."))
    else:
        messages.error(request, translated(error))
    return redirect("settings")


@login_required
@require_POST
def channel_remove(request: AuthedRequest, channel_id: int) -> HttpResponse:
    get_channel_for_user(request, channel_id).delete()
    messages.success(request, _("Removed: nothing more is sent there."))
    return redirect("settings")
