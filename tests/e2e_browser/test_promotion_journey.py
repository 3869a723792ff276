"""A team lead sets up the seed promotion in a real browser; a push promotes; a developer of
dev cannot see qa; invalid input in the form shows field errors and saves nothing."""

import re

import pytest
from playwright.sync_api import expect

from promotions.models import PromotionPolicy
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.models import Tag
from registry_portal.registry.services import tag_set
from tests import factories

from .conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def seed(transactional_db):
    """dev/website (a stable and a beta tag) and a private qa/website; a lead admin of both,
    a developer of dev."""
    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    source = factories.make_repo(dev, "website", description="Our web site, as built by CI.")
    target = factories.make_repo(qa, "website", description="What QA tests.")
    factories.make_repo(qa, "internal-tools")
    lead, developer = factories.make_user("lead"), factories.make_user("dev1")
    factories.make_team(dev, members=[developer], level=AccessLevel.READ_WRITE, name="developers")
    factories.make_team(dev, members=[lead], level=AccessLevel.ADMIN, repository=source)
    factories.make_team(qa, members=[lead], level=AccessLevel.ADMIN, repository=target)
    for name in ("1.0-stable", "1.1-beta"):
        tag_set(repository=source, name=name, manifest=factories.make_manifest(), actor=developer)
    return {"source": source, "target": target, "lead": lead, "developer": developer}


def test_team_lead_sets_up_the_seed_promotion(page, seed, eager_tasks, screenshot):
    sign_in(page, "lead", factories.PASSWORD)
    screenshot(page, "01-home")
    page.get_by_role("link", name="dev/website").click()
    expect(page.get_by_role("heading", name="dev/website")).to_be_visible()
    expect(page.locator("#cmd-docker")).to_contain_text("docker pull")
    screenshot(page, "02-repository-overview")
    page.get_by_role("navigation", name="Repository").get_by_role("link", name="Promotions").click()
    page.get_by_role("link", name="New promotion policy").click()
    expect(page).to_have_title(re.compile("New promotion policy"))

    page.get_by_label("Name", exact=True).fill("Stable builds to QA")
    page.get_by_role("button", name="+ Add a rule").click()
    rule = page.get_by_role("group", name="Rule 1")
    rule.get_by_label("Field").select_option("tag_name")
    rule.get_by_label("Operator").select_option(label="ends with")
    rule.get_by_label("Value").fill("stable")
    page.get_by_label("Target organization").select_option(label="qa")
    page.get_by_label("Target repository").select_option(label="qa/website")
    page.get_by_label("Use a tag template").check()
    page.get_by_label("Tag template", exact=True).fill("%Y%m%d-%H%M%S")

    preview = page.locator("#template-preview output")
    expect(preview).to_have_text(re.compile(r"^\d{8}-\d{6}$"))
    dry_run = page.locator("#dry-run-result")
    expect(dry_run).to_contain_text("1 of 2 existing tags would be promoted now")
    expect(dry_run.locator("tr", has_text="1.0-stable")).to_contain_text(
        re.compile(r"promote\s+as\s+\d{8}-\d{6}")
    )
    expect(dry_run.locator("tr", has_text="1.1-beta")).to_contain_text("does not end with")
    screenshot(page, "03-new-policy-form")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("is saved")
    sentence = page.locator(".policy", has_text="Stable builds to QA").locator(".sentence")
    expect(sentence).to_contain_text("When tag name ends with stable")
    expect(sentence).to_contain_text("qa/website")
    expect(sentence).to_contain_text("tagged %Y%m%d-%H%M%S")
    policy = PromotionPolicy.objects.get(name="Stable builds to QA")
    assert [(r.field, r.operator, r.values) for r in policy.rules.all()] == [
        ("tag_name", "ew", ["stable"])
    ]
    assert policy.target == seed["target"] and policy.tag_template == "%Y%m%d-%H%M%S"

    # A push of dev/website:1.0-stable (a new build) promotes it, through the signal and task.
    tag_set(
        repository=seed["source"],
        name="1.0-stable",
        manifest=factories.make_manifest(),
        actor=seed["developer"],
    )
    promoted = Tag.objects.get(repository=seed["target"])
    assert re.fullmatch(r"\d{8}-\d{6}", promoted.name)

    page.reload()
    expect(page.locator(".records")).to_contain_text("promoted")
    screenshot(page, "04-promotions-tab")
    page.goto("/repos/qa/website/-/tags/")
    row = page.locator("tr", has_text=promoted.name)
    badge = row.locator(".badge.promoted")
    expect(badge).to_contain_text("Promoted from dev/website:1.0-stable")
    expect(badge).to_contain_text("Stable builds to QA")
    screenshot(page, "05-qa-tags-with-provenance")
    badge.get_by_role("link", name="dev/website:1.0-stable").click()
    expect(page.get_by_role("heading", name="dev/website")).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(1)

    page.goto("/repos/dev/website/-/activity/")
    expect(page.locator("table").first).to_contain_text("promoted to qa/website")
    screenshot(page, "06-activity")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/repos/dev/website/-/promotions/")
    screenshot(page, "07-promotions-narrow")


def test_developer_of_dev_sees_no_private_qa_repository(page, seed, screenshot):
    sign_in(page, "dev1", factories.PASSWORD)
    repositories = page.locator(".repo-list")
    expect(repositories).to_contain_text("dev/website")
    expect(repositories).not_to_contain_text("qa/")
    response = page.goto("/repos/qa/website/")
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert page.goto("/orgs/qa/").status == 404
    screenshot(page, "08-developer-404")


def test_invalid_policy_shows_field_errors_and_saves_nothing(page, seed, screenshot):
    sign_in(page, "lead", factories.PASSWORD)
    page.goto("/repos/dev/website/-/promotions/new/")
    page.get_by_label("Name", exact=True).fill("Broken")
    page.get_by_role("button", name="+ Add a rule").click()
    rule = page.get_by_role("group", name="Rule 1")
    rule.get_by_label("Field").select_option("last_updated")
    rule.get_by_label("Operator").select_option(label="after")
    rule.get_by_label("Value").fill("soon")
    page.get_by_label("Target organization").select_option(label="qa")
    page.get_by_label("Target repository").select_option(label="qa/website")
    page.get_by_label("Use a tag template").check()
    page.get_by_label("Tag template", exact=True).fill("%Q-%n")
    expect(page.locator("#template-preview")).to_contain_text("%Q is not a placeholder")

    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("alert").first).to_contain_text("The policy was not saved")
    expect(page.get_by_role("group", name="Rule 1")).to_contain_text("Rule 1:")
    template_field = page.locator(".field", has=page.get_by_label("Tag template", exact=True))
    expect(template_field.locator(".errorlist")).to_contain_text("%Q is not a placeholder")
    # The form keeps what was typed.
    expect(page.get_by_label("Name", exact=True)).to_have_value("Broken")
    expect(page.get_by_role("group", name="Rule 1").get_by_label("Value")).to_have_value("soon")
    screenshot(page, "09-policy-form-errors")
    assert not PromotionPolicy.objects.exists()
