"""The pure promotion engine: every field and operator, scans, reasons, properties."""

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promotions.choices import VULNERABILITY_FIELDS, RuleField, RuleOperator
from promotions.engine import (
    Decision,
    ImageFacts,
    InvalidRuleError,
    Outcome,
    Rule,
    evaluate,
)
from registry_portal.grammar import TAG_PATTERN

NOW = datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
COMPONENTS = frozenset({"openssl", "libssl3", "zlib"})
LICENSES = frozenset({"MIT", "Apache-2.0"})
COUNTS = {"critical": 2, "high": 1, "medium": 5, "low": 4, "unknown": 3}


def make_facts(**overrides: object) -> ImageFacts:
    values: dict[str, object] = {
        "tag": "1.0-stable",
        "pushed_at": NOW - timedelta(days=3),
        "scan_done": True,
        "component_names": COMPONENTS,
        "licenses": LICENSES,
        "vulnerability_counts": COUNTS,
    }
    values.update(overrides)
    return ImageFacts(**values)  # type: ignore[arg-type]


def decide(field: str, operator: str, values: list[str], **facts: object) -> Decision:
    return evaluate([Rule(field, operator, tuple(values))], make_facts(**facts), now=NOW)


def single(decision: Decision) -> tuple[bool | None, str]:
    (result,) = decision.results
    return result.matched, result.reason


# --- tag name ------------------------------------------------------------------

TAG_CASES = [
    ("eq", ["1.0"], "1.0", True, "tag '1.0' equals '1.0'"),
    ("eq", ["1.0"], "1.0.1", False, "tag '1.0.1' does not equal '1.0'"),
    ("eq", ["Latest"], "latest", False, "tag 'latest' does not equal 'Latest'"),
    ("sw", ["1."], "1.0-stable", True, "tag '1.0-stable' starts with '1.'"),
    ("sw", ["2."], "1.0-stable", False, "tag '1.0-stable' does not start with '2.'"),
    ("ew", ["stable"], "1.0-stable", True, "tag '1.0-stable' ends with 'stable'"),
    ("ew", ["stable"], "1.0", False, "tag '1.0' does not end with 'stable'"),
    ("c", ["rc"], "2.0-rc1", True, "tag '2.0-rc1' contains 'rc'"),
    ("c", ["rc"], "2.0", False, "tag '2.0' does not contain 'rc'"),
    ("oo", ["1.0", "2.0"], "2.0", True, "tag '2.0' is one of '1.0', '2.0'"),
    ("oo", ["1.0", "2.0"], "3.0", False, "tag '3.0' is not one of '1.0', '2.0'"),
    ("noo", ["1.0", "2.0"], "3.0", True, "tag '3.0' is not one of '1.0', '2.0'"),
    ("noo", ["1.0", "2.0"], "1.0", False, "tag '1.0' is one of '1.0', '2.0'"),
    ("matches", ["^v[0-9]+$"], "v12", True, "tag 'v12' matches '^v[0-9]+$'"),
    ("matches", ["^v[0-9]+$"], "v12-rc", False, "tag 'v12-rc' does not match '^v[0-9]+$'"),
    # re.search semantics: an unanchored pattern matches anywhere in the tag.
    ("matches", ["stable"], "1.0-stable-2", True, "tag '1.0-stable-2' matches 'stable'"),
    ("matches", ["stable"], "1.0-STABLE", False, "tag '1.0-STABLE' does not match 'stable'"),
    ("matches", ["(?i)stable"], "1.0-STABLE", True, "tag '1.0-STABLE' matches '(?i)stable'"),
]


@pytest.mark.parametrize(("operator", "values", "tag", "expected", "reason"), TAG_CASES)
def test_tag_name_operators(operator, values, tag, expected, reason):
    decision = decide("tag_name", operator, values, tag=tag)

    assert single(decision) == (expected, reason)
    assert decision.outcome == (Outcome.MATCH if expected else Outcome.NO_MATCH)


def test_tag_cases_cover_every_tag_operator():
    assert {case[0] for case in TAG_CASES} == set(RuleOperator.values) & {
        "eq",
        "sw",
        "ew",
        "c",
        "oo",
        "noo",
        "matches",
    }


def test_tag_rules_do_not_need_a_scan():
    decision = decide("tag_name", "ew", ["stable"], scan_done=False)

    assert decision.outcome == Outcome.MATCH


# --- component name ----------------------------------------------------------------

COMPONENT_CASES = [
    ("eq", ["zlib"], True, "component name 'zlib' equals 'zlib'"),
    ("eq", ["zli"], False, "no component name equals 'zli' (the image has 3 components)"),
    ("sw", ["lib"], True, "component name 'libssl3' starts with 'lib'"),
    ("sw", ["ssl"], False, "no component name starts with 'ssl' (the image has 3 components)"),
    ("ew", ["ssl"], True, "component name 'openssl' ends with 'ssl'"),
    ("ew", ["curl"], False, "no component name ends with 'curl' (the image has 3 components)"),
    ("c", ["ssl"], True, "component name 'libssl3' contains 'ssl' (and 1 more)"),
    ("c", ["curl"], False, "no component name contains 'curl' (the image has 3 components)"),
    ("matches", ["^lib.*[0-9]$"], True, "component name 'libssl3' matches '^lib.*[0-9]$'"),
    ("matches", ["^curl"], False, "no component name matches '^curl' (the image has 3 components)"),
    ("oo", ["curl", "zlib"], True, "the image contains component 'zlib'"),
    ("oo", ["curl", "wget"], False, "the image contains none of the components 'curl', 'wget'"),
    ("noo", ["curl", "wget"], True, "the image contains none of the components 'curl', 'wget'"),
    ("noo", ["zlib", "openssl"], False, "the image contains component 'openssl', 'zlib'"),
]


@pytest.mark.parametrize(("operator", "values", "expected", "reason"), COMPONENT_CASES)
def test_component_name_operators(operator, values, expected, reason):
    decision = decide("component_name", operator, values)

    assert single(decision) == (expected, reason)
    assert decision.outcome == (Outcome.MATCH if expected else Outcome.NO_MATCH)


def test_component_cases_cover_every_component_operator():
    from promotions.choices import FIELD_OPERATORS

    assert {case[0] for case in COMPONENT_CASES} == set(FIELD_OPERATORS[RuleField.COMPONENT_NAME])


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [("oo", ["zlib"], False), ("noo", ["zlib"], True), ("c", ["z"], False), ("eq", ["z"], False)],
)
def test_component_rules_on_an_image_without_components(operator, values, expected):
    decision = decide("component_name", operator, values, component_names=frozenset())

    assert single(decision)[0] is expected


def test_component_names_compare_case_sensitively():
    assert single(decide("component_name", "oo", ["OpenSSL"]))[0] is False


def test_component_regex_matches_long_names_too():
    """RE2 is linear in the subject: no name is too long to match (500 is the model's limit)."""
    long_name = "a" * 499 + "z"
    names = frozenset({long_name})

    assert single(decide("component_name", "matches", ["^a+z$"], component_names=names))[0]
    assert single(decide("component_name", "matches", ["^b"], component_names=names))[0] is False


# --- license -----------------------------------------------------------------------

LICENSE_CASES = [
    ("oo", ["MIT"], True, "the image uses license 'MIT'"),
    ("oo", ["mit"], True, "the image uses license 'mit'"),
    ("oo", ["GPL-3.0-only"], False, "the image uses none of the licenses 'GPL-3.0-only'"),
    (
        "noo",
        ["GPL-3.0-only", "AGPL-3.0-only"],
        True,
        "the image uses none of the licenses 'GPL-3.0-only', 'AGPL-3.0-only'",
    ),
    ("noo", ["apache-2.0", "GPL-3.0-only"], False, "the image uses license 'apache-2.0'"),
]


@pytest.mark.parametrize(("operator", "values", "expected", "reason"), LICENSE_CASES)
def test_license_operators(operator, values, expected, reason):
    decision = decide("license", operator, values)

    assert single(decision) == (expected, reason)


# --- vulnerability counts ---------------------------------------------------------

# (operator, threshold minus the count, expected)
COUNT_CASES = [
    ("gte", 0, True),
    ("gte", 1, False),
    ("gt", -1, True),
    ("gt", 0, False),
    ("eq", 0, True),
    ("eq", 1, False),
    ("neq", 1, True),
    ("neq", 0, False),
    ("lte", 0, True),
    ("lte", -1, False),
    ("lt", 1, True),
    ("lt", 0, False),
]
SEVERITY_OF = {
    "vulns_all": "all",
    "vulns_critical": "critical",
    "vulns_high": "high",
    "vulns_medium": "medium",
    "vulns_low": "low",
}


@pytest.mark.parametrize("field", [str(field) for field in VULNERABILITY_FIELDS])
@pytest.mark.parametrize(("operator", "delta", "expected"), COUNT_CASES)
def test_vulnerability_count_operators(field, operator, delta, expected):
    count = make_facts().vulnerability_counts[SEVERITY_OF[field]]
    threshold = count + delta

    decision = decide(field, operator, [str(threshold)])

    matched, reason = single(decision)
    assert matched is expected
    assert f": {count}, which is {'' if expected else 'not '}" in reason
    assert reason.endswith(f" {threshold}")


@pytest.mark.parametrize(
    ("field", "operator", "value", "reason"),
    [
        (
            "vulns_critical",
            "lt",
            "2",
            "critical vulnerabilities (CVSS 9.0–10.0): 2, which is not < 2",
        ),
        ("vulns_high", "eq", "1", "high vulnerabilities (CVSS 7.0–8.9): 1, which is = 1"),
        ("vulns_all", "lte", "20", "all vulnerabilities (any severity): 15, which is <= 20"),
    ],
)
def test_vulnerability_reasons(field, operator, value, reason):
    assert single(decide(field, operator, [value]))[1] == reason


def test_all_vulnerabilities_include_unknown_severity():
    facts = {"vulnerability_counts": {"unknown": 3}}

    assert single(decide("vulns_all", "eq", ["3"], **facts))[0] is True
    assert single(decide("vulns_critical", "eq", ["0"], **facts))[0] is True


# --- last updated -----------------------------------------------------------------

PUSHED_AT = datetime(2024, 6, 12, 12, 0, tzinfo=UTC)  # three days before NOW

LAST_UPDATED_CASES = [
    ("bf", "7d", False),
    ("bf", "2d", True),
    ("af", "7d", True),
    ("af", "2d", False),
    ("bf", "48h", True),
    ("af", "96h", True),
    ("af", "5000m", True),
    ("bf", "4000m", True),
    ("af", "1w", True),
    ("bf", "1w", False),
    ("bf", "2024-06-13", True),
    ("af", "2024-06-13", False),
    ("af", "2024-06-12", True),
    ("af", "2024-06-12T13:00:00+02:00", True),  # 11:00 UTC
    ("bf", "2024-06-12T13:00:00Z", True),
    # Both are strict: a push exactly at the point is neither before nor after.
    ("bf", "2024-06-12T12:00:00", False),
    ("af", "2024-06-12T12:00:00", False),
    ("bf", "3d", False),
    ("af", "3d", False),
]


@pytest.mark.parametrize(("operator", "value", "expected"), LAST_UPDATED_CASES)
def test_last_updated_operators(operator, value, expected):
    decision = decide("last_updated", operator, [value], pushed_at=PUSHED_AT)

    assert single(decision)[0] is expected


def test_last_updated_reason_names_both_times():
    decision = decide("last_updated", "bf", ["7d"], pushed_at=PUSHED_AT)

    assert single(decision)[1] == (
        "tag last pushed 2024-06-12T12:00:00Z, not before 2024-06-08T12:00:00Z (7d before now)"
    )


def test_last_updated_uses_the_given_now_in_utc():
    later = datetime(2024, 6, 30, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    rule = Rule("last_updated", "af", ("7d",))

    assert evaluate([rule], make_facts(pushed_at=PUSHED_AT), now=NOW).outcome == Outcome.MATCH
    assert evaluate([rule], make_facts(pushed_at=PUSHED_AT), now=later).outcome == (
        Outcome.NO_MATCH
    )


def test_last_updated_rules_do_not_need_a_scan():
    decision = decide("last_updated", "af", ["7d"], scan_done=False, pushed_at=PUSHED_AT)

    assert decision.outcome == Outcome.MATCH


# --- combining rules, and waiting for the scan -----------------------------------

SCAN_RULES = [
    Rule("component_name", "oo", ("zlib",)),
    Rule("license", "noo", ("GPL-3.0-only",)),
    *(Rule(field, "eq", ("0",)) for field in VULNERABILITY_FIELDS),
]


@pytest.mark.parametrize("scan_rule", SCAN_RULES, ids=str)
def test_a_scan_rule_waits_for_the_scan(scan_rule):
    passing_tag_rule = Rule("tag_name", "ew", ("stable",))
    # All-zero counts would satisfy the "eq 0" rules if they were evaluated.
    facts = make_facts(scan_done=False, vulnerability_counts={})

    decision = evaluate([passing_tag_rule, scan_rule], facts, now=NOW)

    assert decision.outcome == Outcome.NEEDS_SCAN
    assert decision.results[0].matched is True
    assert decision.results[1].matched is None
    assert decision.results[1].reason == (
        f"waiting for the image's scan: a rule on {scan_rule.field.label} needs one"
    )
    assert decision.summary == decision.results[1].reason


def test_a_failing_rule_that_needs_no_scan_decides_without_waiting():
    failing_tag_rule = Rule("tag_name", "ew", ("stable",))
    scan_rule = Rule("vulns_critical", "eq", ("0",))

    decision = evaluate(
        [scan_rule, failing_tag_rule], make_facts(tag="1.0", scan_done=False), now=NOW
    )

    assert decision.outcome == Outcome.NO_MATCH
    assert [result.matched for result in decision.results] == [None, False]
    assert decision.results[0].reason.startswith("not evaluated")
    assert decision.summary == "tag '1.0' does not end with 'stable'"


def test_scan_rules_are_evaluated_once_the_scan_is_done():
    rules = [Rule("tag_name", "ew", ("stable",)), Rule("vulns_critical", "lt", ("1",))]

    waiting = evaluate(rules, make_facts(scan_done=False), now=NOW)
    scanned_dirty = evaluate(rules, make_facts(scan_done=True), now=NOW)
    scanned_clean = evaluate(
        rules, make_facts(scan_done=True, vulnerability_counts={"high": 4}), now=NOW
    )

    assert waiting.outcome == Outcome.NEEDS_SCAN
    assert scanned_dirty.outcome == Outcome.NO_MATCH
    assert scanned_clean.outcome == Outcome.MATCH


def test_every_rule_must_match():
    rules = [
        Rule("tag_name", "sw", ("1.",)),
        Rule("tag_name", "ew", ("beta",)),
        Rule("license", "oo", ("MIT",)),
    ]

    decision = evaluate(rules, make_facts(), now=NOW)

    assert decision.outcome == Outcome.NO_MATCH
    assert [result.matched for result in decision.results] == [True, False, True]
    assert [result.rule for result in decision.results] == rules
    assert decision.summary == "tag '1.0-stable' does not end with 'beta'"


def test_a_policy_without_rules_matches_everything():
    decision = evaluate([], make_facts(scan_done=False), now=NOW)

    assert decision.outcome == Outcome.MATCH
    assert decision.results == ()
    assert decision.summary == "the policy has no rules: every tag matches"


def test_a_match_summary_lists_every_reason():
    rules = [Rule("tag_name", "sw", ("1.",)), Rule("license", "oo", ("MIT",))]

    decision = evaluate(rules, make_facts(), now=NOW)

    assert decision.summary == "tag '1.0-stable' starts with '1.'; the image uses license 'MIT'"


def test_evaluate_accepts_any_iterable_of_rules():
    rules = (rule for rule in [Rule("tag_name", "c", ("stable",))])

    assert evaluate(rules, make_facts(), now=NOW).outcome == Outcome.MATCH


def test_evaluate_refuses_a_naive_now():
    with pytest.raises(ValueError, match="aware"):
        evaluate([], make_facts(), now=datetime(2024, 1, 1))


def test_outcomes_are_plain_strings():
    assert Outcome.NEEDS_SCAN == "needs_scan"
    assert {outcome.value for outcome in Outcome} == {
        "match",
        "no_match",
        "needs_scan",
        "missing_data",
    }


# --- the data types -----------------------------------------------------------------


def test_image_facts_derive_all_and_fill_missing_severities():
    facts = make_facts(vulnerability_counts={"critical": 1, "unknown": 2})

    assert dict(facts.vulnerability_counts) == {
        "critical": 1,
        "high": 0,
        "medium": 0,
        "low": 0,
        "unknown": 2,
        "all": 3,
    }


def test_image_facts_counts_are_read_only():
    facts = make_facts()

    with pytest.raises(TypeError):
        facts.vulnerability_counts["critical"] = 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ({"all": 3}, "derived"),
        ({"severe": 1}, "unknown severities"),
        ({"high": -1}, "whole number"),
        ({"high": 1.5}, "whole number"),
        ({"high": True}, "whole number"),
    ],
)
def test_image_facts_refuse_bad_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        make_facts(vulnerability_counts=counts)


def test_image_facts_refuse_a_naive_push_time():
    with pytest.raises(ValueError, match="aware"):
        make_facts(pushed_at=datetime(2024, 1, 1))


@pytest.mark.parametrize("tag", ["", "a" * 129])
def test_image_facts_refuse_tags_of_impossible_length(tag):
    with pytest.raises(ValueError, match="1 to 128"):
        make_facts(tag=tag)


def test_image_facts_normalise_time_and_collections():
    facts = make_facts(
        pushed_at=datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2))),
        component_names=["zlib", "zlib"],
        licenses={"MIT"},
    )

    assert facts.pushed_at == datetime(2024, 1, 1, tzinfo=UTC)
    assert facts.pushed_at.tzinfo is UTC
    assert facts.component_names == frozenset({"zlib"})
    assert isinstance(facts.licenses, frozenset)


def test_rules_accept_codes_and_normalise_them():
    rule = Rule("tag_name", "ew", ["stable"])  # type: ignore[arg-type]

    assert rule.field is RuleField.TAG_NAME
    assert rule.operator is RuleOperator.ENDS_WITH
    assert rule.values == ("stable",)
    assert str(rule) == "tag name ends with 'stable'"
    assert not rule.needs_scan
    assert Rule("vulns_low", "eq", ("0",)).needs_scan


def test_an_invalid_rule_cannot_be_built():
    with pytest.raises(InvalidRuleError) as raised:
        Rule("license", "sw", ("MIT",))

    assert raised.value.errors == (
        "'starts with' does not apply to license (SPDX id); use one of: one of, not one of",
    )


# --- properties -----------------------------------------------------------------------

valid_tags = st.from_regex(TAG_PATTERN, fullmatch=True)
tag_fragments = st.from_regex(r"[A-Za-z0-9._-]{1,12}", fullmatch=True)
names = st.text(alphabet="abcxyz-._0", min_size=1, max_size=6)
name_sets = st.frozensets(names, max_size=6)
name_lists = st.lists(names, min_size=1, max_size=4)


@st.composite
def tags_and_fragments(draw: st.DrawFn) -> tuple[str, str]:
    """A valid tag and a fragment that is often, but not always, part of it."""
    tag = draw(valid_tags)
    if draw(st.booleans()):
        start = draw(st.integers(0, len(tag) - 1))
        end = draw(st.integers(start + 1, len(tag)))
        return tag, tag[start:end]
    return tag, draw(tag_fragments)


@given(tags_and_fragments())
def test_text_operators_agree_with_str_methods(tag_and_fragment):
    tag, fragment = tag_and_fragment
    facts = make_facts(tag=tag)

    def matched(operator: str, value: str = fragment) -> bool | None:
        return evaluate([Rule("tag_name", operator, (value,))], facts, now=NOW).results[0].matched

    assert matched("ew") is tag.endswith(fragment)
    assert matched("c") is (fragment in tag)
    # An escaped fragment as a regex: re.search semantics make it "contains".
    assert matched("matches", re.escape(fragment)) is (fragment in tag)
    if fragment[0] not in ".-":
        assert matched("sw") is tag.startswith(fragment)
        assert matched("eq") is (tag == fragment)


@given(name_sets, name_lists, st.sampled_from(["eq", "sw", "ew", "c"]))
def test_component_text_operators_mean_some_component(component_names, values, operator):
    value = values[0]
    facts = make_facts(component_names=component_names)
    predicate = {
        "eq": str.__eq__,
        "sw": str.startswith,
        "ew": str.endswith,
        "c": str.__contains__,
    }[operator]

    result = evaluate([Rule("component_name", operator, (value,))], facts, now=NOW).results[0]

    assert result.matched is any(predicate(name, value) for name in component_names)


@given(name_sets, name_lists)
def test_component_one_of_and_not_one_of_are_complements(component_names, values):
    facts = make_facts(component_names=component_names)
    one_of = Rule("component_name", "oo", tuple(values))
    not_one_of = Rule("component_name", "noo", tuple(values))

    decision = evaluate([one_of, not_one_of], facts, now=NOW)

    one_of_matched, not_one_of_matched = (result.matched for result in decision.results)
    assert one_of_matched is not not_one_of_matched
    assert one_of_matched is bool(component_names & set(values))
    assert decision.outcome == Outcome.NO_MATCH


@given(valid_tags, st.lists(valid_tags, min_size=1, max_size=4))
def test_tag_one_of_and_not_one_of_are_complements(tag, values):
    facts = make_facts(tag=tag)
    decision = evaluate(
        [Rule("tag_name", "oo", tuple(values)), Rule("tag_name", "noo", tuple(values))],
        facts,
        now=NOW,
    )

    one_of_matched, not_one_of_matched = (result.matched for result in decision.results)
    assert one_of_matched is (tag in values)
    assert not_one_of_matched is (tag not in values)


spdx_ids = st.sampled_from(["MIT", "Apache-2.0", "GPL-3.0-only", "BSD-3-Clause", "ISC"])


@given(st.frozensets(spdx_ids), st.lists(spdx_ids, min_size=1, max_size=3), st.booleans())
def test_license_operators_are_complements_and_ignore_case(licenses, values, swap_case):
    asked = tuple(value.swapcase() if swap_case else value for value in values)
    facts = make_facts(licenses=licenses)

    decision = evaluate(
        [Rule("license", "oo", asked), Rule("license", "noo", asked)], facts, now=NOW
    )

    one_of_matched, not_one_of_matched = (result.matched for result in decision.results)
    assert one_of_matched is bool(licenses & set(values))
    assert not_one_of_matched is not one_of_matched


COMPARISONS = {
    "gte": int.__ge__,
    "gt": int.__gt__,
    "eq": int.__eq__,
    "neq": int.__ne__,
    "lte": int.__le__,
    "lt": int.__lt__,
}


@given(
    st.sampled_from([str(field) for field in VULNERABILITY_FIELDS]),
    st.sampled_from(sorted(COMPARISONS)),
    st.fixed_dictionaries(
        {severity: st.integers(0, 10_000) for severity in ("critical", "high", "medium", "low")},
        optional={"unknown": st.integers(0, 10_000)},
    ),
    st.integers(0, 999_999_999),
)
def test_count_operators_agree_with_python_comparisons(field, operator, counts, threshold):
    facts = make_facts(vulnerability_counts=counts)
    expected_count = sum(counts.values()) if field == "vulns_all" else counts[SEVERITY_OF[field]]

    result = evaluate([Rule(field, operator, (str(threshold),))], facts, now=NOW).results[0]

    assert result.matched is COMPARISONS[operator](expected_count, threshold)


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
    st.integers(0, 5_000),  # 5,000 weeks is within the 100 years a duration may span
    st.sampled_from("mhdw"),
)
def test_before_and_after_never_both_hold(pushed_at, amount, unit):
    value = f"{amount}{unit}"
    facts = make_facts(pushed_at=pushed_at)

    decision = evaluate(
        [Rule("last_updated", "bf", (value,)), Rule("last_updated", "af", (value,))],
        facts,
        now=NOW,
    )

    before, after = (result.matched for result in decision.results)
    assert not (before and after)
    unit_length = {"m": timedelta(minutes=1), "h": timedelta(hours=1)}.get(
        unit, timedelta(days=1 if unit == "d" else 7)
    )
    point = NOW - amount * unit_length
    assert before is (pushed_at < point)
    assert after is (pushed_at > point)
