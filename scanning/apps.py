from django.apps import AppConfig


class ScanningConfig(AppConfig):
    name = "scanning"
    verbose_name = "Scanning"

    def ready(self) -> None:
        from registry_portal.outbox.services import sweep_hook_register

        from . import signals  # noqa: F401 - connects the receivers
        from .sweeps import scans_requeue_stale

        sweep_hook_register(scans_requeue_stale)
