"""Create the demo user and track the sandbox seed's tasks (plus an ID nobody knows), with
the tags, favourites and notes the seed's "demo_marks" give some of them."""

from __future__ import annotations

import json
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from tracker import archive, tagging
from tracker.gateway import track
from tracker.models import TrackedTask


class Command(BaseCommand):
    help = "Create (or reset) the demo user and track the task IDs listed in a seed file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("seed", type=Path, help="the sandbox seed JSON file")
        parser.add_argument("--username", default="demo")
        parser.add_argument("--password", default="demo-password")

    def handle(self, *args, seed: Path, username: str, password: str, **options) -> None:
        try:
            data = json.loads(seed.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read the seed file {seed}: {exc}") from exc
        ids = [task["id"] for task in data.get("tasks", [])] + data.get("unknown_ids", [])
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.set_password(password)
        user.save()
        archive.forget(TrackedTask.objects.filter(user=user))
        result = track(user, "\n".join(ids))  # the list shows them in the seed's order
        for task_id, marks in data.get("demo_marks", {}).items():  # tags, stars, notes
            row = TrackedTask.objects.filter(user=user, task_id=task_id).first()
            if row is None:
                continue
            tagging.replace(row, marks.get("tags", ""))
            row.favourite, row.note = bool(marks.get("favourite")), marks.get("note", "")
            row.save(update_fields=["favourite", "note"])
        state = "asked the sandbox" if result.gateway_ok else "the sandbox did not answer yet"
        self.stdout.write(f"demo user {username!r}: {len(result.added)} tasks tracked ({state})")
