from django.apps import AppConfig


class PromotionsConfig(AppConfig):
    name = "promotions"
    verbose_name = "Promotions"

    def ready(self) -> None:
        from registry_portal.outbox.services import sweep_hook_register

        from . import signals  # noqa: F401 - connects the receivers
        from .sweeps import promotions_resume_forgotten

        sweep_hook_register(promotions_resume_forgotten)
