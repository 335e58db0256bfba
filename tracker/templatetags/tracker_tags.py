from __future__ import annotations

import json
from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def duration_human(value: timedelta | None) -> str:
    """1 h 4 min, 3 min 12 s, 42 s."""
    if value is None:
        return ""
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


@register.filter
def pretty_json(value: object) -> str:
    """Indented JSON text; the template's autoescaping keeps it safe."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)


@register.filter
def ago(value) -> str:
    """“just now”, “5 minutes ago”, “2 days ago”."""
    if not value:
        return ""
    if (timezone.now() - value).total_seconds() < 60:
        return "just now"
    return f"{timesince(value).split(',')[0]} ago"
