"""Admin of the outbox: its jobs (read-only), and the backlog per kind above the list."""

from django.contrib import admin

from registry_portal.admin_base import ReadOnlyAdmin

from .models import OutboxJob
from .selectors import outbox_backlog


@admin.register(OutboxJob)
class OutboxJobAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "args", "state", "attempts", "created_at", "dispatched_at")
    list_filter = ("state", "kind")
    search_fields = ("kind", "key")
    date_hierarchy = "created_at"

    def changelist_view(self, request, extra_context=None):
        backlog = [
            {
                "kind": row.kind,
                "pending": row.pending,
                "oldest_pending_at": row.oldest_pending_at,
                "oldest_pending_age_seconds": int(row.oldest_pending_age.total_seconds())
                if row.oldest_pending_age is not None
                else None,
                "failed": row.failed,
            }
            for row in outbox_backlog()
        ]
        return super().changelist_view(request, {**(extra_context or {}), "backlog": backlog})
