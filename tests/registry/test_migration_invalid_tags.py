"""registry.0002 removes tags stored outside the grammar (deterministically, with a history
event) and keeps their images in the repository."""

import pytest
from django.db import connection
from django.utils import timezone

from tests.support.migrations import migrate, migrate_to_latest

BEFORE = [("registry", "0001_initial")]
AFTER = [("registry", "0002_i11a_grammar")]


@pytest.mark.django_db(transaction=True)
def test_tags_outside_the_grammar_are_removed_with_a_history_event():
    apps = migrate(BEFORE)
    try:
        Organization = apps.get_model("accounts", "Organization")
        Repository = apps.get_model("registry", "Repository")
        Manifest = apps.get_model("registry", "Manifest")
        RepositoryManifest = apps.get_model("registry", "RepositoryManifest")
        Tag = apps.get_model("registry", "Tag")
        repository = Repository.objects.create(
            namespace=Organization.objects.create(name="dev"), name="website"
        )
        manifest = Manifest.objects.create(
            digest="sha256:" + "a" * 64,
            media_type="application/vnd.oci.image.manifest.v1+json",
            content=b"{}",
            size=2,
        )
        RepositoryManifest.objects.create(repository=repository, manifest=manifest)
        # A name over 128 characters can be stored only where the column's length is not
        # enforced (SQLite); PostgreSQL refuses it, so it cannot be found there.
        too_long = ["x" * 129] if connection.vendor == "sqlite" else []
        for name in ("stable", "stable\n", " padded", ".hidden", *too_long):
            Tag.objects.create(
                repository=repository, name=name, manifest=manifest, pushed_at=timezone.now()
            )

        apps = migrate(AFTER)

        Tag = apps.get_model("registry", "Tag")
        TagEvent = apps.get_model("registry", "TagEvent")
        RepositoryManifest = apps.get_model("registry", "RepositoryManifest")
        assert list(Tag.objects.values_list("name", flat=True)) == ["stable"]
        events = TagEvent.objects.order_by("tag_name")
        assert sorted(event.tag_name for event in events) == sorted(
            [" padded", ".hidden", "stable\n", *too_long]
        )
        assert all(event.old_digest == manifest.digest and not event.new_digest for event in events)
        assert {event.provenance["removed_by"] for event in events} == {"migration registry.0002"}
        # The image stays in the repository, pullable by digest.
        assert RepositoryManifest.objects.filter(manifest__digest=manifest.digest).exists()
    finally:
        migrate_to_latest()
