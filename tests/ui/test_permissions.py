"""The permission matrix of the pages: who may see each page, and who may change things.

anonymous → sign-in page; outsider → 404 (the repository's existence is not revealed);
read-only and read-write → the reading tabs, 403 on the admin pages and actions; admin → all.
"""

import pytest

from promotions import services as promotion_services
from promotions.models import PromotionPolicy
from registry_portal.accounts.permissions import repository_allows
from registry_portal.registry.models import Repository

REPO = "/repos/dev/website/"
READ_PAGES = [REPO, f"{REPO}-/tags/", f"{REPO}-/promotions/", f"{REPO}-/activity/"]
ADMIN_PAGES = [
    f"{REPO}-/settings/",
    f"{REPO}-/promotions/new/",
    f"{REPO}-/promotions/preview/?template=%25n",
]
USERS = ["outsider", "reader", "writer", "lead", "dev_admin"]
CAN_READ = {"reader", "writer", "lead", "dev_admin"}
IS_ADMIN = {"lead", "dev_admin"}


# Pages anyone may read for a public repository; a private one is a 404 to visitors.
PUBLIC_PAGES = [
    REPO,
    f"{REPO}-/tags/",
    f"{REPO}-/tags/1.0-stable/vulnerabilities/",
    f"{REPO}-/tags/1.0-stable/components/",
]
ACCOUNT_PAGES = [f"{REPO}-/promotions/", f"{REPO}-/activity/", *ADMIN_PAGES, "/", "/orgs/dev/"]


@pytest.mark.parametrize("url", ACCOUNT_PAGES + [f"{REPO}-/tags/1.0-stable/promote/"])
@pytest.mark.parametrize("public", [False, True])
def test_anonymous_is_sent_to_sign_in_where_an_account_is_needed(client, world, url, public):
    Repository.objects.filter(pk=world["source"].pk).update(is_public=public)
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("url", PUBLIC_PAGES)
def test_anonymous_reads_public_repositories_and_not_private_ones(client, world, url):
    response = client.get(url)
    assert response.status_code == 404
    assert "Sign in" in response.content.decode()
    Repository.objects.filter(pk=world["source"].pk).update(is_public=True)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Sign in" in page and "Sign out" not in page
    assert "-/promotions/" not in page and "-/activity/" not in page  # tabs needing an account


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("url", READ_PAGES)
def test_reading_tabs(world, login, user, url):
    response = login(world[user]).get(url)
    assert response.status_code == (200 if user in CAN_READ else 404)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("url", ADMIN_PAGES)
def test_admin_pages(world, login, user, url):
    response = login(world[user]).get(url)
    expected = 200 if user in IS_ADMIN else 403 if user in CAN_READ else 404
    assert response.status_code == expected


@pytest.mark.parametrize("user", USERS)
def test_settings_change_only_by_admins(world, login, user):
    response = login(world[user]).post(
        f"{REPO}-/settings/",
        {"form": "settings", "visibility": "public", "immutable_tags": "on", "description": "x"},
    )
    source = Repository.objects.get(pk=world["source"].pk)
    if user in IS_ADMIN:
        assert response.status_code == 302
        assert source.is_public and source.immutable_tags and source.description == "x"
    else:
        assert response.status_code == (403 if user in CAN_READ else 404)
        assert not source.is_public and not source.immutable_tags


@pytest.fixture
def policy(world):
    return promotion_services.policy_create(
        actor=world["lead"],
        source=world["source"],
        target=world["target"],
        name="Stable to QA",
        rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
    )


@pytest.mark.parametrize("user", USERS)
def test_enabled_switch_only_for_admins_of_source_and_target(world, login, policy, user):
    url = f"{REPO}-/promotions/{policy.pk}/enabled/"
    response = login(world[user]).post(url, {})
    policy.refresh_from_db()
    if user == "lead":
        assert response.status_code == 302 and not policy.enabled
    else:
        # dev_admin administers the source only: changing a policy needs both.
        assert response.status_code == (403 if user in CAN_READ else 404)
        assert policy.enabled


@pytest.mark.parametrize("user", USERS)
def test_delete_needs_admin_on_source_or_target(world, login, policy, user):
    response = login(world[user]).post(f"{REPO}-/promotions/{policy.pk}/delete/")
    deleted = not PromotionPolicy.objects.filter(pk=policy.pk).exists()
    assert deleted == (user in IS_ADMIN)
    if not deleted:
        assert response.status_code == (403 if user in CAN_READ else 404)


@pytest.mark.parametrize("user", USERS)
def test_edit_form_is_for_admins_of_the_source(world, login, policy, user):
    response = login(world[user]).get(f"{REPO}-/promotions/{policy.pk}/edit/")
    assert response.status_code == (200 if user in IS_ADMIN else 403 if user in CAN_READ else 404)


def test_switch_is_hidden_from_who_may_not_change(world, login, policy):
    page = login(world["reader"]).get(f"{REPO}-/promotions/").content.decode()
    assert "Stable to QA" in page
    assert "/enabled/" not in page and "New promotion policy" not in page
    page = login(world["lead"]).get(f"{REPO}-/promotions/").content.decode()
    assert "/enabled/" in page and "New promotion policy" in page


def test_settings_tab_is_hidden_from_non_admins(world, login):
    assert "-/settings/" not in login(world["writer"]).get(REPO).content.decode()
    assert "-/settings/" in login(world["lead"]).get(REPO).content.decode()


def test_private_qa_repository_is_a_404_for_a_dev_developer(world, login):
    client = login(world["writer"])
    assert client.get("/repos/qa/website/").status_code == 404
    assert client.get("/repos/qa/website/-/tags/").status_code == 404
    assert client.get("/orgs/qa/").status_code == 404
    assert "qa/website" not in client.get("/").content.decode()


def test_incoming_policies_show_only_visible_ones(world, login, policy):
    """The qa side sees the policy into qa/website; a dev reader sees it from dev/website."""
    page = login(world["lead"]).get("/repos/qa/website/-/promotions/").content.decode()
    assert "Policies that promote into qa/website" in page and "Stable to QA" in page


@pytest.mark.parametrize("user", USERS)
def test_restrict_admin_agrees_with_the_permission_function(world, user):
    listed = set(Repository.objects.restrict(world[user], "admin"))
    for repository in Repository.objects.all():
        assert (repository in listed) == repository_allows(world[user], repository, "admin")
