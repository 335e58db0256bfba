from __future__ import annotations

from django.contrib import admin

from .models import Profile, TrackedTask, UpstreamConnection


@admin.register(TrackedTask)
class TrackedTaskAdmin(admin.ModelAdmin):
    list_display = ["task_id", "user", "status", "progress", "action", "added_at", "last_error"]
    list_filter = ["status", "action", "missing_upstream"]
    search_fields = ["task_id", "prompt", "user__username"]
    raw_id_fields = ["user", "connection"]
    readonly_fields = ["raw", "last_checked_at", "last_error"]


@admin.register(UpstreamConnection)
class UpstreamConnectionAdmin(admin.ModelAdmin):
    """The token itself is never shown here: only its last four characters."""

    list_display = ["display_url", "masked_token", "auth_style", "last_refreshed_at", "last_error"]
    fields = ["display_url", "masked_token", "auth_style", "last_refreshed_at", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "connection"]
    raw_id_fields = ["user", "connection"]
