"""`manage.py osv_sync [URL]`: download OSV data (ETag-conditional) as a new snapshot."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scanning import services


class Command(BaseCommand):
    help = "Download an OSV all.zip from URL (default: OSV_SYNC_URL) unless it is unchanged."

    def add_arguments(self, parser):
        parser.add_argument("url", nargs="?", default="", help="default: the OSV_SYNC_URL setting")

    def handle(self, *args, url: str, **options):
        url = url or settings.OSV_SYNC_URL
        if not url:
            raise CommandError("no URL given and OSV_SYNC_URL is empty")
        snapshot = services.osv_sync_url(url=url)
        if snapshot is None:
            self.stdout.write("unchanged (304): no new snapshot")
            return
        if snapshot.status != "ready":
            raise CommandError(f"snapshot {snapshot.pk} failed: {snapshot.error}")
        self.stdout.write(f"snapshot {snapshot.pk}: {snapshot.record_count} records")
