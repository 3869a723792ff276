"""The permission matrix through the Django admin, with a real logged-in client: every kind of
staff user × the add and change forms (the foreign-key choices they offer), the changelists
(the rows) and their relation filters (the objects they name), and the change and delete
rights on rows. Every answer must be the one ``<Model>.objects.restrict(user, action)`` gives.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from promotions.models import PromotionPolicy, PromotionRecord
from registry_portal.accounts.choices import AccessLevel, Action
from registry_portal.accounts.models import Organization, RepositoryAccess, Team
from registry_portal.registry.models import Repository, Tag
from registry_portal.registry.services import tag_set
from tests import factories

KINDS = ("outsider", "reader", "writer", "repo_admin", "org_admin", "superuser")


@pytest.fixture
def world(db):
    """dev and qa, each with a private and a public repository, a policy each way, a tag and a
    record in each; staff users of every kind on dev."""
    users = {
        kind: factories.make_user(kind, is_staff=True, is_superuser=kind == "superuser")
        for kind in KINDS
    }
    dev = factories.make_org("dev", admin=users["org_admin"])
    qa = factories.make_org("qa", admin=factories.make_user("qaadmin", is_staff=True))
    repos = {}
    for org in (dev, qa):
        repos[f"{org.name}/private"] = factories.make_repo(org, "private")
        repos[f"{org.name}/public"] = factories.make_repo(org, "public", is_public=True)
    for kind, level in (
        ("reader", AccessLevel.READ_ONLY),
        ("writer", AccessLevel.READ_WRITE),
        ("repo_admin", AccessLevel.ADMIN),
    ):
        factories.make_team(
            dev, name=kind, members=[users[kind]], level=level, repository=repos["dev/private"]
        )
    factories.make_team(qa, name="qa-team", level=AccessLevel.ADMIN, repository=repos["qa/private"])
    for org in ("dev", "qa"):
        source, target = repos[f"{org}/private"], repos[f"{org}/public"]
        policy = PromotionPolicy.objects.create(name=f"{org}-policy", source=source, target=target)
        tag_set(repository=source, name="v1", manifest=factories.make_manifest())
        PromotionRecord.objects.create(
            idempotency_key=f"{org}-record",
            policy=policy,
            policy_name=policy.name,
            source_repository=source,
            source_repository_name=source.full_name,
            source_tag="v1",
            digest="sha256:" + "0" * 64,
            target_repository=target,
            target_repository_name=target.full_name,
            trigger="push",
            outcome="promoted",
            pushed_at="2026-01-01T00:00:00Z",
        )
    return users


def _select_options(html: str, name: str) -> set[int]:
    match = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert match, f"no <select name={name}>"
    return {int(pk) for pk in re.findall(r'<option value="(\d+)"', match.group(1))}


def _filter_pks(html: str, lookup: str) -> set[int]:
    return {int(pk) for pk in re.findall(rf"{re.escape(lookup)}=(\d+)", html)}


def _pks(queryset) -> set[int]:
    return set(queryset.values_list("pk", flat=True))


# (admin add URL name, select field, model the choices come from, action they need)
ADD_FORM_CHOICES = [
    ("admin:accounts_repositoryaccess_add", "team", Team, Action.ADMIN),
    ("admin:accounts_team_add", "organization", Organization, Action.ADMIN),
    ("admin:registry_repository_add", "namespace", Organization, Action.ADMIN),
    ("admin:promotions_promotionpolicy_add", "source", Repository, Action.ADMIN),
    ("admin:promotions_promotionpolicy_add", "target", Repository, Action.ADMIN),
]


@pytest.mark.parametrize(("url", "field", "model", "action"), ADD_FORM_CHOICES)
@pytest.mark.parametrize("kind", KINDS)
def test_add_forms_offer_what_restrict_allows(client, world, kind, url, field, model, action):
    user = world[kind]
    client.force_login(user)
    response = client.get(reverse(url))
    allowed = _pks(model.objects.restrict(user, action))
    if response.status_code != 200:  # no add right at all: then nothing may be allowed
        assert response.status_code == 403
        assert not allowed
        return
    assert _select_options(response.content.decode(), field) == allowed


# (changelist URL name, model of the rows, relation filter lookup, model it names)
CHANGELIST_FILTERS = [
    ("admin:registry_repository_changelist", Repository, "namespace__id__exact", Organization),
    ("admin:registry_tag_changelist", Tag, "repository__namespace__id__exact", Organization),
    (
        "admin:promotions_promotionpolicy_changelist",
        PromotionPolicy,
        "source__namespace__id__exact",
        Organization,
    ),
    (
        "admin:promotions_promotionrecord_changelist",
        PromotionRecord,
        "policy__id__exact",
        PromotionPolicy,
    ),
    (
        "admin:accounts_repositoryaccess_changelist",
        RepositoryAccess,
        "team__organization__id__exact",
        Organization,
    ),
]


@pytest.mark.parametrize(("url", "model", "lookup", "named"), CHANGELIST_FILTERS)
@pytest.mark.parametrize("kind", KINDS)
def test_changelists_and_their_filters_follow_restrict(
    client, world, kind, url, model, lookup, named
):
    user = world[kind]
    client.force_login(user)
    response = client.get(reverse(url))
    if response.status_code == 403:
        admin_rights = model is RepositoryAccess
        assert admin_rights and not Organization.objects.restrict(user, Action.ADMIN).exists()
        return
    html = response.content.decode()
    named_in_filter = _filter_pks(html, lookup)
    assert named_in_filter <= _pks(named.objects.restrict(user, Action.PULL))
    view_action = Action.ADMIN if model is RepositoryAccess else Action.PULL
    visible = _pks(model.objects.restrict(user, view_action))
    for pk in _pks(model.objects.all()):
        change_url = reverse(url.replace("_changelist", "_change"), args=[pk])
        assert (change_url in html) == (pk in visible), (kind, model.__name__, pk)


@pytest.mark.parametrize("kind", KINDS)
def test_change_and_delete_rights_on_rows(client, world, kind):
    """A repository's change form opens for what one may see; a POST changes it only for its
    admins; a tag's delete page for those with the delete right."""
    user = world[kind]
    client.force_login(user)
    for repository in Repository.objects.all():
        url = reverse("admin:registry_repository_change", args=[repository.pk])
        seen = Repository.objects.restrict(user, Action.PULL).filter(pk=repository.pk).exists()
        page = client.get(url)
        assert (page.status_code == 200) == seen
        hidden = dict(
            re.findall(
                r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.content.decode()
            )
        )  # the inline's management form, when the page opened
        hidden.pop("csrfmiddlewaretoken", None)
        client.post(url, {**hidden, "description": f"by {kind}", "is_public": "on"})
        repository.refresh_from_db()
        changed = repository.description == f"by {kind}"
        assert (
            changed
            == Repository.objects.restrict(user, Action.ADMIN).filter(pk=repository.pk).exists()
        ), (kind, repository)
    for tag in Tag.objects.all():
        url = reverse("admin:registry_tag_delete", args=[tag.pk])
        may = Tag.objects.restrict(user, Action.DELETE).filter(pk=tag.pk).exists()
        assert (client.get(url).status_code == 200) == may, (kind, tag)
