from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def _create_cache_table(using: str = "default", **kwargs) -> None:
    """`migrate` also creates the database cache's table (the throttling counters live
    there when no Redis is configured); a no-op for other caches and when it exists."""
    call_command("createcachetable", database=using, verbosity=0)


class AccountsConfig(AppConfig):
    name = "registry_portal.accounts"
    label = "accounts"
    verbose_name = "Accounts and access"

    def ready(self) -> None:
        post_migrate.connect(_create_cache_table, sender=self)
