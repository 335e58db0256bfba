"""`python manage.py refresh_tasks`: keep every tracked task current with no browser open,
until SIGTERM. `--once` runs a single pass and stops (for cron, or a test)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from tracker.worker import Loop


class Command(BaseCommand):
    help = "Refresh every unfinished task that is due, in a loop (the worker's refresh half)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="One pass, then stop.")
        parser.add_argument("--tick", type=float, default=1.0, help="Seconds between passes.")

    def handle(self, *args, once: bool = False, tick: float = 1.0, **options) -> None:
        loop = Loop(tick=tick)
        if once:
            refreshed = loop.once()
            self.stdout.write(f"refreshed {refreshed} gateway(s)")
            return
        loop.run()
