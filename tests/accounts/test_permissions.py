"""The permission matrix: every kind of user × public/private × pull/push/delete/admin.

``repository_actions`` is THE answer; ``Repository.objects.restrict`` must agree with it.
"""

import pytest
from django.contrib.auth.models import AnonymousUser

from registry_portal.accounts import services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.accounts.permissions import (
    namespace_may_create_repository,
    repository_actions,
    repository_name_actions,
)
from registry_portal.registry.models import Repository
from tests import factories

ALL = {"pull", "push", "delete", "admin"}
RW = {"pull", "push"}
RO = {"pull"}
NONE: set[str] = set()


@pytest.fixture
def world(db):
    """Two organizations, every kind of user, a public and a private repository in `dev`."""
    dev = factories.make_org("dev")
    other = factories.make_org("other")
    repos = {
        "private": factories.make_repo(dev, "website", is_public=False),
        "public": factories.make_repo(dev, "docs", is_public=True),
    }
    sibling = factories.make_repo(dev, "api")
    users = {
        "anonymous": AnonymousUser(),
        "outsider": factories.make_user("outsider"),
        "org_member": factories.make_user("member"),
        "read_only": factories.make_user("reader"),
        "read_write": factories.make_user("writer"),
        "team_admin": factories.make_user("teamadmin"),
        "org_wide_rw": factories.make_user("orgwide"),
        "org_admin": factories.make_user("orgadmin"),
        "other_org_admin": factories.make_user("otheradmin"),
        "superuser": factories.make_user("root", is_superuser=True),
        "inactive_admin": factories.make_user("gone", is_active=False),
    }
    services.membership_set(organization=dev, user=users["org_member"])
    services.membership_set(organization=dev, user=users["org_admin"], is_admin=True)
    services.membership_set(organization=dev, user=users["inactive_admin"], is_admin=True)
    services.membership_set(organization=other, user=users["other_org_admin"], is_admin=True)
    for level, key in (
        (AccessLevel.READ_ONLY, "read_only"),
        (AccessLevel.READ_WRITE, "read_write"),
        (AccessLevel.ADMIN, "team_admin"),
    ):
        for repo in repos.values():
            factories.make_team(dev, members=[users[key]], level=level, repository=repo)
    # A grant on a sibling repository must not leak to the others.
    factories.make_team(
        dev, members=[users["outsider"]], level=AccessLevel.ADMIN, repository=sibling
    )
    factories.make_team(dev, members=[users["org_wide_rw"]], level=AccessLevel.READ_WRITE)
    return users, repos


# (user kind, expected on the private repository, expected on the public repository)
MATRIX = [
    ("anonymous", NONE, RO),
    ("outsider", NONE, RO),
    ("org_member", NONE, RO),
    ("read_only", RO, RO),
    ("read_write", RW, RW),
    ("team_admin", ALL, ALL),
    ("org_wide_rw", RW, RW),
    ("org_admin", ALL, ALL),
    ("other_org_admin", NONE, RO),
    ("superuser", ALL, ALL),
    ("inactive_admin", NONE, RO),
]


@pytest.mark.parametrize("visibility", ["private", "public"])
@pytest.mark.parametrize("action", sorted(ALL))
@pytest.mark.parametrize(("kind", "on_private", "on_public"), MATRIX)
def test_matrix(world, kind, on_private, on_public, visibility, action):
    users, repos = world
    expected = on_private if visibility == "private" else on_public
    allowed = repository_actions(users[kind], repos[visibility])
    assert (action in allowed) == (action in expected), (kind, visibility, action, allowed)


@pytest.mark.parametrize(("kind", "on_private", "on_public"), MATRIX)
def test_restrict_agrees_with_the_permission_function(world, kind, on_private, on_public):
    users, _ = world
    visible = set(Repository.objects.restrict(users[kind], "pull"))
    expected = {r for r in Repository.objects.all() if repository_actions(users[kind], r)}
    assert visible == expected


def test_best_grant_wins(db):
    dev = factories.make_org("dev")
    repo = factories.make_repo(dev, "website")
    user = factories.make_user()
    factories.make_team(dev, members=[user], level=AccessLevel.READ_ONLY, repository=repo)
    factories.make_team(dev, members=[user], level=AccessLevel.READ_WRITE)
    assert repository_actions(user, repo) == frozenset(RW)


def test_grants_of_another_organization_do_not_count(db):
    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    qa_repo = factories.make_repo(qa, "website")
    user = factories.make_user()
    factories.make_team(dev, members=[user], level=AccessLevel.ADMIN)  # org-wide in dev
    assert repository_actions(user, qa_repo) == frozenset()


def test_team_cannot_be_granted_a_repository_of_another_organization(db):
    from registry_portal.errors import ValidationFailed

    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    team = factories.make_team(dev)
    with pytest.raises(ValidationFailed):
        services.access_grant(
            team=team, level=AccessLevel.ADMIN, repository=factories.make_repo(qa)
        )


@pytest.mark.parametrize(
    ("kind", "namespace", "expected"),
    [
        ("anonymous", "dev", False),
        ("outsider", "dev", False),
        ("read_write", "dev", False),
        ("team_admin", "dev", False),  # admin of repositories, not of the organization
        ("org_admin", "dev", True),
        ("other_org_admin", "dev", False),
        ("superuser", "dev", True),
        ("superuser", "brand-new", True),
        ("outsider", "outsider", True),  # the personal namespace, created on first use
        ("outsider", "reader", False),  # somebody else's
        ("inactive_admin", "dev", False),
    ],
)
def test_may_create_repository(world, kind, namespace, expected):
    users, _ = world
    assert namespace_may_create_repository(users[kind], namespace) is expected


def test_owner_of_a_personal_namespace_administers_its_repositories(db):
    alice = factories.make_user("Alice.Smith")
    from registry_portal.registry.services import repository_get_or_create_for_push

    repo = repository_get_or_create_for_push(full_name="alice-smith/tools", user=alice)
    assert repo.namespace.owner == alice
    assert repository_actions(alice, repo) == frozenset(ALL)
    assert repository_actions(factories.make_user(), repo) == frozenset()


def test_name_actions_for_a_repository_not_yet_created(world):
    users, _ = world
    assert repository_name_actions(users["org_admin"], "dev/new") == frozenset(ALL)
    assert repository_name_actions(users["read_write"], "dev/new") == frozenset()
    assert repository_name_actions(users["read_write"], "dev/website") == frozenset(RW)
    assert repository_name_actions(users["anonymous"], "dev/docs") == frozenset(RO)
    assert repository_name_actions(users["org_admin"], "single") == frozenset()
