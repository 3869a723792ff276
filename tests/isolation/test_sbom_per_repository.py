"""Issue #10, finding 2, the rest of it: an SBOM counts for an image only in the repositories
where the SBOM referrer itself is linked. dev1 may pull qa's image, copies it into his own
repository and attaches an SBOM there; qa/website does not see it, dev1's repository does."""

from __future__ import annotations

import json

import pytest
from django.utils import timezone

from promotions import services as promotion_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry import services as registry_services
from registry_portal.registry import storage
from registry_portal.registry.models import Tag
from scanning import selectors
from scanning import services as scan_services
from tests import factories
from tests.scanning import db_images

INVENTED = json.dumps(
    {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "components": [
            {
                "type": "library",
                "name": "invented",
                "version": "1.0.0",
                "purl": "pkg:npm/invented@1.0.0",
                "licenses": [{"license": {"id": "WTFPL"}}],
            }
        ],
    }
).encode()
INVENTED_CRITICAL = db_images.osv_record(
    "GHSA-inve-nted-crit",
    "npm",
    "invented",
    [{"introduced": "0"}],
    severity=[{"type": "CVSS_V3", "score": db_images.CRITICAL_VECTOR}],
)
CRITICAL_ZERO = [{"field": "vulns_critical", "operator": "eq", "values": ["0"]}]


def copy_image(image, repository) -> None:
    """What `skopeo copy` does: upload every blob of the image, then put the same bytes."""
    body = json.loads(bytes(image.content))
    for descriptor in [body["config"], *body["layers"]]:
        with storage.blob_open(descriptor["digest"]) as handle:
            db_images.store_blob(repository, handle.read())
    registry_services.manifest_put(
        repository=repository,
        reference="copied",
        content=bytes(image.content),
        content_type=image.media_type,
    )


@pytest.fixture
def world(db):
    qa_admin = factories.make_user("qa-admin")
    dev1 = factories.make_user("dev1")
    qa = factories.make_org("qa", admin=qa_admin)
    website = factories.make_repo(qa, "website")
    prod = factories.make_repo(qa, "prod")
    qa_team = factories.make_team(qa, name="readers", members=[dev1], level=AccessLevel.READ_ONLY)
    assert qa_team  # dev1 may pull qa/website, not push to it
    personal = registry_services.repository_create_in_namespace(
        actor=dev1, namespace_name="dev1", name="copy"
    )
    scan_services.osv_import_zip(
        path_or_file=db_images.osv_zip([*db_images.STANDARD_RECORDS, INVENTED_CRITICAL]),
        source="s.zip",
    )
    image = db_images.push_image(website, [[db_images.DEBIAN_OS_RELEASE]], tag="v1")
    scan_services.scan_manifest(manifest_id=image.pk)
    copy_image(image, personal)
    referrer = db_images.push_referrer(personal, image, INVENTED, "application/vnd.cyclonedx+json")
    scan_services.sbom_ingest(manifest=image)
    return {
        "qa_admin": qa_admin,
        "dev1": dev1,
        "website": website,
        "prod": prod,
        "personal": personal,
        "image": image,
        "referrer": referrer,
    }


def names(queryset) -> set[str]:
    return {component.name for component in queryset}


def test_the_sbom_shows_only_where_its_referrer_is_linked(world):
    image, website, personal = world["image"], world["website"], world["personal"]
    report = selectors.report_for_manifest(manifest=image, repository=website)
    assert "invented" not in names(selectors.report_components(report=report, repository=website))
    assert not selectors.report_findings(report=report, repository=website).exists()
    assert report.critical == 0 and f"sbom:{world['referrer'].digest}" not in report.sources
    summary = selectors.scan_summaries_for_tags(pairs=[(website.pk, image.pk)])[
        (website.pk, image.pk)
    ]
    assert summary.vulnerability_counts["critical"] == 0 and "WTFPL" not in summary.licenses
    facts = selectors.manifest_scan_facts(manifest=image, repository=website)
    assert facts.vulnerability_counts["critical"] == 0 and "invented" not in facts.component_names

    # dev1's own repository shows what he linked there.
    mine = selectors.report_for_manifest(manifest=image, repository=personal)
    assert names(selectors.report_components(report=mine, repository=personal)) == {"invented"}
    assert mine.critical == 1 and mine.component_count == report.component_count + 1
    summary = selectors.scan_summaries_for_tags(pairs=[(personal.pk, image.pk)])[
        (personal.pk, image.pk)
    ]
    assert summary.vulnerability_counts["critical"] == 1 and "WTFPL" in summary.licenses
    facts = selectors.manifest_scan_facts(manifest=image, repository=personal)
    assert facts.vulnerability_counts["critical"] == 1 and "invented" in facts.component_names


def test_a_critical_zero_policy_on_qa_website_is_not_gated_by_the_foreign_sbom(world):
    tag = Tag.objects.get(repository=world["website"], name="v1")
    rows = promotion_services.policy_dry_run(
        actor=world["qa_admin"], source=world["website"], rules=CRITICAL_ZERO, target=world["prod"]
    )
    assert [(row.tag, row.outcome) for row in rows] == [("v1", "match")], rows
    facts = promotion_services.image_facts(
        manifest=world["image"],
        repository=world["website"],
        tag_name=tag.name,
        pushed_at=timezone.now(),
        need_scan=True,
    )
    assert facts.vulnerability_counts["critical"] == 0
    # In dev1's repository the same image, with his SBOM, has the critical vulnerability.
    rows = promotion_services.policy_dry_run(
        actor=world["dev1"], source=world["personal"], rules=CRITICAL_ZERO
    )
    assert [row.outcome for row in rows] == ["no_match"]


def test_qa_website_pages_and_api_do_not_show_the_foreign_sbom(world, client):
    client.force_login(world["qa_admin"])
    base = "/repos/qa/website/-/tags/v1"
    components = client.get(f"{base}/components/").content.decode()
    vulnerabilities = client.get(f"{base}/vulnerabilities/").content.decode()
    assert "invented" not in components and "GHSA-inve-nted-crit" not in vulnerabilities
    assert world["referrer"].digest not in components + vulnerabilities
    client.force_login(world["dev1"])
    mine = client.get("/repos/dev1/copy/-/tags/copied/components/").content.decode()
    assert "invented" in mine


def test_the_activity_tab_counts_the_sbom_only_where_its_referrer_is_linked(world, client):
    client.force_login(world["qa_admin"])
    theirs = client.get("/repos/qa/website/-/activity/").content.decode()
    assert 'title="0 critical"' in theirs and 'title="1 critical"' not in theirs
    client.force_login(world["dev1"])
    mine = client.get("/repos/dev1/copy/-/activity/").content.decode()
    assert 'title="1 critical"' in mine


def test_the_api_shows_the_sbom_only_where_its_referrer_is_linked(world):
    from tests.isolation.test_findings import token_client

    qa = token_client(world["qa_admin"])
    tags = qa.get("/api/v1/tags/").json()["results"]
    [v1] = [tag for tag in tags if tag["repository"] == "qa/website"]
    assert v1["scan"]["vulnerabilities"]["critical"] == 0
    assert "WTFPL" not in v1["scan"]["licenses"]
    components = qa.get("/api/v1/components/").json()["results"]
    assert components is not None and "invented" not in json.dumps(components)
    assert "GHSA-inve-nted-crit" not in json.dumps(qa.get("/api/v1/findings/").json())
    dev1 = token_client(world["dev1"])
    tags = dev1.get("/api/v1/tags/").json()["results"]
    by_repository = {tag["repository"]: tag["scan"] for tag in tags}
    assert by_repository["qa/website"]["vulnerabilities"]["critical"] == 0
    assert by_repository["dev1/copy"]["vulnerabilities"]["critical"] == 1
    assert "invented" in json.dumps(dev1.get("/api/v1/components/").json())


def test_an_sbom_on_a_platform_counts_for_the_index_only_where_linked(world):
    website, personal = world["website"], world["personal"]
    platform = db_images.push_image(website, [[db_images.DEBIAN_OS_RELEASE]], salt="p", tag=None)
    index = db_images.push_index(website, [(platform, "linux/amd64")], tag="multi")
    scan_services.scan_manifest(manifest_id=index.pk)
    copy_image(platform, personal)
    db_images.push_referrer(personal, platform, INVENTED, "application/vnd.cyclonedx+json")
    scan_services.sbom_ingest(manifest=platform)
    pairs = [(website.pk, index.pk), (personal.pk, index.pk)]
    summaries = selectors.scan_summaries_for_tags(pairs=pairs)
    assert summaries[(website.pk, index.pk)].vulnerability_counts["critical"] == 0
    assert summaries[(personal.pk, index.pk)].vulnerability_counts["critical"] == 1
    assert selectors.manifest_scan_facts(manifest=index, repository=website).components == (
        selectors.manifest_scan_facts(manifest=index, repository=None).components
    )
    facts = selectors.manifest_scan_facts(manifest=index, repository=personal)
    assert ("npm", "invented") in facts.components
    assert facts.vulnerability_counts["critical"] == 1
