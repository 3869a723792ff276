"""The New/Edit promotion policy form: saving, field errors that save nothing, Save & Apply,
the loop warning, the live preview and the dry run."""

import re

import pytest

from promotions import services as promotion_services
from promotions.models import PromotionPolicy, PromotionRecord
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.models import Tag
from tests import factories

NEW = "/repos/dev/website/-/promotions/new/"


def policy_data(world, *rules, **fields):
    """The form's POST data: the seed policy unless overridden."""
    rules = rules or (("tag_name", "ew", "stable"),)
    data = {
        "name": "Stable builds to QA",
        "description": "",
        "target_organization": world["qa"].pk,
        "target": world["target"].pk,
        "tag_mode": "template",
        "tag_template": "%Y%m%d-%H%M%S",
        "enabled": "on",
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
    }
    for index, (field, operator, values) in enumerate(rules):
        data.update(
            {
                f"rules-{index}-field": field,
                f"rules-{index}-operator": operator,
                f"rules-{index}-values": values,
            }
        )
    data.update(fields)
    return data


def test_the_form_offers_only_administered_targets(world, login):
    page = login(world["lead"]).get(NEW).content.decode()
    assert "qa/website" in page
    assert "dev/website</option>" not in page  # not the source itself
    assert "CVSS v3" in page
    # Operators carry the fields they fit, for the script to filter.
    assert re.search(r'value="ew"[^>]*data-fields="tag_name component_name"', page)
    assert re.search(r'value="gte"[^>]*data-fields="vulns_all vulns_critical', page)


def test_save_creates_the_seed_policy(world, login):
    response = login(world["lead"]).post(NEW, policy_data(world))
    assert response.status_code == 302
    assert response["Location"] == "/repos/dev/website/-/promotions/"
    policy = PromotionPolicy.objects.get()
    assert (policy.source, policy.target) == (world["source"], world["target"])
    assert policy.tag_template == "%Y%m%d-%H%M%S" and policy.enabled
    assert [(r.field, r.operator, r.values) for r in policy.rules.all()] == [
        ("tag_name", "ew", ["stable"])
    ]
    page = login(world["lead"]).get(response["Location"]).content.decode()
    assert "is saved" in page
    sentence = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page))
    assert "When tag name ends with stable → qa/website, tagged %Y%m%d-%H%M%S" in sentence


def test_keep_the_tag_ignores_a_typed_template_and_splits_one_of_values(world, login):
    data = policy_data(
        world, ("tag_name", "oo", "1.0-stable, 2.0-stable"), tag_mode="keep", tag_template="%Q"
    )
    assert login(world["lead"]).post(NEW, data).status_code == 302
    policy = PromotionPolicy.objects.get()
    assert policy.tag_template == ""
    assert policy.rules.get().values == ["1.0-stable", "2.0-stable"]


@pytest.mark.parametrize(
    ("rules", "fields", "field_with_error", "message"),
    [
        ((("vulns_critical", "eq", "abc"),), {}, "rule", "abc"),
        ((("last_updated", "af", "soon"),), {}, "rule", "neither a date"),
        ((("tag_name", "gte", "1"),), {}, "rule", "does not apply to tag name"),
        ((("tag_name", "ew", ""),), {}, "rule", "needs a value"),
        ((("tag_name", "matches", "(?<=v)1"),), {}, "rule", "invalid perl operator: (?<="),
        ((), {"tag_template": "%Q-%n"}, "tag_template", "%Q is not a placeholder"),
        ((), {"tag_template": ""}, "tag_template", "Give a template"),
        ((), {"name": ""}, "name", "This field is required"),
        ((), {"target": ""}, "target", "This field is required"),
    ],
)
def test_invalid_input_shows_the_error_by_its_field_and_saves_nothing(
    world, login, rules, fields, field_with_error, message
):
    response = login(world["lead"]).post(NEW, policy_data(world, *rules, **fields))
    assert response.status_code == 400
    assert not PromotionPolicy.objects.exists()
    page = response.content.decode()
    assert "The policy was not saved" in page
    if field_with_error == "rule":
        row_errors = response.context["rules"].forms[0].non_field_errors()
        assert any(message in error for error in row_errors)
        assert "Rule 1:" in page
    else:
        assert any(message in error for error in response.context["form"].errors[field_with_error])


def test_errors_land_on_the_right_row_when_a_row_was_removed(world, login):
    data = policy_data(world, ("tag_name", "ew", "stable"), ("vulns_high", "lte", "many"))
    data["rules-0-DELETE"] = "on"
    response = login(world["lead"]).post(NEW, data)
    assert response.status_code == 400
    rows = response.context["rules"].forms
    assert not rows[0].non_field_errors()
    assert any("many" in error for error in rows[1].non_field_errors())


def test_a_target_the_user_does_not_administer_is_refused(world, login):
    foreign = factories.make_repo(world["qa"], "private-tools")
    response = login(world["lead"]).post(NEW, policy_data(world, target=foreign.pk))
    assert response.status_code == 400
    assert "target" in response.context["form"].errors
    assert not PromotionPolicy.objects.exists()


def test_target_outside_the_chosen_organization_is_refused(world, login):
    factories.make_team(
        world["dev"],
        members=[world["lead"]],
        level=AccessLevel.ADMIN,
        repository=factories.make_repo(world["dev"], "tools"),
    )
    response = login(world["lead"]).post(
        NEW, policy_data(world, target_organization=world["dev"].pk)
    )
    assert response.status_code == 400
    assert "not in dev" in response.context["form"].errors["target"][0]


def test_edit_changes_the_policy(world, login):
    policy = promotion_services.policy_create(
        actor=world["lead"], source=world["source"], target=world["target"], name="Old"
    )
    url = f"/repos/dev/website/-/promotions/{policy.pk}/edit/"
    client = login(world["lead"])
    form = client.get(url).context["form"]
    assert form.initial["target"] == world["target"].pk and form.initial["tag_mode"] == "keep"
    response = client.post(url, policy_data(world, ("tag_name", "sw", "1."), name="New"))
    assert response.status_code == 302
    policy.refresh_from_db()
    assert policy.name == "New" and policy.rules.get().operator == "sw"


def test_save_and_apply_promotes_existing_tags(
    world, login, settings, django_capture_on_commit_callbacks, eager_tasks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = login(world["lead"]).post(NEW, {**policy_data(world), "apply": "1"})
    assert response.status_code == 302
    record = PromotionRecord.objects.get(source_tag="1.0-stable", trigger="apply")
    assert record.outcome == "promoted"
    assert Tag.objects.filter(repository=world["target"], name=record.target_tag).exists()
    assert not PromotionRecord.objects.filter(source_tag="1.1-beta", outcome="promoted").exists()


def test_a_policy_closing_a_loop_is_saved_with_a_warning(world, login):
    promotion_services.policy_create(
        actor=world["lead"], source=world["target"], target=world["source"], name="Back"
    )
    response = login(world["lead"]).post(NEW, policy_data(world), follow=True)
    page = response.content.decode()
    assert PromotionPolicy.objects.count() == 2
    assert "closes a loop" in page and "dev/website → qa/website → dev/website" in page


def test_preview_renders_the_template_and_its_problems(world, login):
    client = login(world["lead"])
    url = "/repos/dev/website/-/promotions/preview/"
    good = client.get(url, {"template": "%n-%Y", "tag": "1.0-stable"}).json()
    assert re.fullmatch(r"1\.0-stable-\d{4}", good["preview"]) and good["errors"] == []
    bad = client.get(url, {"template": "%Q"}).json()
    assert any("%Q is not a placeholder" in error for error in bad["errors"])
    keep = client.get(url, {"template": "", "tag": "1.0-stable"}).json()
    assert keep["preview"] == "1.0-stable"


def test_dry_run_lists_what_would_be_promoted_and_writes_nothing(world, login):
    url = "/repos/dev/website/-/promotions/dry-run/"
    response = login(world["lead"]).post(url, policy_data(world))
    page = re.sub(r"\s+", " ", response.content.decode())
    assert "1</strong> of 2 existing tags would be promoted now" in page
    assert re.search(r"1\.0-stable.*promote</span> as <span[^>]*>\d{8}-\d{6}", page)
    assert not PromotionRecord.objects.exists() and not PromotionPolicy.objects.exists()
    bad = login(world["lead"]).post(url, policy_data(world, ("vulns_low", "lt", "x")))
    assert "Rule 1:" in bad.content.decode()


def test_dry_run_needs_pull_on_the_source_as_in_the_api(world, login):
    url = "/repos/dev/website/-/promotions/dry-run/"
    assert login(world["reader"]).post(url, policy_data(world)).status_code == 200
    assert login(world["outsider"]).post(url, policy_data(world)).status_code in (403, 404)
