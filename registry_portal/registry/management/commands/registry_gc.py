"""``manage.py registry_gc [--dry-run]``: remove manifests and blobs nothing references."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand

from registry_portal.registry import services


class Command(BaseCommand):
    help = (
        "Delete manifests in no repository and blobs no repository or manifest uses, older "
        "than a grace period. Safe while pushes run: every row is locked and re-checked."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would go; change nothing."
        )
        parser.add_argument(
            "--grace-minutes",
            type=int,
            default=settings.REGISTRY_GC_GRACE_MINUTES,
            help="Keep anything younger than this (default: REGISTRY_GC_GRACE_MINUTES).",
        )

    def handle(self, *args, dry_run: bool, grace_minutes: int, **options):
        report = services.garbage_collect(dry_run=dry_run, grace=timedelta(minutes=grace_minutes))
        verb = "Would remove" if dry_run else "Removed"
        for digest in report.manifests:
            self.stdout.write(f"manifest {digest}")
        for digest in report.blobs:
            self.stdout.write(f"blob {digest}")
        self.stdout.write(
            f"{verb} {len(report.manifests)} manifest(s) and {len(report.blobs)} blob(s), "
            f"{report.bytes_freed} bytes."
        )
