"""Gates fail closed (the engine's side): a rule whose data is missing never passes, and
component names compare the way their ecosystem compares them."""

from datetime import UTC, datetime, timedelta

import pytest

from promotions.engine import (
    ImageFacts,
    MissingData,
    Outcome,
    Rule,
    evaluate,
    normalise_component_name,
)

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
NO_SNAPSHOT = {MissingData.VULNERABILITY_DATA: "no vulnerability snapshot was used"}
SKIPPED = {MissingData.LAYERS: "layer sha256:ab: over the reader's limits, skipped"}
UNRECOGNISED = {MissingData.LICENSES: "1 component has a license not recognised: 'Foo'"}


def facts(**overrides) -> ImageFacts:
    values = {"tag": "1.0-stable", "pushed_at": NOW - timedelta(days=1), "scan_done": True}
    values.update(overrides)
    return ImageFacts(**values)


def rule(field, operator, *values) -> Rule:
    return Rule(field, operator, tuple(values))


NO_CRITICALS = rule("vulns_critical", "eq", "0")


def test_a_vulnerability_gate_without_a_snapshot_is_missing_data_not_a_match():
    decision = evaluate([NO_CRITICALS], facts(missing=NO_SNAPSHOT), now=NOW)

    assert decision.outcome == Outcome.MISSING_DATA
    assert decision.missing == (MissingData.VULNERABILITY_DATA,)
    (result,) = decision.results
    assert result.matched is None
    assert result.reason == "cannot be decided: no vulnerability snapshot was used"
    assert "no vulnerability snapshot" in decision.summary


def test_the_same_gate_with_data_matches():
    assert evaluate([NO_CRITICALS], facts(), now=NOW).outcome == Outcome.MATCH


def test_a_policy_may_opt_in_to_pass_on_missing_data_and_the_reason_says_so():
    decision = evaluate(
        [NO_CRITICALS], facts(missing=NO_SNAPSHOT), now=NOW, pass_on_missing_data=True
    )

    assert decision.outcome == Outcome.MATCH
    assert "decided on incomplete data, as the policy allows" in decision.results[0].reason
    assert decision.missing == (MissingData.VULNERABILITY_DATA,)


def test_a_license_noo_rule_with_unrecognised_licenses_is_not_decided():
    gate = rule("license", "noo", "GPL-3.0-only")
    decision = evaluate([gate], facts(licenses={"MIT"}, missing=UNRECOGNISED), now=NOW)
    assert decision.outcome == Outcome.MISSING_DATA
    assert "not recognised" in decision.summary


def test_a_component_noo_rule_with_skipped_layers_is_not_decided():
    gate = rule("component_name", "noo", "log4j-core")
    decision = evaluate([gate], facts(missing=SKIPPED), now=NOW)
    assert decision.outcome == Outcome.MISSING_DATA
    assert "skipped" in decision.summary


@pytest.mark.parametrize(
    ("gate", "image", "expected"),
    [
        # Found stays found: more data cannot undo these answers.
        (rule("license", "noo", "GPL-3.0-only"), {"licenses": {"GPL-3.0-only"}}, False),
        (rule("license", "oo", "MIT"), {"licenses": {"MIT"}}, True),
        (rule("component_name", "oo", "zlib"), {"component_names": {"zlib"}}, True),
        (rule("vulns_high", "lt", "1"), {"vulnerability_counts": {"high": 2}}, False),
        (rule("vulns_high", "gte", "1"), {"vulnerability_counts": {"high": 2}}, True),
        (rule("vulns_high", "eq", "0"), {"vulnerability_counts": {"high": 2}}, False),
    ],
)
def test_answers_that_more_data_cannot_change_are_given(gate, image, expected):
    missing = {**SKIPPED, **UNRECOGNISED, **NO_SNAPSHOT}
    decision = evaluate([gate], facts(missing=missing, **image), now=NOW)
    assert decision.results[0].matched is expected
    assert decision.outcome == (Outcome.MATCH if expected else Outcome.NO_MATCH)


def test_a_rule_that_needs_no_scan_data_is_not_held_by_missing_data():
    decision = evaluate([rule("tag_name", "ew", "stable")], facts(missing=SKIPPED), now=NOW)
    assert decision.outcome == Outcome.MATCH


def test_another_failing_rule_decides_at_once():
    rules = [rule("tag_name", "ew", "rc"), NO_CRITICALS]
    decision = evaluate(rules, facts(missing=NO_SNAPSHOT), now=NOW)
    assert decision.outcome == Outcome.NO_MATCH


def test_missing_data_of_an_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown missing data"):
        facts(missing={"mood": "bad"})


# --- component names per ecosystem ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "name", "value", "same"),
    [
        ("pypi", "Django", "django", True),
        ("pypi", "zope.interface", "Zope_Interface", True),
        ("pypi", "ruamel.yaml", "ruamel-yaml", True),
        ("deb", "LibSSL3", "libssl3", True),
        ("npm", "JSONStream", "jsonstream", True),
        ("rpm", "NetworkManager", "networkmanager", False),
        ("maven", "org.Foo:bar", "org.foo:bar", False),
        ("golang", "github.com/Sirupsen/logrus", "github.com/sirupsen/logrus", False),
    ],
)
def test_names_normalise_per_ecosystem(kind, name, value, same):
    assert (normalise_component_name(kind, name) == normalise_component_name(kind, value)) is same


def test_oo_django_finds_the_pypi_project_as_written_in_its_metadata():
    image = facts(components={("pypi", "Django"), ("rpm", "NetworkManager")})
    assert evaluate([rule("component_name", "oo", "django")], image, now=NOW).outcome == "match"
    noo = evaluate([rule("component_name", "noo", "DJANGO")], image, now=NOW)
    assert noo.outcome == "no_match"
    assert "'Django'" in noo.results[0].reason
    rpm = evaluate([rule("component_name", "oo", "networkmanager")], image, now=NOW)
    assert rpm.outcome == "no_match"  # RPM names are case-sensitive
    starts = evaluate([rule("component_name", "sw", "dj")], image, now=NOW)
    assert starts.outcome == "match"
