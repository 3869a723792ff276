"""'Promote now' on a tag, and the links between the pages and the Django admin."""

import html

import pytest

from promotions import services as promotion_services
from promotions.models import PromotionPolicy, PromotionRecord
from registry_portal.registry.models import Tag
from tests import factories

from .test_pages import text as raw_text

PROMOTE = "/repos/dev/website/-/tags/1.1-beta/promote/"
USERS = ["outsider", "reader", "writer", "lead", "dev_admin"]


def text(response) -> str:
    """The visible text of a page, entities decoded."""
    return html.unescape(raw_text(response))


@pytest.fixture
def policy(world):
    """Only stable tags, kept as they are: promoting 1.1-beta is the user's decision."""
    return promotion_services.policy_create(
        actor=world["lead"],
        source=world["source"],
        target=world["target"],
        name="Stable to QA",
        rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
    )


def test_the_lead_promotes_a_tag_now_and_sees_the_outcome(world, login, policy):
    client = login(world["lead"])
    page = client.get(PROMOTE)
    assert page.status_code == 200
    assert "Stable to QA" in text(page) and "qa/website" in text(page)
    response = client.post(PROMOTE, {"policy": policy.pk})
    record = PromotionRecord.objects.get()
    assert response.status_code == 302 and response["Location"] == f"{PROMOTE}?record={record.pk}"
    assert record.outcome == "promoted" and record.trigger == "manual"
    promoted = Tag.objects.get(repository=world["target"], name="1.1-beta")
    assert promoted.manifest_id == world["source"].tags.get(name="1.1-beta").manifest_id
    result = client.get(response["Location"])
    page = text(result)
    assert "1.1-beta through “Stable to QA”: promoted." in page
    assert "Result promoted" in page
    assert 'href="/repos/qa/website/-/tags/?q=1.1-beta"' in result.content.decode()


def test_a_failed_promotion_shows_why(world, login, policy):
    world["target"].immutable_tags = True
    world["target"].save()
    tag = world["source"].tags.get(name="1.1-beta")
    from registry_portal.registry.services import tag_set

    tag_set(repository=world["target"], name="1.1-beta", manifest=factories.make_manifest())
    client = login(world["lead"])
    response = client.post(PROMOTE, {"policy": policy.pk}, follow=True)
    record = PromotionRecord.objects.get(source_tag=tag.name)
    assert record.outcome == "failed"
    page = text(response)
    assert "Result failed" in page and record.reason in page


@pytest.mark.parametrize("user", USERS)
def test_promote_now_permission_matrix(world, login, policy, user):
    """Offered to the source's admins; running needs admin on the target too (like
    changing the policy): dev_admin administers dev only, so the service refuses, 403."""
    client = login(world[user])
    page = client.get(PROMOTE)
    response = client.post(PROMOTE, {"policy": policy.pk})
    promoted = Tag.objects.filter(repository=world["target"]).exists()
    if user == "lead":
        assert page.status_code == 200 and response.status_code == 302 and promoted
        return
    assert not promoted and not PromotionRecord.objects.exists()
    if user == "dev_admin":
        assert page.status_code == 200
        assert "you are not an admin of qa/website" in text(page)
        assert "disabled>" in page.content.decode().split(f'value="{policy.pk}"')[1][:80]
        assert response.status_code == 403
    else:
        expected = 404 if user == "outsider" else 403
        assert page.status_code == expected and response.status_code == expected


def test_promote_link_only_for_admins(world, login, policy):
    tags = "/repos/dev/website/-/tags/"
    assert "Promote…" not in login(world["writer"]).get(tags).content.decode()
    assert "Promote…" in login(world["lead"]).get(tags).content.decode()
    vulns = "/repos/dev/website/-/tags/1.1-beta/vulnerabilities/"
    assert "Promote now" not in text(login(world["reader"]).get(vulns))
    assert "Promote now" in text(login(world["lead"]).get(vulns))


@pytest.mark.parametrize("choice", ["", "abc", "999999"])
def test_invalid_policy_choice_is_a_field_error(world, login, policy, choice):
    response = login(world["lead"]).post(PROMOTE, {"policy": choice})
    assert response.status_code == 400
    assert not PromotionRecord.objects.exists()
    page = text(response)
    assert "This field is required." in page or "Choose one of this repository's policies." in page


def test_a_policy_of_another_repository_cannot_be_run_here(world, login):
    other = factories.make_repo(world["qa"], "other")
    factories.make_team(world["qa"], members=[world["lead"]], level=3, repository=other)
    foreign = promotion_services.policy_create(
        actor=world["lead"], source=world["target"], target=other, name="QA onwards"
    )
    response = login(world["lead"]).post(PROMOTE, {"policy": foreign.pk})
    assert response.status_code == 400
    assert not PromotionRecord.objects.exists()


def test_unknown_tag_is_a_404_and_no_policy_says_so(world, login):
    client = login(world["lead"])
    assert client.get("/repos/dev/website/-/tags/nope/promote/").status_code == 404
    assert "No policy promotes images from dev/website." in text(client.get(PROMOTE))


def test_a_record_of_another_tag_is_not_shown(world, login, policy):
    client = login(world["lead"])
    client.post(PROMOTE, {"policy": policy.pk})
    record = PromotionRecord.objects.get()
    other = client.get(f"/repos/dev/website/-/tags/1.0-stable/promote/?record={record.pk}")
    assert other.context["record"] is None
    assert client.get(f"{PROMOTE}?record=99999999999999999999").status_code == 200


# --- admin links -------------------------------------------------------------------------------


@pytest.fixture
def staff(world):
    return factories.make_user("boss", is_staff=True, is_superuser=True)


def test_view_on_site_from_the_admin(world, login, policy, staff):
    client = login(staff)
    source = world["source"]
    page = client.get(f"/admin/registry/repository/{source.pk}/change/").content.decode()
    assert "View on site" in page
    assert source.get_absolute_url() == "/repos/dev/website/"
    assert client.get(source.get_absolute_url()).status_code == 200
    page = client.get(f"/admin/promotions/promotionpolicy/{policy.pk}/change/").content.decode()
    assert "View on site" in page
    assert policy.get_absolute_url() == f"/repos/dev/website/-/promotions/#policy-{policy.pk}"
    tag = source.tags.get(name="1.0-stable")
    assert tag.get_absolute_url() == "/repos/dev/website/-/tags/1.0-stable/vulnerabilities/"
    assert client.get(tag.get_absolute_url()).status_code == 200


def test_admin_links_in_the_pages_are_for_staff(world, login, policy, staff):
    repository_admin = f"/admin/registry/repository/{world['source'].pk}/change/"
    policy_admin = f"/admin/promotions/promotionpolicy/{policy.pk}/change/"
    page = login(staff).get("/repos/dev/website/-/promotions/").content.decode()
    assert repository_admin in page and policy_admin in page
    assert 'href="/admin/"' in page  # the top navigation
    page = login(world["lead"]).get("/repos/dev/website/-/promotions/").content.decode()
    assert "/admin/" not in page
    assert PromotionPolicy.objects.count() == 1
