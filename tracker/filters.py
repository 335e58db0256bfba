"""Finding tasks: the filters and sorts a list takes from its URL, so that every view of
one's own tasks is a bookmarkable address. Pure: a GET in, a filtered, ordered queryset out."""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from .models import Status, Tag, TrackedTaskQuerySet

STATUSES = {
    "running": TrackedTaskQuerySet.UNFINISHED,
    "done": TrackedTaskQuerySet.DONE,
    "failed": TrackedTaskQuerySet.FAILED,
    "input": Q(status=Status.MODAL),
}
SORTS = {
    "": (_("running first, then newest"), None),
    "-submitted": (_("newest submitted"), ["-submitted_at"]),
    "submitted": (_("oldest submitted"), ["submitted_at"]),
    "-finished": (_("newest finished"), ["-finished_at"]),
    "finished": (_("oldest finished"), ["finished_at"]),
    "-added": (_("newest added"), ["-added_at"]),
    "added": (_("oldest added"), ["added_at"]),
}


class TaskFilter(forms.Form):
    """Everything optional; an unknown value is dropped, never an error page."""

    q = forms.CharField(required=False, max_length=200, label=_("Prompt contains"))
    status = forms.MultipleChoiceField(
        required=False,
        choices=[
            ("running", _("Running")),
            ("done", _("Done")),
            ("failed", _("Failed")),
            ("input", _("Needs input")),
        ],
        widget=forms.CheckboxSelectMultiple,
    )
    action = forms.CharField(required=False, max_length=32)
    tag = forms.CharField(required=False, max_length=Tag.MAX_LENGTH)
    since = forms.DateField(
        required=False, label=_("Submitted from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False,
        label=pgettext_lazy("date range", "to"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    sort = forms.ChoiceField(required=False, choices=[(k, v[0]) for k, v in SORTS.items()])
    fav = forms.BooleanField(required=False, label=_("Favourites only"))
    hidden = forms.BooleanField(required=False, label=_("Hidden ones"))

    def __init__(self, data, rows: QuerySet, *, statuses: bool = True) -> None:
        """`rows`: what the list can show; its actions are the action filter's choices."""
        super().__init__(data)
        actions = rows.exclude(action="").order_by("action").values_list("action", flat=True)
        owner = rows.order_by().values("user")[:1]
        tags = Tag.objects.filter(user__in=owner).values_list("name", flat=True)
        if not statuses:  # the gallery holds finished images only, newest finished first
            del self.fields["status"]
            self.fields["sort"].choices = [
                ("", _("newest finished")),
                *((k, v[0]) for k, v in SORTS.items() if k not in ("", "-finished")),
            ]
        # The menus' choices are asked only when the form is drawn, and then once.
        self.fields["action"].widget = forms.Select(
            choices=_once(_("Any action"), actions.distinct())
        )
        self.fields["tag"].widget = forms.Select(choices=_once(_("Any tag"), tags.order_by("name")))

    @property
    def active(self) -> bool:
        """Does anything narrow the list (a sort alone does not)?"""
        values = self.values()
        names = ("q", "status", "action", "tag", "since", "until", "fav", "hidden")
        return any(values.get(name) for name in names)

    def values(self) -> dict:
        """The cleaned values; a field with a bad value counts as empty."""
        self.is_valid()
        cleaned = getattr(self, "cleaned_data", {})
        return {name: cleaned.get(name) for name in self.fields}

    def apply(self, rows: QuerySet, default_sort: str = "") -> QuerySet:
        values = self.values()
        rows = rows.filter(hidden=bool(values["hidden"]))  # hidden ones only when asked
        if values["fav"]:
            rows = rows.filter(favourite=True)
        if values["q"]:
            rows = rows.filter(
                Q(prompt__icontains=values["q"]) | Q(prompt_en__icontains=values["q"])
            )
        if values.get("status"):
            wanted = Q()
            for name in values["status"]:
                wanted |= STATUSES[name]
            rows = rows.filter(wanted)
        if values["action"]:
            rows = rows.filter(action=values["action"].upper())
        if values["tag"]:
            rows = rows.filter(tags__name=values["tag"])
        if values["since"]:
            rows = rows.filter(submitted_at__gte=_start_of(values["since"]))
        if values["until"]:
            rows = rows.filter(submitted_at__lt=_start_of(values["until"]) + timedelta(days=1))
        order = SORTS.get(values["sort"] or default_sort, SORTS[""])[1]
        if order is None:  # what is running first, then the newest
            return rows.order_by("finished_rank", "-added_at", "-id")
        field = order[0].lstrip("-")
        first = (
            F(field).desc(nulls_last=True)
            if order[0].startswith("-")
            else F(field).asc(nulls_last=True)
        )
        return rows.order_by(first, "-id")


def _once(empty: str, values: QuerySet):
    """A menu's choices, read from the database the first time they are needed only."""
    return functools.cache(lambda: [("", empty), *((value, value) for value in values)])


def _start_of(day: date) -> datetime:
    """Midnight of `day` where the user is; a day at the calendar's very ends (year 1 or
    9999, which a typed URL can ask for) is brought in a little, so no sum overflows."""
    day = min(max(day, date.min + timedelta(days=2)), date.max - timedelta(days=2))
    return timezone.make_aware(datetime.combine(day, time.min))


def query_string(get) -> str:
    """The URL's filters without its page number, for links that keep them."""
    kept = get.copy()
    kept.pop("page", None)
    kept.pop("poll", None)
    return kept.urlencode()
