"""Property test: for generated users, organizations, teams, grants and visibility, every
list (``restrict(user, action)``) and every row check agree with each other and with a
plain-Python reading of the rule in ``accounts.permissions``' docstring."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from promotions.models import PromotionPolicy
from registry_portal.accounts.choices import AccessLevel, Action
from registry_portal.accounts.models import (
    Organization,
    OrganizationMembership,
    RepositoryAccess,
    Team,
)
from registry_portal.accounts.permissions import (
    LEVEL_FOR_ACTION,
    organization_is_admin,
    repository_actions,
    repository_allows,
)
from registry_portal.registry.models import Repository

ACTIONS = [Action.PULL, Action.PUSH, Action.DELETE, Action.ADMIN]
ORGS, REPOS_PER_ORG, USERS, TEAMS = 2, 2, 4, 3

user_kinds = st.sampled_from(["active", "active", "active", "inactive", "superuser"])
membership = st.sampled_from([None, "member", "admin"])
grant = st.tuples(
    st.integers(0, TEAMS - 1),
    st.one_of(st.none(), st.integers(0, REPOS_PER_ORG - 1)),  # None: organization-wide
    st.sampled_from([AccessLevel.READ_ONLY, AccessLevel.READ_WRITE, AccessLevel.ADMIN]),
)
world = st.fixed_dictionaries(
    {
        "users": st.lists(user_kinds, min_size=USERS, max_size=USERS),
        "owner": st.one_of(st.none(), st.integers(0, USERS - 1)),  # org 0 personal namespace
        "public": st.lists(st.booleans(), min_size=ORGS * REPOS_PER_ORG, max_size=ORGS * 2),
        "memberships": st.lists(
            st.lists(membership, min_size=USERS, max_size=USERS), min_size=ORGS, max_size=ORGS
        ),
        # teams[org][team] = member user indexes
        "teams": st.lists(
            st.lists(
                st.frozensets(st.integers(0, USERS - 1), max_size=USERS),
                min_size=TEAMS,
                max_size=TEAMS,
            ),
            min_size=ORGS,
            max_size=ORGS,
        ),
        "grants": st.lists(st.lists(grant, max_size=4), min_size=ORGS, max_size=ORGS),
    }
)


def _expected_level(user, repository, facts) -> int:
    """The rule, read plainly: superuser, org admin or owner, best team grant, public."""
    level = AccessLevel.READ_ONLY if repository.is_public else AccessLevel.NONE
    if not (user.is_authenticated and user.is_active):
        return level
    if user.is_superuser:
        return AccessLevel.ADMIN
    org = repository.namespace_id
    if facts["owner"].get(org) == user.pk or (org, user.pk) in facts["admins"]:
        return AccessLevel.ADMIN
    for team_org, members, repository_id, granted in facts["grants"]:
        if team_org == org and user.pk in members and repository_id in (None, repository.pk):
            level = max(level, granted)
    return level


class RestrictAgreesWithRowChecks(TestCase):
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(world)
    def test_lists_and_row_checks_agree(self, data):
        user_model = get_user_model()
        users = [
            user_model.objects.create_user(
                username=f"u{index}",
                is_active=kind != "inactive",
                is_superuser=kind == "superuser",
            )
            for index, kind in enumerate(data["users"])
        ]
        orgs = [
            Organization.objects.create(
                name=f"org{index}",
                owner=users[data["owner"]] if index == 0 and data["owner"] is not None else None,
            )
            for index in range(ORGS)
        ]
        repositories = [
            Repository.objects.create(
                namespace=orgs[index // REPOS_PER_ORG],
                name=f"repo{index}",
                is_public=data["public"][index],
            )
            for index in range(ORGS * REPOS_PER_ORG)
        ]
        facts = {"owner": {}, "admins": set(), "grants": []}
        if data["owner"] is not None:
            facts["owner"][orgs[0].pk] = users[data["owner"]].pk
        for org, flags in zip(orgs, data["memberships"], strict=True):
            for user, flag in zip(users, flags, strict=True):
                if flag is not None:
                    OrganizationMembership.objects.create(
                        organization=org, user=user, is_admin=flag == "admin"
                    )
                    if flag == "admin":
                        facts["admins"].add((org.pk, user.pk))
        for org_index, (org, team_members) in enumerate(zip(orgs, data["teams"], strict=True)):
            teams = []
            for team_index, members in enumerate(team_members):
                team = Team.objects.create(organization=org, name=f"t{team_index}")
                team.members.set([users[i] for i in members])
                teams.append((team, {users[i].pk for i in members}))
            for team_index, repo_index, level in data["grants"][org_index]:
                team, members = teams[team_index]
                repository = (
                    None
                    if repo_index is None
                    else repositories[org_index * REPOS_PER_ORG + repo_index]
                )
                _, created = RepositoryAccess.objects.get_or_create(
                    team=team, repository=repository, defaults={"level": level}
                )
                if created:
                    facts["grants"].append(
                        (org.pk, members, repository.pk if repository else None, level)
                    )
        # A policy between the two organizations, to check a derived queryset.
        policy = PromotionPolicy.objects.create(
            name="p", source=repositories[0], target=repositories[-1]
        )

        for user in [AnonymousUser(), *users]:
            for action in ACTIONS:
                listed = set(Repository.objects.restrict(user, action))
                for repository in repositories:
                    expected = _expected_level(user, repository, facts) >= LEVEL_FOR_ACTION[action]
                    assert (repository in listed) == expected, (user, action, repository)
                    assert repository_allows(user, repository, action) == expected
                    assert (action in repository_actions(user, repository)) == expected
                policy_listed = PromotionPolicy.objects.restrict(user, action).exists()
                if action == Action.ADMIN:
                    policy_expected = all(
                        repository_allows(user, r, action) for r in (policy.source, policy.target)
                    )
                else:
                    policy_expected = any(
                        repository_allows(user, r, action) for r in (policy.source, policy.target)
                    )
                assert policy_listed == policy_expected, (user, action)
            for org in orgs:
                administered = Organization.objects.restrict(user, Action.ADMIN)
                assert (org in administered) == organization_is_admin(user, org)
            visible_grants = set(RepositoryAccess.objects.restrict(user, Action.PULL))
            for access in RepositoryAccess.objects.select_related("team", "repository"):
                member = user.is_authenticated and (
                    user.is_superuser
                    or (user.is_active and organization_is_member(user, access.team.organization))
                )
                may_see_target = access.repository is None or repository_allows(
                    user, access.repository, Action.PULL
                )
                assert (access in visible_grants) == bool(member and may_see_target)


def organization_is_member(user, organization) -> bool:
    return (
        organization.owner_id == user.pk
        or OrganizationMembership.objects.filter(organization=organization, user=user).exists()
    )
