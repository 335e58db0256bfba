from __future__ import annotations

from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .gateway import is_public_host
from .models import AuthStyle

MAX_PASTE = 200_000


class PasteForm(forms.Form):
    ids = forms.CharField(
        label=_("Task IDs"),
        max_length=MAX_PASTE,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "placeholder": _(
                    "Paste task IDs: one per line, comma-separated, a submit response's JSON, "
                    "or links that contain /mj/task/<id> or /mj/image/<id>"
                ),
                "spellcheck": "false",
                "autocomplete": "off",
            }
        ),
        error_messages={
            "required": _("Paste at least one task ID."),
            "max_length": _(
                "That is more text than one paste can take (%(limit_value)d characters). "
                "Split it into smaller pastes."
            ),
        },
    )


class ConnectionForm(forms.Form):
    base_url = forms.URLField(
        label=_("Gateway URL"),
        max_length=500,
        assume_scheme="https",
        help_text=_("The address your /mj API lives under, e.g. https://gateway.example.com"),
    )
    token = forms.CharField(
        label=_("API token"),
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "Leave empty to keep your saved token for this same URL. A new URL with an empty "
            "token is saved with no token."
        ),
    )
    auth_style = forms.ChoiceField(
        label=_("How to send the token"), choices=AuthStyle.choices, initial=AuthStyle.BEARER
    )

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].rstrip("/")
        no_credentials = gettext(
            "Leave the user name and password out of the URL; put the gateway's key in the "
            "token field, which is stored encrypted."
        )
        url = outbound_url(url, no_credentials)
        return url[: -len("/mj")] if url.endswith("/mj") else url


def outbound_url(url: str, no_credentials: str) -> str:
    """A URL this site may call: http(s), with no user name or password in it (they would
    be shown and logged; `no_credentials` says where they go instead), and on a public
    address unless the site allows private ones."""
    if not url.startswith(("http://", "https://")):
        raise forms.ValidationError(gettext("Use an http:// or https:// address."))
    if "@" in urlsplit(url).netloc:
        raise forms.ValidationError(no_credentials)
    if not settings.MJDASH_ALLOW_PRIVATE_GATEWAYS:
        refuse_private_host(urlsplit(url).hostname or "")
    return url


def refuse_private_host(host: str) -> None:
    """Tell the user at once when the gateway they name is on a private or local address.
    (The real guard is at connect time, in upstream/guard.py: this only explains it early.)
    One message for both cases, so the form maps none of the server's own network."""
    if not is_public_host(host):
        raise forms.ValidationError(
            gettext(
                "“%(host)s” is not a public address that this site can reach: it does not "
                "resolve, or it is a private or local address."
            )
            % {"host": host}
        )


class SignupForm(UserCreationForm):
    pass


class WebhookForm(forms.Form):
    """A webhook receiver for finished tasks (Settings → Notifications)."""

    target = forms.URLField(
        label=_("Webhook URL"),
        max_length=1000,
        assume_scheme="https",
        help_text=_("mjdash POSTs JSON here when a task finishes or fails."),
    )
    secret = forms.CharField(
        label=_("Secret (optional)"),
        required=False,
        max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_(
            "With a secret, every call is signed (X-Mjdash-Signature), so your receiver can "
            "tell it came from here. It is stored encrypted and never shown again."
        ),
    )
    digest = forms.BooleanField(
        label=_("One message per batch: tasks that finish close together arrive as one call"),
        required=False,
    )

    def clean_target(self) -> str:
        no_credentials = gettext("Leave the user name and password out of the URL; use the secret.")
        return outbound_url(self.cleaned_data["target"], no_credentials)


class EmailChannelForm(forms.Form):
    """An e-mail address for finished tasks (Settings → Notifications)."""

    target = forms.EmailField(label=_("E-mail address"), max_length=254)
    digest = forms.BooleanField(
        label=_("One message per batch: tasks that finish close together arrive as one e-mail"),
        required=False,
    )
