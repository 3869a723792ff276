"""The admin follows the permission function for non-superusers."""

import pytest
from django.urls import reverse

from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import Team
from tests import factories


@pytest.fixture
def world(db):
    dev_admin = factories.make_user("devadmin", is_staff=True)
    reader = factories.make_user("reader", is_staff=True)
    dev = factories.make_org("dev", admin=dev_admin)
    qa = factories.make_org("qa")
    dev_repo = factories.make_repo(dev, "website")
    qa_repo = factories.make_repo(qa, "website")
    factories.make_team(qa, name="testers")
    factories.make_team(dev, members=[reader], level=AccessLevel.READ_ONLY, repository=dev_repo)
    return {
        "dev_admin": dev_admin,
        "reader": reader,
        "dev": dev,
        "qa": qa,
        "dev_repo": dev_repo,
        "qa_repo": qa_repo,
    }


def test_an_org_admin_sees_and_manages_only_their_organizations(client, world):
    client.force_login(world["dev_admin"])
    listing = client.get(reverse("admin:accounts_organization_changelist")).content.decode()
    assert ">dev<" in listing and ">qa<" not in listing
    own = reverse("admin:accounts_organization_change", args=[world["dev"].pk])
    other = reverse("admin:accounts_organization_change", args=[world["qa"].pk])
    assert client.get(own).status_code == 200
    assert client.get(other).status_code in (302, 403, 404)
    teams = client.get(reverse("admin:accounts_team_changelist")).content.decode()
    assert "testers" not in teams
    qa_team = Team.objects.get(name="testers")
    delete = reverse("admin:accounts_team_delete", args=[qa_team.pk])
    client.post(delete, {"post": "yes"})
    assert Team.objects.filter(pk=qa_team.pk).exists()


def test_repositories_are_listed_as_the_permission_function_says(client, world):
    client.force_login(world["reader"])
    listing = client.get(reverse("admin:registry_repository_changelist")).content.decode()
    assert "dev/website" in listing and "qa/website" not in listing
    change = reverse("admin:registry_repository_change", args=[world["dev_repo"].pk])
    response = client.post(change, {"description": "changed", "is_public": "on"})
    world["dev_repo"].refresh_from_db()
    assert response.status_code == 403
    assert world["dev_repo"].description == "" and not world["dev_repo"].is_public
    hidden = reverse("admin:registry_repository_change", args=[world["qa_repo"].pk])
    assert client.get(hidden).status_code in (302, 403, 404)


def test_an_org_admin_cannot_create_an_organization(client, world):
    client.force_login(world["dev_admin"])
    response = client.post(reverse("admin:accounts_organization_add"), {"name": "mine"})
    assert response.status_code == 403
