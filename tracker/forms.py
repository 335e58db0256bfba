from __future__ import annotations

import base64
import uuid
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


# --- acting on results: new jobs and the input a task waits for --------------------------------

REFERENCE_TYPES = {  # the first bytes of the pictures a gateway takes as references
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
MAX_REFERENCES = 4
SPEED_CHOICES = [
    ("", _("The gateway's default")),
    ("fast", _("Fast")),
    ("relax", _("Relax")),
    ("turbo", _("Turbo")),
]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class ReferenceImagesField(forms.FileField):
    """Up to MAX_REFERENCES pictures (PNG, JPEG, WebP or GIF, each at most
    MJDASH_REFERENCE_MAX_BYTES), checked by their bytes, as data URLs for base64Array."""

    widget = MultipleFileInput(attrs={"accept": "image/png,image/jpeg,image/webp,image/gif"})

    def clean(self, data, initial=None) -> list[str]:
        files = [f for f in (data if isinstance(data, list | tuple) else [data]) if f]
        if len(files) > MAX_REFERENCES:
            raise forms.ValidationError(
                gettext("At most %(count)d reference images.") % {"count": MAX_REFERENCES}
            )
        return [_data_url(upload) for upload in files]


def _data_url(upload) -> str:
    limit = settings.MJDASH_REFERENCE_MAX_BYTES
    if upload.size > limit:
        raise forms.ValidationError(
            gettext("“%(name)s” is larger than %(mb)d MB.")
            % {"name": upload.name[:80], "mb": limit // (1024 * 1024)}
        )
    data = upload.read(limit + 1)
    kind = next((t for magic, t in REFERENCE_TYPES.items() if data.startswith(magic)), "")
    if not kind and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        kind = "image/webp"
    if not kind:
        raise forms.ValidationError(
            gettext("“%(name)s” is not a PNG, JPEG, WebP or GIF picture.")
            % {"name": upload.name[:80]}
        )
    return f"data:{kind};base64,{base64.b64encode(data).decode()}"


class ImagineForm(forms.Form):
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=4000,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
        error_messages={"required": _("Write a prompt for the new job.")},
    )
    images = ReferenceImagesField(label=_("Reference images"), required=False)
    mode = forms.ChoiceField(label=_("Speed"), choices=SPEED_CHOICES, required=False)
    key = forms.CharField(widget=forms.HiddenInput, max_length=64)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["key"] = uuid.uuid4().hex  # one per form shown: one per click


class ModalForm(forms.Form):
    prompt = forms.CharField(
        label=_("Prompt"),
        max_length=4000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off"}),
    )
    zoom = forms.DecimalField(
        label=_("Zoom factor"),
        min_value=1,
        max_value=2,
        decimal_places=2,
        required=False,
        help_text=_("From 1 to 2; sent as --zoom."),
    )
    key = forms.CharField(widget=forms.HiddenInput, max_length=300)

    def text(self) -> str:
        """The prompt as the gateway takes it, the zoom factor appended."""
        prompt, zoom = self.cleaned_data["prompt"].strip(), self.cleaned_data.get("zoom")
        return f"{prompt} --zoom {zoom.normalize()}".strip() if zoom else prompt
