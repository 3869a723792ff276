"""The pages themselves: sign-in, home, organizations and teams, the repository tabs."""

import re

import pytest

from promotions import services as promotion_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.models import RepositoryAccess, Team
from registry_portal.registry.models import Tag
from registry_portal.registry.services import tag_delete, tag_set
from tests import factories


def text(response) -> str:
    """The visible text of a page, whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))


def test_sign_in_and_out(client, world):
    page = client.get("/accounts/login/")
    assert page.status_code == 200 and "<title>Sign in" in page.content.decode()
    bad = client.post("/accounts/login/", {"username": "lead", "password": "nope"})
    assert bad.status_code == 200 and "correct username and password" in bad.content.decode()
    good = client.post("/accounts/login/", {"username": "lead", "password": factories.PASSWORD})
    assert good.status_code == 302 and good["Location"] == "/"
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302


def test_home_lists_organizations_and_visible_repositories(world, login):
    page = text(login(world["lead"]).get("/"))
    assert "dev/website" in page and "qa/website" in page
    page = text(login(world["reader"]).get("/"))
    assert "dev/website" in page and "qa/website" not in page
    assert "dev" in page  # the reader's organization, through a team


def test_home_search(world, login):
    factories.make_repo(world["dev"], "api", is_public=True)
    response = login(world["reader"]).get("/", {"q": "api"})
    names = [repo.name for repo in response.context["page"]]
    assert names == ["api"]


def test_organization_page_search_and_pages(world, login):
    for number in range(30):
        factories.make_repo(world["dev"], f"service-{number:02d}")
    client = login(world["dev_admin"])
    first = client.get("/orgs/dev/")
    assert len(first.context["page"].object_list) == 25
    assert first.context["page"].paginator.count == 31
    second = client.get("/orgs/dev/", {"page": 2})
    assert len(second.context["page"].object_list) == 6
    found = client.get("/orgs/dev/", {"q": "service-1"})
    assert [r.name for r in found.context["page"]] == [f"service-1{n}" for n in range(10)]


def test_organization_page_shows_only_visible_repositories(world, login):
    factories.make_repo(world["dev"], "secret")
    page = text(login(world["reader"]).get("/orgs/dev/"))
    assert "dev/website" in page and "dev/secret" not in page
    assert "developers" in page and "readers" in page  # members see the teams


def test_public_repository_makes_its_organization_visible_but_not_its_teams(world, login):
    factories.make_repo(world["qa"], "docs", is_public=True)
    response = login(world["writer"]).get("/orgs/qa/")
    assert response.status_code == 200
    assert "teams" not in response.context
    assert "qa/docs" in text(response) and "qa/website" not in text(response)


def test_org_admin_creates_a_team_and_manages_it(world, login):
    client = login(world["dev_admin"])
    response = client.post("/orgs/dev/", {"name": "release", "description": "Release managers"})
    assert response.status_code == 302 and response["Location"] == "/orgs/dev/teams/release/"
    team = Team.objects.get(organization=world["dev"], name="release")

    client.post(response["Location"], {"form": "member", "username": "reader"})
    assert list(team.members.all()) == [world["reader"]]
    client.post(response["Location"], {"form": "grant", "repository": "website", "level": "3"})
    grant = RepositoryAccess.objects.get(team=team)
    assert grant.repository == world["source"] and grant.level == AccessLevel.ADMIN
    client.post(response["Location"], {"form": "grant", "repository": "", "level": "1"})
    assert RepositoryAccess.objects.filter(team=team, repository__isnull=True).exists()

    client.post(response["Location"], {"form": "revoke", "grant": grant.pk})
    assert not RepositoryAccess.objects.filter(pk=grant.pk).exists()
    client.post(response["Location"], {"form": "remove-member", "user": world["reader"].pk})
    assert not team.members.exists()
    client.post(response["Location"], {"form": "delete"})
    assert not Team.objects.filter(pk=team.pk).exists()


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"form": "member", "username": "nobody"}, "username", "no active user"),
        ({"form": "grant", "repository": "nothing", "level": "1"}, "repository", "no repository"),
        ({"form": "grant", "repository": "", "level": "9"}, "level", "valid choice"),
    ],
)
def test_team_forms_show_errors_and_change_nothing(world, login, data, field, message):
    client = login(world["dev_admin"])
    response = client.post("/orgs/dev/teams/readers/", data)
    assert response.status_code == 400
    form = response.context["member_form" if data["form"] == "member" else "grant_form"]
    assert message in form.errors[field][0]
    team = Team.objects.get(organization=world["dev"], name="readers")
    assert list(team.members.all()) == [world["reader"]] and team.grants.count() == 1


def test_invalid_team_name_is_refused(world, login):
    response = login(world["dev_admin"]).post("/orgs/dev/", {"name": "Not Valid!"})
    assert response.status_code == 400 and response.context["team_form"].errors["name"]
    duplicate = login(world["dev_admin"]).post("/orgs/dev/", {"name": "readers"})
    assert duplicate.status_code == 400 and "already exists" in duplicate.content.decode()
    assert Team.objects.filter(organization=world["dev"]).count() == 3


@pytest.mark.parametrize("user", ["reader", "writer", "lead"])
def test_only_org_admins_manage_teams(world, login, user):
    """lead administers dev/website through a team, not the organization."""
    client = login(world[user])
    page = client.get("/orgs/dev/teams/readers/").content.decode()
    assert "Add member" not in page and "Delete team" not in page
    assert client.post("/orgs/dev/", {"name": "sneaky"}).status_code == 403
    response = client.post("/orgs/dev/teams/readers/", {"form": "delete"})
    assert response.status_code == 403
    assert Team.objects.filter(organization=world["dev"], name="readers").exists()


def test_teams_are_a_404_for_outsiders(world, login):
    assert login(world["outsider"]).get("/orgs/dev/teams/readers/").status_code == 404
    assert login(world["reader"]).get("/orgs/dev/teams/nothing/").status_code == 404


def test_overview_pull_commands_use_the_portal_host(world, login, settings):
    settings.PORTAL_URL = "https://registry.example.com"
    page = text(login(world["reader"]).get("/repos/dev/website/"))
    assert "docker pull registry.example.com/dev/website:" in page
    assert "podman pull registry.example.com/dev/website:" in page
    assert "skopeo copy docker://registry.example.com/dev/website:" in page
    assert "The public web site." in page


def test_tags_are_paged_by_name_with_a_cursor(world, login):
    for number in range(60):
        tag_set(
            repository=world["source"],
            name=f"build-{number:03d}",
            manifest=factories.make_manifest(),
        )
    client = login(world["reader"])
    first = client.get("/repos/dev/website/-/tags/")
    names = [tag.name for tag in first.context["tags"]]
    assert len(names) == 50 and names == sorted(names) and names[0] == "1.0-stable"
    second = client.get("/repos/dev/website/-/tags/" + first.context["next_url"])
    rest = [tag.name for tag in second.context["tags"]]
    assert rest == [f"build-{n:03d}" for n in range(48, 60)] and not second.context["next_url"]
    filtered = client.get("/repos/dev/website/-/tags/", {"q": "stable"})
    assert [tag.name for tag in filtered.context["tags"]] == ["1.0-stable"]


def test_provenance_badge_links_to_a_visible_source_only(world, login):
    promotion_services.policy_create(
        actor=world["lead"], source=world["source"], target=world["target"], name="To QA"
    )
    tag = Tag.objects.get(repository=world["source"], name="1.0-stable")
    record = promotion_services.promotion_manual(
        actor=world["lead"], policy=world["source"].promotion_policies.get(), tag=tag
    )
    assert record.outcome == "promoted"
    tester = factories.make_user("tester")
    factories.make_team(world["qa"], members=[tester], level=AccessLevel.READ_ONLY)
    for user, linked in ((world["lead"], True), (tester, False)):
        page = login(user).get("/repos/qa/website/-/tags/").content.decode()
        assert "Promoted from" in page and "To QA" in page
        assert ('href="/repos/dev/website/-/tags/?q=1.0-stable"' in page) == linked


def test_activity_shows_pushes_moves_deletions_and_promotion_outcomes(world, login):
    source = world["source"]
    tag_set(repository=source, name="1.1-beta", manifest=factories.make_manifest())
    tag_delete(tag=Tag.objects.get(repository=source, name="1.1-beta"))
    tag_set(repository=source, name="2.0-rc", manifest=factories.make_manifest())
    policy = promotion_services.policy_create(
        actor=world["lead"],
        source=source,
        target=world["target"],
        name="Stable only",
        rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
    )
    promotion_services.policy_apply(actor=world["lead"], policy=policy)
    page = text(login(world["reader"]).get("/repos/dev/website/-/activity/"))
    for word in ("created", "moved", "deleted", "promoted", "skipped", "does not end with"):
        assert word in page


def test_settings_grant_and_revoke_team_access(world, login):
    client = login(world["lead"])
    readers = Team.objects.get(organization=world["dev"], name="readers")
    response = client.post(
        "/repos/dev/website/-/settings/", {"form": "access", "team": readers.pk, "level": "2"}
    )
    assert response.status_code == 302
    grant = RepositoryAccess.objects.get(team=readers, repository=world["source"])
    assert grant.level == AccessLevel.READ_WRITE
    client.post(f"/repos/dev/website/-/settings/access/{grant.pk}/revoke/")
    assert not RepositoryAccess.objects.filter(pk=grant.pk).exists()
    bad = client.post("/repos/dev/website/-/settings/", {"form": "access", "team": 999999})
    assert bad.status_code == 400 and bad.context["access_form"].errors["team"]


def test_settings_form_errors_change_nothing(world, login):
    response = login(world["lead"]).post(
        "/repos/dev/website/-/settings/", {"form": "settings", "visibility": "everyone"}
    )
    assert response.status_code == 400
    assert response.context["settings_form"].errors["visibility"]
    world["source"].refresh_from_db()
    assert not world["source"].is_public
