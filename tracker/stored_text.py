"""Messages kept in the database, stored in English and translated each time they are shown.

TrackedTask.last_error, archive_error and Gateway.last_error outlive the request that wrote
them, and whoever reads them later may read another language. So a message is stored in
English, made from a `Stored` template with named %(placeholders)s, and `render()` finds the
template a stored text was made from and says it again in the reader's language. The
placeholder `said` holds the gateway's own words: shown as they are, marked as the gateway's.
The placeholder `error` holds another stored message, translated in its turn.

`Stored.gettext(...)` and `Stored.ngettext(...)` are named so that makemessages finds them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext, ngettext

PLACEHOLDER = re.compile(r"%\\\((\w+)\\\)[sd]")  # in re.escape()d text
CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af\uff00-\uffef]")
_registry: list[Stored] = []


@dataclass(frozen=True)
class Stored:
    singular: str
    plural: str = ""
    count: str = ""  # the placeholder that picks the plural form

    @classmethod
    def gettext(cls, text: str) -> Stored:
        return cls._known(cls(text))

    @classmethod
    def ngettext(cls, singular: str, plural: str, count: str) -> Stored:
        return cls._known(cls(singular, plural, count))

    @staticmethod
    def _known(stored: Stored) -> Stored:
        _registry.append(stored)
        _patterns.cache_clear()
        return stored

    def english(self, **values) -> str:
        """The text to store."""
        many = self.plural and values[self.count] != 1
        return (self.plural if many else self.singular) % values

    def translated(self, **values) -> str:
        """The text in the active language (for a message shown at once, never stored)."""
        if self.plural:
            return ngettext(self.singular, self.plural, values[self.count]) % values
        return gettext(self.singular) % values


def render(text: str) -> SafeString:
    """A stored message in the active language, as HTML; a text made from no known template
    is shown as it is (a fixed text still translated)."""
    return _render(text)[0]


def gateway_words(text: str) -> SafeString:
    """The gateway's own words, as they are, marked as the gateway's."""
    lang = ' lang="zh"' if CJK.search(text) else ""
    title = gettext("The gateway's own words")
    return format_html('<q class="gateway-words"{} title="{}">{}</q>', mark_safe(lang), title, text)


def _render(text: str) -> tuple[SafeString, bool]:
    if not text:
        return SafeString(""), False
    for stored, template, pattern in _patterns():
        match = pattern.fullmatch(text)
        if match:
            values = {name: _value(name, value) for name, value in match.groupdict().items()}
            if stored.count:
                values[stored.count] = int(match.group(stored.count))
                said = ngettext(stored.singular, stored.plural, values[stored.count])
            else:
                said = gettext(template)
            return mark_safe(escape(said) % values), True
    return escape(gettext(text)), False


def _value(name: str, value: str):
    if name == "said":
        return gateway_words(value)
    if name == "error":  # another stored message, often quoted without its final full stop
        for ending in (".", ""):
            html, known = _render(value + ending)
            if known:
                return mark_safe(html.rstrip(".。")) if ending else html
    return escape(value)


def _pattern(template: str, count: str) -> re.Pattern:
    """What a stored text made from `template` looks like: the count a number, any other
    value anything."""

    def group(placeholder: re.Match) -> str:
        name = placeholder[1]
        return rf"(?P<{name}>\d+)" if name == count else rf"(?P<{name}>.+?)"

    return re.compile(PLACEHOLDER.sub(group, re.escape(template)), re.DOTALL)


@cache
def _patterns() -> list[tuple[Stored, str, re.Pattern]]:
    """(message, English template, its pattern), the longest literal text first, so that
    "since %(since)s (last error: %(error)s)" wins over "since %(since)s"."""
    found = [
        (stored, template, _pattern(template, stored.count))
        for stored in _registry
        for template in filter(None, (stored.singular, stored.plural))
    ]
    return sorted(found, key=lambda item: -len(PLACEHOLDER.sub("", re.escape(item[1]))))
