"""The page, the admin and the API apply a policy through one service and dry-run it under
one permission rule; saving a policy that shares a target tag with another warns on every
surface; the live preview and the dry run flag renderings that repeat."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from promotions import services
from promotions.models import PromotionPolicy, PromotionRecord
from registry_portal.registry.services import tag_set
from tests import factories

STABLE = {"field": "tag_name", "operator": "ew", "values": ["stable"]}
PAGE = "/repos/dev/website/-/promotions/"


@pytest.fixture
def stable_policy(seed):
    return services.policy_create(
        actor=seed["lead"],
        source=seed["source"],
        target=seed["target"],
        name="to QA",
        rules=[STABLE],
        tag_template="%Y%m%d-%H%M%S",
    )


@pytest.fixture
def api(seed):
    def client_for(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return client_for


@pytest.fixture
def queued(monkeypatch):
    """Every call of the one apply service, by any surface."""
    calls = []
    original = services.policy_apply_queue

    def spy(**kwargs):
        calls.append(kwargs["policy"].pk)
        return original(**kwargs)

    monkeypatch.setattr(services, "policy_apply_queue", spy)
    return calls


def form_data(seed, **fields):
    data = {
        "name": "Stable builds to QA",
        "description": "",
        "target_organization": seed["qa"].pk,
        "target": seed["target"].pk,
        "tag_mode": "template",
        "tag_template": "%Y%m%d-%H%M%S",
        "enabled": "on",
        "on_move": "overwrite",
        "rules-TOTAL_FORMS": "1",
        "rules-INITIAL_FORMS": "0",
        "rules-0-field": "tag_name",
        "rules-0-operator": "ew",
        "rules-0-values": "stable",
    }
    data.update(fields)
    return data


# --- one apply service --------------------------------------------------------------------------


def test_the_api_answers_202_with_a_handle_to_the_records_of_the_apply(
    seed, stable_policy, api, queued, outbox_run_at_once, django_capture_on_commit_callbacks
):
    tag_set(repository=seed["source"], name="1.0-stable", manifest=factories.make_manifest())
    client = api(seed["lead"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/policies/{stable_policy.pk}/apply/")
    assert response.status_code == 202, response.content
    handle = response.json()
    assert handle["revision"] == services.policy_revision(stable_policy)
    assert response["Location"] == handle["records"]
    assert queued == [stable_policy.pk]
    records = client.get(handle["records"]).json()["results"]
    assert [(r["source_tag"], r["outcome"], r["revision"]) for r in records] == [
        ("1.0-stable", "promoted", handle["revision"])
    ]


def test_the_page_and_the_admin_call_the_same_service(seed, client, queued):
    seed["lead"].is_staff = True
    seed["lead"].save()
    client.force_login(seed["lead"])
    response = client.post(f"{PAGE}new/", {**form_data(seed), "apply": "1"})
    assert response.status_code == 302
    policy = PromotionPolicy.objects.get()
    admin = client.post(
        "/admin/promotions/promotionpolicy/",
        {"action": "apply", "_selected_action": [policy.pk]},
        follow=True,
    )
    assert "being applied" in admin.content.decode()
    assert queued == [policy.pk, policy.pk]


# --- one dry-run rule: pull on the source ---------------------------------------------------------


def _dry_runs(seed, policy, user, client, api):
    client.force_login(user)
    page = client.post(
        f"{PAGE}dry-run/",
        {"rules-TOTAL_FORMS": "0", "rules-INITIAL_FORMS": "0", "tag_mode": "keep"},
    )
    saved = api(user).post(f"/api/v1/policies/{policy.pk}/dry-run/")
    unsaved = api(user).post(
        "/api/v1/policies/dry-run/", {"source": "dev/website", "rules": []}, format="json"
    )
    return page.status_code, saved.status_code, unsaved.status_code


def test_dry_run_needs_pull_on_the_source_on_every_surface(seed, stable_policy, client, api):
    tag_set(repository=seed["source"], name="1.0", manifest=factories.make_manifest())
    # The developer may pull dev/website but administers nothing.
    assert _dry_runs(seed, stable_policy, seed["developer"], client, api) == (200, 200, 200)
    # The tester sees the policy (through its target) but may not pull its source.
    refused = _dry_runs(seed, stable_policy, seed["tester"], client, api)
    assert all(status in (400, 403, 404) for status in refused), refused


# --- two policies, one target tag -----------------------------------------------------------------


def test_a_second_policy_into_the_same_target_tag_warns_in_api_form_and_tab(
    seed, stable_policy, api, client
):
    response = api(seed["lead"]).post(
        "/api/v1/policies/",
        {
            "name": "nightly",
            "source": "dev/website",
            "target": "qa/website",
            "tag_template": "%Y%m%d-%H%M%S",
            "rules": [{"field": "tag_name", "operator": "sw", "values": ["nightly"]}],
        },
        format="json",
    )
    assert response.status_code == 201
    (warning,) = response.json()["warnings"]
    assert "“to QA” (from dev/website) also writes to qa/website" in warning

    client.force_login(seed["lead"])
    saved = client.post(f"{PAGE}new/", form_data(seed, name="third"), follow=True)
    assert "also writes to qa/website" in saved.content.decode()

    tab = client.get(PAGE).content.decode()
    assert "same target tag" in tab
    assert "“nightly” (from dev/website) also writes to qa/website" in tab


# --- renderings that repeat -------------------------------------------------------------------


def test_the_live_preview_and_the_dry_run_flag_renderings_that_repeat(seed, client):
    for name in ("1.0-stable", "2.0-stable"):
        tag_set(repository=seed["source"], name=name, manifest=factories.make_manifest())
    client.force_login(seed["lead"])
    preview = client.get(f"{PAGE}preview/", {"template": "%Y%m%d-%H%M%S"}).json()
    assert any("does not contain %n" in warning for warning in preview["warnings"])
    named = client.get(f"{PAGE}preview/", {"template": "%n-%Y"}).json()["warnings"]
    assert not any("does not contain %n" in warning for warning in named)

    panel = client.post(f"{PAGE}dry-run/", form_data(seed)).content.decode()
    assert "repeats" in panel
    assert "2 tags render" in panel
    assert not PromotionRecord.objects.exists()


def test_help_texts_say_how_names_compare_and_what_missing_data_means(seed, client, api):
    client.force_login(seed["lead"])
    form = client.get(f"{PAGE}new/").content.decode()
    assert "PyPI names by PEP 503" in form
    assert "a rule whose data is missing never passes" in form
    schema = api(seed["lead"]).get("/api/schema/", {"format": "json"}).content.decode()
    assert "PyPI names by PEP 503" in schema
    assert "a rule whose data is missing never passes" in schema


def test_two_keep_the_tag_policies_of_one_source_do_not_warn(seed, stable_policy):
    keep = services.policy_create(
        actor=seed["lead"], source=seed["source"], target=seed["target"], name="a", rules=[]
    )
    other = services.policy_create(
        actor=seed["lead"], source=seed["source"], target=seed["target"], name="b", rules=[]
    )
    assert services.policy_target_warnings(policies=[keep, other]) == {}
