from __future__ import annotations

from django.contrib import admin
from django.db import transaction

from .models import Channel, Delivery, Gateway, Profile, TaskOwner, TrackedTask


@admin.register(TrackedTask)
class TrackedTaskAdmin(admin.ModelAdmin):
    list_display = ["task_id", "user", "status", "progress", "action", "added_at", "last_error"]
    list_filter = ["status", "action", "missing_at_gateway"]
    search_fields = ["task_id", "prompt", "user__username"]
    raw_id_fields = ["user", "gateway"]
    readonly_fields = ["raw", "last_checked_at", "last_error"]


@admin.register(Gateway)
class GatewayAdmin(admin.ModelAdmin):
    """The token itself is never shown here: only its last four characters."""

    list_display = ["display_url", "masked_token", "auth_style", "last_refreshed_at", "last_error"]
    fields = ["display_url", "masked_token", "auth_style", "last_refreshed_at", "last_error"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "gateway"]
    raw_id_fields = ["user", "gateway"]


@admin.register(TaskOwner)
class TaskOwnerAdmin(admin.ModelAdmin):
    """Who owns a task on the shared gateway. Changing the user reassigns the task: the old
    owner's row moves to the new owner (replacing any placeholder row the new owner had),
    so the task's state follows it and the old owner no longer sees it."""

    list_display = ["task_id", "user", "gateway", "claimed_at"]
    search_fields = ["task_id", "user__username"]
    raw_id_fields = ["user", "gateway"]
    readonly_fields = ["gateway", "task_id", "claimed_at"]

    def has_add_permission(self, request) -> bool:
        return False

    @transaction.atomic
    def save_model(self, request, obj, form, change) -> None:
        previous = TaskOwner.objects.get(pk=obj.pk).user_id if change else None
        super().save_model(request, obj, form, change)
        if previous is None or previous == obj.user_id:
            return
        rows = TrackedTask.objects.filter(gateway=obj.gateway, task_id=obj.task_id)
        old = rows.filter(user_id=previous).first()
        if old is not None:
            rows.filter(user_id=obj.user_id).delete()
            old.user_id = obj.user_id
            old.save(update_fields=["user"])


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    """A user's notification channel. Its secret (and a webhook URL's path, which may hold a
    key) is never shown here: only their last four characters."""

    list_display = ["user", "kind", "display_target", "digest", "last_outcome", "last_attempt_at"]
    list_filter = ["kind", "last_outcome"]
    search_fields = ["user__username"]
    fields = ["user", "kind", "display_target", "masked_secret", "digest", "last_outcome"]
    fields += ["last_error", "last_attempt_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """Every message sent or owed, with its attempts and last error (read only)."""

    list_display = ["pk", "channel", "test", "state", "attempts", "last_attempt_at", "last_error"]
    list_filter = ["state", "test"]
    fields = ["channel", "test", "state", "attempts", "created_at", "due_at", "lease_until"]
    fields += ["last_attempt_at", "last_error", "sent_at"]
    readonly_fields = fields

    def has_add_permission(self, request) -> bool:
        return False
