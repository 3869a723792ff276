"""The promotion policy admin: same validation and permission rules as the services."""

import pytest
from django.urls import reverse

from promotions.models import PromotionPolicy, PromotionRecord


def policy_post(seed, *, rules, template="%Y%m%d-%H%M%S", name="to QA", target=None):
    data = {
        "name": name,
        "description": "",
        "source": seed["source"].pk,
        "target": (target or seed["target"]).pk,
        "enabled": "on",
        "tag_template": template,
        "rules-TOTAL_FORMS": str(len(rules)),
        "rules-INITIAL_FORMS": "0",
        "rules-MIN_NUM_FORMS": "0",
        "rules-MAX_NUM_FORMS": "1000",
    }
    for index, (field, operator, values) in enumerate(rules):
        data[f"rules-{index}-field"] = field
        data[f"rules-{index}-operator"] = operator
        data[f"rules-{index}-values"] = values
    return data


@pytest.fixture
def lead_client(client, seed):
    seed["lead"].is_staff = True
    seed["lead"].save()
    client.force_login(seed["lead"])
    return client


def test_a_team_lead_creates_the_seed_policy_in_the_admin(lead_client, seed):
    url = reverse("admin:promotions_promotionpolicy_add")
    response = lead_client.post(url, policy_post(seed, rules=[("tag_name", "ew", "stable")]))
    assert response.status_code == 302, response.content[:2000]
    policy = PromotionPolicy.objects.get()
    assert (policy.source, policy.target, policy.created_by) == (
        seed["source"],
        seed["target"],
        seed["lead"],
    )
    assert [(r.field, r.operator, r.values) for r in policy.rules.all()] == [
        ("tag_name", "ew", ["stable"])
    ]


@pytest.mark.parametrize(
    ("rules", "template", "message"),
    [
        ([("vulns_critical", "gt", "many")], "", "whole number"),
        ([("tag_name", "gt", "1")], "", "does not apply"),
        ([("tag_name", "ew", "stable")], "%q", "%q"),
    ],
)
def test_invalid_input_shows_errors_and_saves_nothing(lead_client, seed, rules, template, message):
    url = reverse("admin:promotions_promotionpolicy_add")
    response = lead_client.post(url, policy_post(seed, rules=rules, template=template))
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PromotionPolicy.objects.exists()


def test_a_developer_cannot_create_policies_or_see_them_beyond_their_repositories(client, seed):
    developer = seed["developer"]
    developer.is_staff = True
    developer.save()
    client.force_login(developer)
    url = reverse("admin:promotions_promotionpolicy_add")
    response = client.post(url, policy_post(seed, rules=[("tag_name", "ew", "stable")]))
    assert response.status_code == 200  # the source/target are not among their choices
    assert "Select a valid choice" in response.content.decode()
    assert not PromotionPolicy.objects.exists()


def test_records_are_read_only(lead_client):
    url = reverse("admin:promotions_promotionrecord_changelist")
    assert lead_client.get(url).status_code == 200
    assert lead_client.get(reverse("admin:promotions_promotionrecord_add")).status_code == 403
    assert not PromotionRecord.objects.exists()
