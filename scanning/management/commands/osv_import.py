"""`manage.py osv_import PATH`: load an OSV all.zip as a new snapshot (the offline path)."""

from django.core.management.base import BaseCommand, CommandError

from scanning import services


class Command(BaseCommand):
    help = "Import an OSV all.zip as a new snapshot, activate it and re-match stored images."

    def add_arguments(self, parser):
        parser.add_argument("path", help="an OSV all.zip (one JSON record per entry)")

    def handle(self, *args, path: str, **options):
        try:
            with open(path, "rb") as handle:
                snapshot = services.osv_import_zip(path_or_file=handle, source=path)
        except OSError as error:
            raise CommandError(f"cannot read {path}: {error}") from error
        if snapshot.status != "ready":
            raise CommandError(f"snapshot {snapshot.pk} failed: {snapshot.error}")
        self.stdout.write(
            f"snapshot {snapshot.pk}: {snapshot.record_count} records, "
            f"{snapshot.malformed_count} malformed entries skipped"
        )
        for entry in snapshot.malformed:
            self.stderr.write(f"  malformed: {entry}")
