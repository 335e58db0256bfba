"""The JSON API's routes, under /api/ (tracker/views/api.py)."""

from __future__ import annotations

from django.urls import path, re_path

from .views import api

urlpatterns = [
    path("tasks/", api.task_list, name="api_tasks"),
    path("tasks/<str:task_id>/", api.task_detail, name="api_task"),
    path("openapi.json", api.openapi, name="api_schema"),
    re_path(r"", api.not_found),  # last: anything else under /api/ is a JSON 404
]
