from __future__ import annotations

import json
from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.timesince import timesince
from django.utils.translation import gettext

from tracker import stored_text

register = template.Library()


@register.filter
def duration_human(value: timedelta | None) -> str:
    """1 h 4 min, 3 min 12 s, 42 s."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = {"hours": hours, "minutes": minutes, "seconds": secs}
    if hours:
        return gettext("%(hours)d h %(minutes)d min") % parts
    if minutes:
        return gettext("%(minutes)d min %(seconds)d s") % parts
    return gettext("%(seconds)d s") % parts


@register.filter
def pretty_json(value: object) -> str:
    """Indented JSON text; the template's autoescaping keeps it safe."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def ago(value) -> str:
    """“just now”, “5 minutes ago”, “2 days ago”: Django's own translated units, plurals and
    all, in the active language."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return gettext("just now")
    return gettext("%(time)s ago") % {"time": timesince(value, depth=1)}


@register.filter
def stored(value: str) -> SafeString:
    """A message kept in English (a row's last error, an archive error, a gateway error)
    in the reader's language, the gateway's own words marked as such."""
    return stored_text.render(value or "")


@register.filter
def gateway_words(value: str) -> SafeString:
    """Text the gateway wrote (a failReason, a description), shown as it is and marked as
    the gateway's: `<q class="gateway-words" …>`."""
    return stored_text.gateway_words(value) if value else SafeString("")
