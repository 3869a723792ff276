"""The observability app: connects the Celery signals that carry request ids into tasks."""

from django.apps import AppConfig


class ObservabilityConfig(AppConfig):
    name = "registry_portal.observability"
    label = "observability"
    verbose_name = "observability"

    def ready(self) -> None:
        from . import logs

        logs.connect_celery_signals()
