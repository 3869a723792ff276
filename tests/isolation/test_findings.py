"""Issue #10, findings 1 and 4-8, each at the level where it was found: the admin with a real
logged-in client, the REST API, and /v2/."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from promotions.models import PromotionPolicy, PromotionRecord
from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import RepositoryAccess
from registry_portal.errors import PermissionDenied
from registry_portal.registry import services as registry_services
from registry_portal.registry.models import Repository, Tag
from tests import factories
from tests.registry.helpers import V2, Registry, basic, errors


def token_client(user) -> APIClient:
    _, secret = account_services.access_token_create(user=user, name=f"t-{user.pk}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def world(db):
    """dev (admin: dev_admin; dev1 a member with a read grant on dev/website) and qa (private
    repositories and a private policy); dev/secret-payroll, granted to a team dev1 is not in."""
    dev_admin = factories.make_user("devadmin", is_staff=True)
    dev1 = factories.make_user("dev1", is_staff=True)
    qa_admin = factories.make_user("qaadmin", is_staff=True)
    qa1 = factories.make_user("qa1")
    dev = factories.make_org("dev", admin=dev_admin)
    qa = factories.make_org("qa", admin=qa_admin)
    website = factories.make_repo(dev, "website")
    payroll = factories.make_repo(dev, "secret-payroll")
    staging = factories.make_repo(dev, "staging")
    qa_website = factories.make_repo(qa, "website")
    qa_prod = factories.make_repo(qa, "prod")
    factories.make_team(dev, members=[dev1], level=AccessLevel.READ_ONLY, repository=website)
    factories.make_team(dev, name="payroll", level=AccessLevel.READ_ONLY, repository=payroll)
    qa_team = factories.make_team(qa, name="qa", members=[qa1])
    dev_policy = PromotionPolicy.objects.create(name="dev-policy", source=website, target=staging)
    qa_policy = PromotionPolicy.objects.create(
        name="qa-secret-policy", source=qa_website, target=qa_prod
    )
    return {
        "dev_admin": dev_admin,
        "dev1": dev1,
        "qa_admin": qa_admin,
        "qa1": qa1,
        "dev": dev,
        "qa": qa,
        "website": website,
        "payroll": payroll,
        "qa_website": qa_website,
        "qa_team": qa_team,
        "dev_policy": dev_policy,
        "qa_policy": qa_policy,
    }


# --- 1. cross-organization grant through the admin ---------------------------------------------


def test_admin_grant_form_offers_and_accepts_only_administered_teams(client, world):
    client.force_login(world["dev_admin"])
    add = reverse("admin:accounts_repositoryaccess_add")
    form = client.get(add).content.decode()
    assert ">qa/qa<" not in form and ">dev/payroll<" in form
    response = client.post(add, {"team": world["qa_team"].pk, "repository": "", "level": 3})
    assert response.status_code == 200  # the form again, with an error on the team
    assert "Select a valid choice" in response.content.decode()
    assert not RepositoryAccess.objects.filter(team=world["qa_team"]).exists()


def test_the_grant_service_rechecks_the_actor(world):
    with pytest.raises(PermissionDenied):
        account_services.access_grant(
            actor=world["dev_admin"], team=world["qa_team"], level=AccessLevel.ADMIN
        )
    assert not RepositoryAccess.objects.filter(team=world["qa_team"]).exists()


def test_admin_grant_change_cannot_move_a_grant_to_another_team(client, world):
    grant = RepositoryAccess.objects.get(repository=world["website"])
    client.force_login(world["dev_admin"])
    change = reverse("admin:accounts_repositoryaccess_change", args=[grant.pk])
    client.post(change, {"team": world["qa_team"].pk, "repository": "", "level": 3})
    grant.refresh_from_db()
    assert grant.team.organization_id == world["dev"].pk


# --- 4. the admin shows only what the permission rule shows ------------------------------------


def test_admin_record_filter_names_no_policy_of_another_organization(client, world):
    for policy in (world["dev_policy"], world["qa_policy"]):
        PromotionRecord.objects.create(
            idempotency_key=f"k{policy.pk}",
            policy=policy,
            policy_name=policy.name,
            source_repository=policy.source,
            source_repository_name=policy.source.full_name,
            source_tag="v1",
            digest="sha256:" + "0" * 64,
            target_repository=policy.target,
            target_repository_name=policy.target.full_name,
            trigger="push",
            outcome="promoted",
            pushed_at="2026-01-01T00:00:00Z",
        )
    PromotionPolicy.objects.create(
        name="dev-second", source=world["website"], target=world["payroll"]
    )
    client.force_login(world["dev1"])
    page = client.get(reverse("admin:promotions_promotionrecord_changelist")).content.decode()
    assert "dev-policy" in page
    assert "qa-secret-policy" not in page and "qa/website" not in page


def test_admin_repository_changelist_filters_name_only_visible_organizations(client, world):
    client.force_login(world["dev1"])
    page = client.get(reverse("admin:registry_repository_changelist")).content.decode()
    assert f"namespace__id__exact={world['qa'].pk}" not in page
    assert "dev/website" in page and "secret-payroll" not in page


# --- 5. the grants API ----------------------------------------------------------------------------


@V2
def test_grants_api_hides_grants_on_repositories_the_caller_cannot_pull(client, world):
    listed = token_client(world["dev1"]).get("/api/v1/grants/").json()["results"]
    assert listed and all("secret-payroll" not in json.dumps(grant) for grant in listed)
    pull = Registry(client, basic(world["dev1"])).get("/v2/dev/secret-payroll/tags/list")
    assert pull.status_code in (401, 403)
    # The org admin still sees it.
    admin_listed = token_client(world["dev_admin"]).get("/api/v1/grants/").json()["results"]
    assert any("secret-payroll" in json.dumps(grant) for grant in admin_listed)


# --- 6. no tag-existence oracle on promote ------------------------------------------------------


def test_promote_answers_the_same_whether_or_not_the_tag_exists(world):
    registry_services.tag_set(
        repository=world["website"], name="v1", manifest=factories.make_manifest()
    )
    client = token_client(world["dev1"])  # may pull the source, may not promote
    url = f"/api/v1/policies/{world['dev_policy'].pk}/promote/"
    existing = client.post(url, {"tag": "v1"}, format="json")
    missing = client.post(url, {"tag": "nope"}, format="json")
    assert existing.status_code == missing.status_code == 403
    assert existing.json() == missing.json()


# --- 7. rules in the lowest writer ------------------------------------------------------------


def test_admin_cannot_delete_a_tag_of_an_immutable_repository(client, world):
    world["website"].immutable_tags = True
    world["website"].save()
    tag = registry_services.tag_set(
        repository=world["website"], name="v1", manifest=factories.make_manifest()
    )
    client.force_login(world["dev_admin"])
    response = client.post(reverse("admin:registry_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Tag.objects.filter(pk=tag.pk).exists()


def test_delete_disabled_is_obeyed_by_the_api_and_the_admin(client, world, settings):
    settings.REGISTRY_DELETE_ENABLED = False
    tag = registry_services.tag_set(
        repository=world["website"], name="v1", manifest=factories.make_manifest()
    )
    response = token_client(world["dev_admin"]).delete(f"/api/v1/tags/{tag.pk}/")
    assert response.status_code == 409
    client.force_login(world["dev_admin"])
    client.post(reverse("admin:registry_tag_delete", args=[tag.pk]), {"post": "yes"})
    assert Tag.objects.filter(pk=tag.pk).exists()


@V2
def test_an_invalid_manifest_put_leaves_no_empty_repository(client, world):
    dev_admin = Registry(client, basic(world["dev_admin"]))
    response = dev_admin.put(
        "/v2/dev/brand-new/manifests/v1", b"{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert errors(response) == ["MANIFEST_INVALID"]
    assert not Repository.objects.filter(namespace=world["dev"], name="brand-new").exists()


@V2
def test_cancelling_an_upload_needs_push_not_delete(client, world):
    writer = factories.make_user("writer")
    factories.make_team(
        world["dev"], members=[writer], level=AccessLevel.READ_WRITE, repository=world["website"]
    )
    registry = Registry(client, basic(writer))
    started = registry.post("/v2/dev/website/blobs/uploads/")
    assert started.status_code == 202
    assert registry.delete(started["Location"]).status_code == 204


# --- 8. a token does not mint tokens ------------------------------------------------------------


def test_a_token_cannot_create_tokens(world):
    response = token_client(world["dev1"]).post(
        "/api/v1/me/tokens/", {"name": "heir"}, format="json"
    )
    assert response.status_code == 403
    assert not world["dev1"].access_tokens.filter(name="heir").exists()
    session = APIClient()
    session.force_login(world["dev1"])
    assert session.post("/api/v1/me/tokens/", {"name": "heir"}, format="json").status_code == 201


# --- the same kind of hole, elsewhere --------------------------------------------------------


def test_the_organization_page_hides_grants_on_repositories_the_member_cannot_pull(client, world):
    client.force_login(world["dev1"])
    page = client.get("/orgs/dev/").content.decode()
    assert "payroll" in page  # the team is listed to members
    assert "secret-payroll" not in page  # its grant on a repository dev1 cannot pull is not


def test_the_team_page_hides_grants_on_repositories_the_member_cannot_pull(client, world):
    client.force_login(world["dev1"])
    page = client.get("/orgs/dev/teams/payroll/").content.decode()
    assert "secret-payroll" not in page


def test_creating_a_team_names_no_organization_one_may_not_manage(world):
    client = token_client(world["dev1"])
    foreign = client.post("/api/v1/teams/", {"organization": "qa", "name": "x"}, format="json")
    missing = client.post("/api/v1/teams/", {"organization": "nope", "name": "x"}, format="json")
    assert foreign.status_code == missing.status_code == 400
    assert foreign.json()["error"]["fields"] == {
        "organization": [
            m.replace("nope", "qa") for m in missing.json()["error"]["fields"]["organization"]
        ]
    }
