from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django import forms
from django.conf import settings
from django.contrib.auth.forms import UserCreationForm

from .models import AuthStyle

MAX_PASTE = 200_000


class PasteForm(forms.Form):
    ids = forms.CharField(
        label="Task IDs",
        max_length=MAX_PASTE,
        widget=forms.Textarea(
            attrs={
                "rows": 4,
                "placeholder": "Paste task IDs: one per line, comma-separated, a submit "
                "response's JSON, or links that contain /mj/task/<id> or /mj/image/<id>",
                "spellcheck": "false",
                "autocomplete": "off",
            }
        ),
        error_messages={
            "required": "Paste at least one task ID.",
            "max_length": "That is more text than one paste can take (%(limit_value)d "
            "characters). Split it into smaller pastes.",
        },
    )


class ConnectionForm(forms.Form):
    base_url = forms.URLField(
        label="Gateway URL",
        max_length=500,
        assume_scheme="https",
        help_text="The address your /mj API lives under, e.g. https://gateway.example.com",
    )
    token = forms.CharField(
        label="API token",
        required=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the token you saved before.",
    )
    auth_style = forms.ChoiceField(
        label="How to send the token", choices=AuthStyle.choices, initial=AuthStyle.BEARER
    )

    def clean_base_url(self) -> str:
        url = self.cleaned_data["base_url"].rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise forms.ValidationError("Use an http:// or https:// address.")
        if url.endswith("/mj"):
            url = url[: -len("/mj")]
        if not settings.MJDASH_ALLOW_PRIVATE_UPSTREAMS:
            refuse_private_host(urlsplit(url).hostname or "")
        return url


def refuse_private_host(host: str) -> None:
    """The server calls whatever gateway a user names: keep that off its own network
    (loopback, private, link-local and cloud metadata addresses)."""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except (socket.gaierror, UnicodeError):
        raise forms.ValidationError(f"“{host}” does not resolve to an address.") from None
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        if not ip.is_global:
            raise forms.ValidationError(
                f"“{host}” is a private or local address ({ip}); this site only connects "
                "to public gateways."
            )


class SignupForm(UserCreationForm):
    pass
