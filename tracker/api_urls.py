"""The JSON API's routes, under /api/ (tracker/views/api.py)."""

from __future__ import annotations

urlpatterns: list = []
