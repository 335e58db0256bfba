"""Settings → Notifications: the user's webhooks and e-mail addresses for finished tasks,
each with its last outcome and a "Send a test" button. (The page itself is account.py's.)"""

from __future__ import annotations

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from .. import notify
from ..forms import EmailChannelForm, WebhookForm
from ..models import Channel
from ..stored_text import Stored
from ..stored_text import render as translated
from .account import settings_with
from .common import AuthedRequest

FORMS = {Channel.Kind.WEBHOOK: WebhookForm, Channel.Kind.EMAIL: EmailChannelForm}
TOO_MANY_SENDS = Stored.gettext(
    "Not sent: at most %(count)s tests and confirmations an hour. Try again later."
)


def owned_channel(view):
    """Load the channel named in the URL for its owner before anything else, method checks
    included, so a stranger gets the same 404 for every method on every channel route."""

    @wraps(view)
    def load(request: AuthedRequest, channel_id: int, **kwargs) -> HttpResponse:
        channel = get_object_or_404(Channel, pk=channel_id, user=request.user)
        return view(request, channel, **kwargs)

    return load


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
    if kind == Channel.Kind.EMAIL:
        messages.success(
            request,
            _("Saved. Follow the link we sent to that address to start receiving messages there."),
        )
    else:
        messages.success(request, _("Saved. Tasks that finish from now on are announced there."))
    return redirect("settings")


@login_required
@owned_channel
@require_POST
def channel_test(request: AuthedRequest, channel: Channel) -> HttpResponse:
    """One message now, marked as a test; its outcome is kept like any other's. (An address
    not confirmed yet gets its confirmation again.) A few an hour."""
    if notify.may_send_now(request.user):
        sent, error = notify.send_test(channel)
    else:
        sent, error = False, TOO_MANY_SENDS.english(count=notify.SENDS_PER_HOUR)
    if request.htmx:
        channel.refresh_from_db()
        context = {"channel": channel, "refused": "" if sent else error}
        return render(request, "tracker/settings.html#channel", context)
    if sent and channel.confirmed_at is None:
        messages.success(request, _("The confirmation link was sent again."))
    elif sent:
        messages.success(request, _("The test was sent."))
    else:
        messages.error(request, translated(error))
    return redirect("settings")


@login_required
@owned_channel
@require_POST
def channel_remove(request: AuthedRequest, channel: Channel) -> HttpResponse:
    channel.delete()
    messages.success(request, _("Removed: nothing more is sent there."))
    return redirect("settings")


@login_required
@owned_channel
@require_GET
def channel_confirm(request: AuthedRequest, channel: Channel, token: str) -> HttpResponse:
    """The link in a confirmation e-mail, opened while logged in as the address's owner."""
    if notify.confirm(channel, token):
        messages.success(request, _("Confirmed: finished tasks are announced at this address."))
    else:
        messages.error(
            request, _("That confirmation link is not valid any more: send a new one below.")
        )
    return redirect("settings")
