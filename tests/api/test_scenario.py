"""The automation story of the reference, through the API with tokens only: a superuser's
token creates the organizations dev and qa with their leads; the lead's token creates teams,
grants, repositories and the seed policy (tag ends with `stable` → qa/website as
%Y%m%d-%H%M%S); a developer pushes; the API shows the promotion record and the promoted tag
with its provenance."""

import re

from registry_portal.accounts.models import Organization
from registry_portal.registry.models import Repository
from registry_portal.registry.services import tag_set
from tests import factories

from .conftest import token_client


def test_the_seed_story_through_the_api(db, eager_tasks, django_capture_on_commit_callbacks):
    root = token_client(factories.make_user("ci-root", is_superuser=True))
    lead_user = factories.make_user("lead")
    developer = factories.make_user("dev1")
    tester = factories.make_user("qa1")
    lead = token_client(lead_user)

    for name in ("dev", "qa"):
        created = root.post(
            "/api/v1/organizations/", {"name": name, "admin": "lead"}, format="json"
        )
        assert created.status_code == 201, created.json()
    assert lead.post("/api/v1/organizations/", {"name": "x"}, format="json").status_code == 403

    for namespace in ("dev", "qa"):
        created = lead.post(
            "/api/v1/repositories/", {"namespace": namespace, "name": "website"}, format="json"
        )
        assert created.status_code == 201, created.json()
    repositories = {
        r["full_name"]: r["id"] for r in lead.get("/api/v1/repositories/").json()["results"]
    }
    teams = {}
    for organization, team_name, member in (
        ("dev", "developers", "dev1"),
        ("qa", "testers", "qa1"),
    ):
        team = lead.post(
            "/api/v1/teams/",
            {"organization": organization, "name": team_name, "members": [member]},
            format="json",
        )
        assert team.status_code == 201, team.json()
        teams[organization] = team.json()["id"]
        grant = lead.post(
            "/api/v1/grants/",
            {
                "team_id": teams[organization],
                "repository_id": repositories[f"{organization}/website"],
                "level": "read-write",
            },
            format="json",
        )
        assert grant.status_code == 201, grant.json()

    # Developers need no access to QA's repository, and QA none to development's.
    developer_view = token_client(developer).get("/api/v1/repositories/").json()["results"]
    assert [r["full_name"] for r in developer_view] == ["dev/website"]

    policy = lead.post(
        "/api/v1/policies/",
        {
            "name": "to QA",
            "source": "dev/website",
            "target": "qa/website",
            "rules": [{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
            "tag_template": "%Y%m%d-%H%M%S",
        },
        format="json",
    )
    assert policy.status_code == 201, policy.json()
    policy_id = policy.json()["id"]

    source = Repository.objects.get(namespace__name="dev", name="website")
    manifest = factories.make_manifest()
    with django_capture_on_commit_callbacks(execute=True):
        tag_set(repository=source, name="1.0-stable", manifest=manifest, actor=developer)
    with django_capture_on_commit_callbacks(execute=True):
        tag_set(repository=source, name="1.0", manifest=factories.make_manifest(), actor=developer)

    records = lead.get(f"/api/v1/promotion-records/?policy_id={policy_id}").json()["results"]
    by_tag = {record["source_tag"]: record for record in records}
    assert by_tag["1.0-stable"]["outcome"] == "promoted"
    assert by_tag["1.0"]["outcome"] == "skipped"
    promoted_record = by_tag["1.0-stable"]
    assert promoted_record["trigger"] == "push"
    assert promoted_record["triggered_by"] == "dev1"
    assert re.fullmatch(r"\d{8}-\d{6}", promoted_record["target_tag"])

    # QA sees the promoted tag, with its provenance, without any access to dev/website.
    qa_tags = token_client(tester).get("/api/v1/tags/?repository=qa/website").json()["results"]
    assert [t["name"] for t in qa_tags] == [promoted_record["target_tag"]]
    promoted = qa_tags[0]
    assert promoted["digest"] == manifest.digest
    assert promoted["provenance"]["source_repository"] == "dev/website"
    assert promoted["provenance"]["source_tag"] == "1.0-stable"
    assert promoted["provenance"]["policy_id"] == policy_id
    assert promoted["provenance"]["record_id"] == promoted_record["id"]
    detail = token_client(tester).get(f"/api/v1/tags/{promoted['id']}/").json()
    assert detail["provenance"] == promoted["provenance"]
    assert Organization.objects.get(name="dev").memberships.get(user=lead_user).is_admin
