"""A page never answers 500 on a stored name outside the grammar (one stored before the
grammar was enforced: the data migration removes those, see test_migration_invalid_tags)."""

import pytest

from registry_portal.registry.models import RepositoryManifest, Tag
from scanning.models import ScanReport
from tests import factories


@pytest.fixture
def odd_tag(world):
    """Written past the services, as a tag pushed before the grammar was enforced."""
    manifest = factories.make_manifest()
    ScanReport.objects.create(manifest=manifest, status="queued")
    RepositoryManifest.objects.create(repository=world["source"], manifest=manifest)
    return Tag.objects.create(
        repository=world["source"],
        name="stable\n",
        manifest=manifest,
        pushed_at=manifest.created_at,
    )


@pytest.mark.parametrize("tab", ["", "-/tags/", "-/activity/"])
def test_repository_pages_render_a_stored_odd_tag_unlinked(world, login, odd_tag, tab):
    response = login(world["lead"]).get(f"/repos/dev/website/{tab}")

    assert response.status_code == 200
    html = response.content.decode()
    assert "stable\n" in html
    assert 'href="/repos/dev/website/-/tags/stable\n' not in html
    assert (
        'href="/repos/dev/website/-/tags/1.0-stable/vulnerabilities/"' in html
        or tab == "-/activity/"
    )


def test_the_odd_tag_has_no_page_of_its_own(world, login, odd_tag):
    client = login(world["lead"])

    assert client.get("/repos/dev/website/-/tags/stable%0A/vulnerabilities/").status_code == 404
