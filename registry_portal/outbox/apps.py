from django.apps import AppConfig


class OutboxConfig(AppConfig):
    name = "registry_portal.outbox"
    label = "outbox"
    verbose_name = "Outbox (follow-up work)"
