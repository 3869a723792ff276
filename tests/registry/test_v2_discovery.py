"""/v2/ content discovery: tags/list and _catalog with n/last/Link, and the referrers API."""

import pytest

from registry_portal.accounts.choices import AccessLevel
from tests import factories

from .helpers import (
    OCI_INDEX,
    OCI_MANIFEST,
    V2,
    Registry,
    basic,
    descriptor,
    errors,
    image_manifest,
    sha256,
)

pytestmark = V2

CONFIG = b"{}config"


@pytest.fixture
def tagged(reg, repo):
    reg.push_blob("acme/app", CONFIG)
    content = image_manifest(CONFIG)
    for tag in ("b", "a", "C", "1.0", "latest"):
        assert reg.push_manifest("acme/app", tag, content).status_code == 201
    return ["1.0", "C", "a", "b", "latest"]


def test_tags_list_is_sorted(reg, tagged):
    response = reg.get("/v2/acme/app/tags/list")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"name": "acme/app", "tags": tagged}
    assert "Link" not in response


def test_tags_list_pagination_follows_link(reg, tagged):
    seen, path = [], "/v2/acme/app/tags/list?n=2"
    while path:
        response = reg.get(path)
        page = response.json()["tags"]
        assert len(page) <= 2
        seen += page
        link = response.get("Link")
        path = link[1 : link.index(">")] if link else None
        if link:
            assert link.endswith('>; rel="next"')
            assert len(page) == 2
    assert seen == tagged


def test_tags_list_first_page_link(reg, tagged):
    response = reg.get("/v2/acme/app/tags/list?n=2")
    assert response.json()["tags"] == ["1.0", "C"]
    assert response["Link"] == '</v2/acme/app/tags/list?n=2&last=C>; rel="next"'
    after = reg.get("/v2/acme/app/tags/list?n=10&last=b")
    assert after.json()["tags"] == ["latest"]
    assert "Link" not in after
    exact = reg.get("/v2/acme/app/tags/list?n=5")
    assert exact.json()["tags"] == tagged
    assert "Link" not in exact


def test_tags_list_n_zero_is_empty(reg, tagged):
    response = reg.get("/v2/acme/app/tags/list?n=0")
    assert response.status_code == 200
    assert response.json() == {"name": "acme/app", "tags": []}


@pytest.mark.parametrize("n", ["x", "-1", "1.5"])
def test_tags_list_bad_n(reg, tagged, n):
    response = reg.get(f"/v2/acme/app/tags/list?n={n}")
    assert response.status_code == 400
    assert errors(response) == ["PAGINATION_NUMBER_INVALID"]


def test_tags_list_of_unknown_repository(reg, org):
    response = reg.get("/v2/acme/nothing/tags/list")
    assert response.status_code == 404
    assert errors(response) == ["NAME_UNKNOWN"]


def test_catalog_lists_only_what_the_caller_may_see(client, org, owner):
    factories.make_repo(org, "public", is_public=True)
    private = factories.make_repo(org, "private")
    factories.make_repo(org, "secret")
    other_org = factories.make_org("zeta")
    factories.make_repo(other_org, "public", is_public=True)
    reader = factories.make_user("reader")
    factories.make_team(org, members=[reader], level=AccessLevel.READ_ONLY, repository=private)

    anonymous = Registry(client).get("/v2/_catalog")
    assert anonymous.status_code == 401  # a challenge: clients log in, then list
    assert 'scope="registry:catalog:*"' in anonymous["WWW-Authenticate"]
    outsider = Registry(client, basic(factories.make_user("outsider"))).get("/v2/_catalog")
    assert outsider.json() == {"repositories": ["acme/public", "zeta/public"]}
    as_reader = Registry(client, basic(reader)).get("/v2/_catalog")
    assert as_reader.json()["repositories"] == ["acme/private", "acme/public", "zeta/public"]
    as_owner = Registry(client, basic(owner)).get("/v2/_catalog?n=2")
    assert as_owner.json()["repositories"] == ["acme/private", "acme/public"]
    assert as_owner["Link"] == '</v2/_catalog?n=2&last=acme%2Fpublic>; rel="next"'
    rest = Registry(client, basic(owner)).get("/v2/_catalog?n=2&last=acme/public")
    assert rest.json()["repositories"] == ["acme/secret", "zeta/public"]
    invalid = Registry(client, basic(owner)).get("/v2/_catalog?n=-3")
    assert errors(invalid) == ["PAGINATION_NUMBER_INVALID"]


# --- Referrers -------------------------------------------------------------------------------


@pytest.fixture
def subject(reg, repo):
    reg.push_blob("acme/app", CONFIG)
    content = image_manifest(CONFIG)
    reg.push_manifest("acme/app", "v1", content)
    return content


def push_referrer(reg, subject: bytes, **extra) -> bytes:
    content = image_manifest(CONFIG, subject=descriptor(OCI_MANIFEST, subject), **extra)
    response = reg.push_manifest("acme/app", sha256(content), content)
    assert response.status_code == 201
    assert response["OCI-Subject"] == sha256(subject)
    return content


def test_referrers_of_an_unknown_subject_is_an_empty_index(reg, repo):
    response = reg.get(f"/v2/acme/app/referrers/{sha256(b'nothing')}")
    assert response.status_code == 200
    assert response["Content-Type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_list_descriptors_with_artifact_type_and_annotations(reg, subject):
    signature = push_referrer(
        reg, subject, artifactType="application/vnd.example.sig", annotations={"by": "ci"}
    )
    sbom = push_referrer(reg, subject, config_type="application/vnd.example.sbom.config")
    unrelated = image_manifest(CONFIG, annotations={"not": "a referrer"})
    reg.push_manifest("acme/app", "other", unrelated)
    response = reg.get(f"/v2/acme/app/referrers/{sha256(subject)}")
    assert response.status_code == 200
    assert "OCI-Filters-Applied" not in response
    assert response.json()["manifests"] == [
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(signature),
            "size": len(signature),
            "artifactType": "application/vnd.example.sig",
            "annotations": {"by": "ci"},
        },
        {
            "mediaType": OCI_MANIFEST,
            "digest": sha256(sbom),
            "size": len(sbom),
            "artifactType": "application/vnd.example.sbom.config",
        },
    ]


def test_referrers_artifact_type_filter(reg, subject):
    push_referrer(reg, subject, artifactType="application/vnd.example.sig")
    sbom = push_referrer(reg, subject, artifactType="application/vnd.example.sbom")
    response = reg.get(
        f"/v2/acme/app/referrers/{sha256(subject)}?artifactType=application/vnd.example.sbom"
    )
    assert response["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in response.json()["manifests"]] == [sha256(sbom)]


def test_referrers_only_from_this_repository(reg, subject, org):
    push_referrer(reg, subject, artifactType="application/vnd.example.sig")
    factories.make_repo(org, "other")
    response = reg.get(f"/v2/acme/other/referrers/{sha256(subject)}")
    assert response.json()["manifests"] == []


def test_referrers_invalid_digest(reg, repo):
    assert errors(reg.get("/v2/acme/app/referrers/latest")) == ["DIGEST_INVALID"]
