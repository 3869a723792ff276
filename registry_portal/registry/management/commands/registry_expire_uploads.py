"""``manage.py registry_expire_uploads``: remove abandoned blob uploads."""

from django.conf import settings
from django.core.management.base import BaseCommand

from registry_portal.registry import services


class Command(BaseCommand):
    help = "Remove blob uploads idle for longer than REGISTRY_UPLOAD_TTL_HOURS."

    def handle(self, *args, **options):
        removed = services.uploads_expire()
        self.stdout.write(
            f"Removed {removed} upload(s) idle for over {settings.REGISTRY_UPLOAD_TTL_HOURS} h."
        )
