"""The promotion engine: does an image satisfy a policy's rules?

Pure: plain data in (``ImageFacts`` and ``Rule``s), a ``Decision`` out. No ORM,
no I/O and no clock: the caller passes ``now``. The promotion task gathers the
facts, asks ``evaluate`` and acts on the outcome; forms and the API call
``validate_rule`` so that a bad rule is refused when the policy is saved.

Semantics, and the reasons behind them:

- Every rule must match. A policy without rules matches every tag.
- Rules on components, licenses and vulnerabilities need a finished scan.
  Without one such a rule is never evaluated on missing data: the decision is
  ``NEEDS_SCAN``, unless a rule that needs no scan already fails, in which case
  it is ``NO_MATCH`` at once. No scan result can turn that failure into a
  match, so the policy need not wait for the scan and its record says why at
  push time.
- ``matches`` uses ``re.search``, like DTR: ``stable`` matches any tag that
  contains it, and users anchor with ``^`` and ``$`` when they mean the whole
  tag. Matching is case-sensitive, as tags are.
- Component names: the text operators (``eq sw ew c matches``) hold when some
  component's name satisfies them; ``oo`` when the image contains at least one
  of the names, ``noo`` when it contains none. Names compare the way their
  ecosystem compares them (``normalise_component_name``): PyPI names by PEP 503
  (``Django``, ``django`` and ``DJANGO`` are one project, as are ``zope.interface``
  and ``zope-interface``), Debian, Alpine and npm names case-insensitively, and
  the others (RPM, Maven, Go) as written. ``matches`` searches the name as
  written (add ``(?i)`` to ignore case). A name whose ecosystem is unknown
  compares as written.
- Gates fail closed. ``ImageFacts.missing`` names the data the scan could not
  give (no vulnerability snapshot used, licenses not recognised, layers skipped
  or unreadable, OS not identified). A rule that needs missing data is decided
  on the data present only when more data could not change its answer: a
  component or license found satisfies ``oo`` whatever else is missing, and
  one found fails ``noo``; a count already over a ``<`` bound fails. Otherwise
  it is not decided (``matched`` None) and, unless another rule fails, the
  outcome is ``MISSING_DATA``, with what is missing in ``Decision.missing`` and
  in the reason. A policy that opts in (``pass_on_missing_data``) decides such
  rules on the data present, and the reason says so.
- Licenses: ``oo`` / ``noo`` on SPDX ids, compared case-insensitively
  (``mit`` is ``MIT``), as SPDX ids are.
- ``last_updated`` values are an ISO 8601 date or date-time (naive ones are
  UTC; a date is its midnight) or a duration ``<n>m``, ``<n>h``, ``<n>d`` or
  ``<n>w`` before ``now``. ``bf`` means pushed strictly before that point,
  ``af`` strictly after: "af 7d" is "pushed within the last 7 days".
- Vulnerability ``all`` counts every severity, ``unknown`` included.

Regular expressions are written by policy admins but run on every push, and
Python's ``re`` cannot be interrupted. So ``validate_rule`` refuses the shapes
that backtrack catastrophically (nested quantifiers, ambiguous alternation
under a quantifier, long runs of quantifiers over the same characters), and
the subjects are bounded: tags are at most 128 characters, and component names
longer than that are not matched against a regex.
"""

import operator as operators
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from re import _constants as sre_constants
from re import _parser as sre_parse
from types import MappingProxyType
from typing import Any

from promotions.choices import (
    FIELD_OPERATORS,
    MULTI_VALUE_OPERATORS,
    VULNERABILITY_FIELD_SEVERITY,
    RuleField,
    RuleOperator,
    field_needs_scan,
    operator_label,
)

MAX_TAG_LENGTH = 128
TAG_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
TAG_CHARACTERS = re.compile(r"[A-Za-z0-9._-]+")

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "unknown")

MAX_VALUES = 100
MAX_VALUE_LENGTH = 256
MAX_REGEX_LENGTH = 256
# Longer component names are not matched against a regex: they bound the
# work a crafted image can cause.
MAX_REGEX_SUBJECT_LENGTH = 128
# ".*.*.*x" on 128 characters takes milliseconds, ".*.*.*.*x" half a second.
MAX_OVERLAPPING_QUANTIFIERS = 3
MAX_COUNT_DIGITS = 9
MAX_DURATION = timedelta(days=36_600)

DURATION_PATTERN = re.compile(r"([0-9]{1,6})([mhdw])")
DURATION_UNITS: Mapping[str, timedelta] = MappingProxyType(
    {
        "m": timedelta(minutes=1),
        "h": timedelta(hours=1),
        "d": timedelta(days=1),
        "w": timedelta(weeks=1),
    }
)
SPDX_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+:-]*")


def is_valid_tag(tag: str) -> bool:
    """Whether ``tag`` is a valid OCI tag."""
    return TAG_PATTERN.fullmatch(tag) is not None


class Outcome(StrEnum):
    """What the engine decided for one image and one policy."""

    MATCH = "match"
    NO_MATCH = "no_match"
    NEEDS_SCAN = "needs_scan"
    MISSING_DATA = "missing_data"


class MissingData(StrEnum):
    """Data a finished scan may still lack; ``ImageFacts.missing`` maps each to words."""

    VULNERABILITY_DATA = "vulnerability_data"  # no OSV snapshot was used for matching
    LICENSES = "licenses"  # some component's license was not recognised (or not found)
    LAYERS = "layers"  # layers or files skipped, unreadable, or over the reader's limits
    OS = "os"  # OS packages found, but the OS was not identified: they were not matched


# Which missing data leaves a rule on each scan field undecidable.
DATA_NEEDED: Mapping[RuleField, frozenset[MissingData]] = MappingProxyType(
    {
        RuleField.COMPONENT_NAME: frozenset({MissingData.LAYERS}),
        RuleField.LICENSE: frozenset({MissingData.LAYERS, MissingData.LICENSES}),
        **{
            field: frozenset({MissingData.LAYERS, MissingData.VULNERABILITY_DATA, MissingData.OS})
            for field in VULNERABILITY_FIELD_SEVERITY
        },
    }
)

# Ecosystems (component types) whose package names compare case-insensitively.
CASE_INSENSITIVE_COMPONENT_TYPES = frozenset({"deb", "apk", "npm"})
_PEP503_SEPARATORS = re.compile(r"[-_.]+")


def normalise_component_name(component_type: str, name: str) -> str:
    """A component name as its ecosystem compares it: PEP 503 for PyPI, case-folded where
    the ecosystem ignores case, else as written."""
    if component_type == "pypi":
        return _PEP503_SEPARATORS.sub("-", name).lower()
    if component_type in CASE_INSENSITIVE_COMPONENT_TYPES:
        return name.casefold()
    return name


class InvalidRuleError(ValueError):
    """A rule that ``validate_rule`` refuses; ``errors`` lists why."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors: tuple[str, ...] = tuple(errors)
        super().__init__("; ".join(self.errors))


@dataclass(frozen=True)
class ImageFacts:
    """What the engine may know about one pushed image.

    ``vulnerability_counts`` takes the counts per severity (``critical high
    medium low unknown``; missing ones are 0) and holds them read-only with
    ``all``, their sum, added. The component, license and vulnerability facts
    are only read when ``scan_done`` is true.

    ``components`` holds ``(type, name)`` pairs (``("pypi", "Django")``), compared
    as their ecosystem compares names; ``component_names`` holds names of unknown
    ecosystem, compared as written. ``missing`` maps each ``MissingData`` the
    scan lacks to words saying what and why ("no vulnerability snapshot was
    used"); any other key is refused, so a new kind of gap is named here first.
    """

    tag: str
    pushed_at: datetime
    scan_done: bool = False
    component_names: frozenset[str] = frozenset()
    licenses: frozenset[str] = frozenset()
    vulnerability_counts: Mapping[str, int] = dataclass_field(default_factory=dict, hash=False)
    components: frozenset[tuple[str, str]] = frozenset()
    missing: Mapping[str, str] = dataclass_field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not self.tag or len(self.tag) > MAX_TAG_LENGTH:
            raise ValueError(f"a tag has 1 to {MAX_TAG_LENGTH} characters, not {len(self.tag)}")
        if self.pushed_at.tzinfo is None or self.pushed_at.utcoffset() is None:
            raise ValueError("pushed_at must be an aware datetime")
        object.__setattr__(self, "pushed_at", self.pushed_at.astimezone(UTC))
        object.__setattr__(self, "component_names", frozenset(self.component_names))
        object.__setattr__(
            self, "components", frozenset((str(kind), str(name)) for kind, name in self.components)
        )
        unknown_gaps = sorted(set(self.missing) - set(MissingData))
        if unknown_gaps:
            raise ValueError(f"unknown missing data {unknown_gaps}; use {list(MissingData)}")
        object.__setattr__(
            self, "missing", MappingProxyType({MissingData(k): v for k, v in self.missing.items()})
        )
        object.__setattr__(self, "licenses", frozenset(self.licenses))
        object.__setattr__(
            self, "vulnerability_counts", _complete_counts(self.vulnerability_counts)
        )


def _complete_counts(given: Mapping[str, int]) -> Mapping[str, int]:
    unknown_keys = sorted(set(given) - set(SEVERITIES))
    if unknown_keys:
        raise ValueError(
            f"unknown severities {unknown_keys}; use {', '.join(SEVERITIES)} "
            "('all' is derived from them)"
        )
    counts = {severity: given.get(severity, 0) for severity in SEVERITIES}
    for severity, count in counts.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"the {severity} count must be a whole number >= 0, not {count!r}")
    counts["all"] = sum(counts.values())
    return MappingProxyType(counts)


@dataclass(frozen=True)
class Rule:
    """One criterion of a policy: ``field operator values``.

    Building a rule validates it (see ``validate_rule``) and raises
    ``InvalidRuleError`` if it is refused, so ``evaluate`` only sees valid
    rules. ``field`` and ``operator`` accept the codes as plain strings.
    """

    field: RuleField
    operator: RuleOperator
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        errors = validate_rule(self.field, self.operator, self.values)
        if errors:
            raise InvalidRuleError(errors)
        object.__setattr__(self, "field", RuleField(self.field))
        object.__setattr__(self, "operator", RuleOperator(self.operator))
        object.__setattr__(self, "values", tuple(self.values))

    @property
    def needs_scan(self) -> bool:
        return field_needs_scan(self.field)

    def __str__(self) -> str:
        values = ", ".join(_quote(value) for value in self.values)
        return f"{self.field.label} {operator_label(self.field, self.operator)} {values}"


@dataclass(frozen=True)
class RuleResult:
    """How one rule fared: ``matched`` is None when it was not evaluated."""

    rule: Rule
    matched: bool | None
    reason: str


@dataclass(frozen=True)
class Decision:
    """The engine's answer: an outcome, and one result per rule, in order.

    ``missing`` names the data whose absence left a rule undecided (outcome
    ``MISSING_DATA``) or, for a policy that passes on missing data, that its
    decision was made without.
    """

    outcome: Outcome
    results: tuple[RuleResult, ...]
    missing: tuple[MissingData, ...] = ()

    @property
    def summary(self) -> str:
        """One line for a promotion record: why it matched, or why not yet."""
        if self.outcome == Outcome.MATCH:
            if not self.results:
                return "the policy has no rules: every tag matches"
            return "; ".join(result.reason for result in self.results)
        if self.outcome == Outcome.NO_MATCH:
            return "; ".join(result.reason for result in self.results if result.matched is False)
        return "; ".join(result.reason for result in self.results if result.matched is None)


# --- evaluation ---------------------------------------------------------------


def evaluate(
    rules: Iterable[Rule],
    facts: ImageFacts,
    *,
    now: datetime,
    pass_on_missing_data: bool = False,
) -> Decision:
    """Decide whether ``facts`` satisfy every rule, at time ``now`` (aware).

    ``pass_on_missing_data`` is a policy's explicit opt-in to deciding rules on the data
    present when some is missing (see the module's docstring).
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    now = now.astimezone(UTC)
    rules = tuple(rules)
    evaluated: dict[int, RuleResult] = {}
    undecided: dict[int, RuleResult] = {}
    missing_used: list[MissingData] = []
    for index, rule in enumerate(rules):
        if rule.needs_scan and not facts.scan_done:
            continue
        matched, reason = _evaluate_rule(rule, facts, now)
        gaps = _gaps(rule, facts) if rule.needs_scan else []
        if gaps and not _settled_despite_gaps(rule, facts, matched):
            missing_used += [gap for gap in gaps if gap not in missing_used]
            words = "; ".join(facts.missing[gap] for gap in gaps)
            if pass_on_missing_data:
                reason = f"{reason} (decided on incomplete data, as the policy allows: {words})"
            else:
                undecided[index] = RuleResult(
                    rule=rule, matched=None, reason=f"cannot be decided: {words}"
                )
                continue
        evaluated[index] = RuleResult(rule=rule, matched=matched, reason=reason)

    some_rule_fails = any(result.matched is False for result in evaluated.values())
    waiting = len(evaluated) + len(undecided) < len(rules)
    if some_rule_fails:
        outcome = Outcome.NO_MATCH
        pending_reason = "not evaluated: the image is not scanned yet, and another rule fails"
    elif waiting:
        outcome = Outcome.NEEDS_SCAN
        pending_reason = "waiting for the image's scan: a rule on {field} needs one"
    elif undecided:
        outcome = Outcome.MISSING_DATA
        pending_reason = ""
    else:
        outcome = Outcome.MATCH
        pending_reason = ""

    results = tuple(
        evaluated.get(index)
        or undecided.get(index)
        or RuleResult(rule=rule, matched=None, reason=pending_reason.format(field=rule.field.label))
        for index, rule in enumerate(rules)
    )
    return Decision(outcome=outcome, results=results, missing=tuple(missing_used))


def _gaps(rule: Rule, facts: ImageFacts) -> list[MissingData]:
    """The missing data this rule needs, in ``MissingData`` order."""
    needed = DATA_NEEDED.get(rule.field, frozenset())
    return [gap for gap in MissingData if gap in needed and gap in facts.missing]


def _settled_despite_gaps(rule: Rule, facts: ImageFacts, matched: bool) -> bool:
    """Whether more data could not change this answer: missing data only ever adds
    components, licenses and findings, so what is found stays found."""
    if rule.field in VULNERABILITY_FIELD_SEVERITY:
        count = facts.vulnerability_counts[VULNERABILITY_FIELD_SEVERITY[rule.field]]
        threshold = int(rule.values[0])
        if rule.operator in (RuleOperator.GREATER_OR_EQUAL, RuleOperator.GREATER):
            return matched  # a count only grows: reached stays reached
        if rule.operator in (RuleOperator.LESS_OR_EQUAL, RuleOperator.LESS):
            return not matched
        # = and != : settled once the count is already over the value
        return count > threshold
    if rule.operator == RuleOperator.NOT_ONE_OF:
        return not matched  # something listed was found: it stays found
    return matched  # oo and the text operators: something found satisfies them


def _evaluate_rule(rule: Rule, facts: ImageFacts, now: datetime) -> tuple[bool, str]:
    if rule.field == RuleField.TAG_NAME:
        return _evaluate_tag(rule, facts.tag)
    if rule.field == RuleField.COMPONENT_NAME:
        return _evaluate_component_name(rule, facts.component_names, facts.components)
    if rule.field == RuleField.LICENSE:
        return _evaluate_license(rule, facts.licenses)
    if rule.field == RuleField.LAST_UPDATED:
        return _evaluate_last_updated(rule, facts.pushed_at, now)
    return _evaluate_count(rule, facts.vulnerability_counts)


def _regex_search(subject: str, pattern: str) -> bool:
    if len(subject) > MAX_REGEX_SUBJECT_LENGTH:
        return False
    return re.search(pattern, subject) is not None


# operator: (predicate(subject, value), "verb when true", "verb when false")
_TEXT_PREDICATES: Mapping[RuleOperator, tuple[Callable[[str, str], bool], str, str]] = (
    MappingProxyType(
        {
            RuleOperator.EQUALS: (operators.eq, "equals", "does not equal"),
            RuleOperator.STARTS_WITH: (str.startswith, "starts with", "does not start with"),
            RuleOperator.ENDS_WITH: (str.endswith, "ends with", "does not end with"),
            RuleOperator.CONTAINS: (operators.contains, "contains", "does not contain"),
            RuleOperator.MATCHES: (_regex_search, "matches", "does not match"),
        }
    )
)


def _evaluate_tag(rule: Rule, tag: str) -> tuple[bool, str]:
    if rule.operator in MULTI_VALUE_OPERATORS:
        is_listed = tag in rule.values
        matched = is_listed if rule.operator == RuleOperator.ONE_OF else not is_listed
        relation = "is one of" if is_listed else "is not one of"
        return matched, f"tag {_quote(tag)} {relation} {_quote_all(rule.values)}"
    predicate, verb, negated_verb = _TEXT_PREDICATES[rule.operator]
    (value,) = rule.values
    matched = predicate(tag, value)
    return matched, f"tag {_quote(tag)} {verb if matched else negated_verb} {_quote(value)}"


def _evaluate_component_name(
    rule: Rule, component_names: frozenset[str], components: frozenset[tuple[str, str]]
) -> tuple[bool, str]:
    typed = [("", name) for name in component_names] + sorted(components)
    if rule.operator in MULTI_VALUE_OPERATORS:
        present = sorted(
            {
                name
                for kind, name in typed
                for value in rule.values
                if normalise_component_name(kind, name) == normalise_component_name(kind, value)
            }
        )
        matched = bool(present) == (rule.operator == RuleOperator.ONE_OF)
        if present:
            return matched, f"the image contains component {_quote_all(present)}"
        return matched, f"the image contains none of the components {_quote_all(rule.values)}"
    predicate, verb, _negated_verb = _TEXT_PREDICATES[rule.operator]
    (value,) = rule.values
    component_names = frozenset(name for _kind, name in typed)
    if rule.operator == RuleOperator.MATCHES:
        hits = sorted(name for name in component_names if predicate(name, value))
    else:
        hits = sorted(
            {
                name
                for kind, name in typed
                if predicate(
                    normalise_component_name(kind, name), normalise_component_name(kind, value)
                )
            }
        )
    if hits:
        more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
        return True, f"component name {_quote(hits[0])} {verb} {_quote(value)}{more}"
    count = len(component_names)
    noun = "component" if count == 1 else "components"
    return False, f"no component name {verb} {_quote(value)} (the image has {count} {noun})"


def _evaluate_license(rule: Rule, licenses: frozenset[str]) -> tuple[bool, str]:
    used = {license_id.casefold() for license_id in licenses}
    present = [value for value in rule.values if value.casefold() in used]
    matched = bool(present) == (rule.operator == RuleOperator.ONE_OF)
    if present:
        return matched, f"the image uses license {_quote_all(present)}"
    return matched, f"the image uses none of the licenses {_quote_all(rule.values)}"


_COUNT_COMPARISONS: Mapping[RuleOperator, Callable[[int, int], bool]] = MappingProxyType(
    {
        RuleOperator.GREATER_OR_EQUAL: operators.ge,
        RuleOperator.GREATER: operators.gt,
        RuleOperator.EQUALS: operators.eq,
        RuleOperator.NOT_EQUAL: operators.ne,
        RuleOperator.LESS_OR_EQUAL: operators.le,
        RuleOperator.LESS: operators.lt,
    }
)


def _evaluate_count(rule: Rule, counts: Mapping[str, int]) -> tuple[bool, str]:
    count = counts[VULNERABILITY_FIELD_SEVERITY[rule.field]]
    threshold = int(rule.values[0])
    matched = _COUNT_COMPARISONS[rule.operator](count, threshold)
    symbol = operator_label(rule.field, rule.operator)
    relation = f"{symbol} {threshold}" if matched else f"not {symbol} {threshold}"
    return matched, f"{rule.field.label}: {count}, which is {relation}"


def _evaluate_last_updated(rule: Rule, pushed_at: datetime, now: datetime) -> tuple[bool, str]:
    value = rule.values[0]
    point = resolve_time_value(value, now=now)
    if rule.operator == RuleOperator.BEFORE:
        matched, word = pushed_at < point, "before"
    else:
        matched, word = pushed_at > point, "after"
    relation = word if matched else f"not {word}"
    described = _format_time(point)
    if DURATION_PATTERN.fullmatch(value):
        described += f" ({value} before now)"
    return matched, f"tag last pushed {_format_time(pushed_at)}, {relation} {described}"


def resolve_time_value(value: str, *, now: datetime) -> datetime:
    """The aware UTC point in time a ``last_updated`` value names at ``now``.

    Raises ``ValueError`` for a value ``validate_rule`` would refuse.
    """
    parsed = _parse_time_value(value)
    if isinstance(parsed, datetime):
        return parsed
    try:
        return now.astimezone(UTC) - parsed
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def _parse_time_value(value: str) -> datetime | timedelta:
    duration = DURATION_PATTERN.fullmatch(value)
    if duration:
        amount, unit = duration.groups()
        length = int(amount) * DURATION_UNITS[unit]
        if length > MAX_DURATION:
            raise ValueError(f"{_quote(value)} is longer than 100 years")
        return length
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"{_quote(value)} is neither a date or time (ISO 8601, e.g. '2024-05-01' or "
            "'2024-05-01T12:00:00Z') nor a duration (e.g. '30m', '12h', '7d', '2w')"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _format_time(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _quote(text: str) -> str:
    return f"'{text}'"


def _quote_all(texts: Iterable[str]) -> str:
    return ", ".join(_quote(text) for text in texts)


# --- validation ---------------------------------------------------------------


def validate_rule(
    field: RuleField | str, operator: RuleOperator | str, values: Sequence[str]
) -> list[str]:
    """Why a rule would be refused: an empty list when it is valid. Pure."""
    if field not in RuleField.values:
        return [f"{_quote(str(field))} is not a rule field; use one of: {_quote_all(RuleField)}"]
    field = RuleField(field)
    if operator not in RuleOperator.values:
        return [
            f"{_quote(str(operator))} is not an operator; use one of: {_quote_all(RuleOperator)}"
        ]
    operator = RuleOperator(operator)
    fitting = FIELD_OPERATORS[field]
    if operator not in fitting:
        labels = ", ".join(operator_label(field, candidate) for candidate in fitting)
        return [
            f"'{operator_label(field, operator)}' does not apply to {field.label}; "
            f"use one of: {labels}"
        ]
    if isinstance(values, str | bytes) or not all(isinstance(value, str) for value in values):
        return ["the values must be a list of strings"]
    if not values:
        return [f"'{operator_label(field, operator)}' needs a value"]

    errors: list[str] = []
    if operator not in MULTI_VALUE_OPERATORS and len(values) > 1:
        errors.append(
            f"'{operator_label(field, operator)}' takes exactly one value, not {len(values)}"
        )
    if len(values) > MAX_VALUES:
        errors.append(f"at most {MAX_VALUES} values, not {len(values)}")
    for value in values:
        errors.extend(_value_errors(field, operator, value))
    return errors


def _value_errors(field: RuleField, operator: RuleOperator, value: str) -> list[str]:
    if not value.strip():
        return ["a value may not be empty"]
    if operator == RuleOperator.MATCHES:
        return validate_regex(value)
    if len(value) > MAX_VALUE_LENGTH:
        return [f"a value may have at most {MAX_VALUE_LENGTH} characters, not {len(value)}"]
    if field == RuleField.TAG_NAME:
        return _tag_value_errors(operator, value)
    if field == RuleField.LICENSE:
        if SPDX_ID_PATTERN.fullmatch(value) is None:
            return [
                f"{_quote(value)} is not an SPDX license id (e.g. 'MIT', 'Apache-2.0'); "
                "give each id of an expression as its own value"
            ]
        return []
    if field == RuleField.LAST_UPDATED:
        try:
            _parse_time_value(value)
        except ValueError as error:
            return [str(error)]
        return []
    if field in VULNERABILITY_FIELD_SEVERITY:
        if re.fullmatch(r"-[0-9]+", value):
            return [f"a count may not be negative: {_quote(value)}"]
        if re.fullmatch(rf"[0-9]{{1,{MAX_COUNT_DIGITS}}}", value) is None:
            return [f"{_quote(value)} is not a count; give a whole number, 0 or more"]
    return []


def _tag_value_errors(operator: RuleOperator, value: str) -> list[str]:
    # A value no tag can satisfy is a mistake: say so now, not by silence later.
    if operator in (RuleOperator.EQUALS, *MULTI_VALUE_OPERATORS):
        if not is_valid_tag(value):
            return [
                f"{_quote(value)} is not a valid tag (letters, digits, '_', '.' and '-', "
                f"at most {MAX_TAG_LENGTH} characters, not starting with '.' or '-')"
            ]
        return []
    if TAG_CHARACTERS.fullmatch(value) is None or len(value) > MAX_TAG_LENGTH:
        return [
            f"{_quote(value)} cannot be part of a tag (letters, digits, '_', '.' and '-', "
            f"at most {MAX_TAG_LENGTH} characters)"
        ]
    if operator == RuleOperator.STARTS_WITH and value[0] in ".-":
        return [f"no tag starts with {_quote(value)}: a tag cannot start with '.' or '-'"]
    return []


# --- regular expression safety -----------------------------------------------

_REPEATS = frozenset(
    {sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT}
)
# A character set as sorted, disjoint, inclusive (low, high) code point ranges.
_Chars = tuple[tuple[int, int], ...]
_NO_CHARS: _Chars = ()
_ALL_CHARS: _Chars = ((0, sys.maxunicode),)
_CATEGORY_CHARS: Mapping[object, _Chars] = MappingProxyType(
    {
        sre_constants.CATEGORY_DIGIT: ((48, 57),),
        sre_constants.CATEGORY_WORD: ((48, 57), (65, 90), (95, 95), (97, 122)),
        sre_constants.CATEGORY_SPACE: ((9, 13), (32, 32)),
    }
)


def validate_regex(pattern: str) -> list[str]:
    """Why ``pattern`` is refused as a ``matches`` value: empty when accepted."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return [
            f"a regular expression may have at most {MAX_REGEX_LENGTH} characters, "
            f"not {len(pattern)}"
        ]
    try:
        re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as error:
        return [f"{_quote(pattern)} is not a valid regular expression: {error}"]
    ignore_case = bool(parsed.state.flags & sre_constants.SRE_FLAG_IGNORECASE) or any(
        op == sre_constants.SUBPATTERN and av[1] & sre_constants.SRE_FLAG_IGNORECASE
        for op, av in _walk(parsed)
    )
    checker = _RegexChecker(ignore_case=ignore_case)
    checker.check_sequence(list(parsed))
    return [f"{_quote(pattern)} is refused: {problem}" for problem in checker.problems]


class _RegexChecker:
    """Walks a parsed pattern looking for shapes that backtrack catastrophically."""

    NESTED = (
        "a repeated group contains another quantifier, as in (a+)+ or (\\w+\\s?)*, which "
        "can take exponential time; write it without the nested quantifier, or end each "
        "repetition with a character the quantifier cannot match, as in (\\d+\\.)+"
    )
    AMBIGUOUS = (
        "a repeated group has alternatives that can match the same text, as in (a|a)* "
        "or (a|aa)+, which can take exponential time"
    )
    OVERLAPPING = (
        f"more than {MAX_OVERLAPPING_QUANTIFIERS} quantifiers in a row can match the same "
        "characters, as in .*.*.*.*, which can take a very long time"
    )

    def __init__(self, *, ignore_case: bool) -> None:
        self.ignore_case = ignore_case
        self.problems: list[str] = []

    def report(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def check_sequence(self, items: list[tuple]) -> None:
        self._check_overlapping_run(items)
        for op, av in items:
            if op in _REPEATS:
                low, high, body = av
                if high > 1:
                    if self._contains_variable_repeat(list(body)) and not self._separated(
                        list(body)
                    ):
                        self.report(self.NESTED)
                    self._check_alternatives(list(body))
            for child in _children(op, av):
                self.check_sequence(list(child))

    def _separated(self, body: list[tuple]) -> bool:
        """A repeated group whose iterations can only be cut one way, as in (\\d+\\.)+.

        Exactly one simple variable quantifier, no alternatives, and a required character
        the quantifier cannot consume: every iteration then ends (or starts) at that
        character, so there is one way to split the text into iterations and backtracking
        stays linear.
        """
        while len(body) == 1 and body[0][0] == sre_constants.SUBPATTERN:
            body = list(body[0][1][3])
        variable: list[tuple] = []
        separators: list[_Chars] = []
        for op, av in body:
            if op == sre_constants.BRANCH:
                return False
            if self._is_variable(op, av):
                if op not in _REPEATS or self._contains_variable_repeat(list(av[2])):
                    return False
                variable.append((op, av))
            elif _is_required_characters(op, av):
                separators.append(self.chars(op, av))
        if len(variable) != 1:
            return False
        consumed = self.chars(*variable[0])
        return any(not _intersects(separator, consumed) for separator in separators)

    def _check_overlapping_run(self, items: list[tuple]) -> None:
        run_chars: _Chars = _NO_CHARS
        run_length = 0
        for op, av in items:
            chars = self.chars(op, av)
            if self._is_variable(op, av):
                if run_length and _intersects(chars, run_chars):
                    run_chars, run_length = _union(run_chars, chars), run_length + 1
                else:
                    run_chars, run_length = chars, 1
                if run_length > MAX_OVERLAPPING_QUANTIFIERS:
                    self.report(self.OVERLAPPING)
            elif not self.first(op, av)[1] and not _intersects(chars, run_chars):
                # Something required that the run cannot match ends the run.
                run_chars, run_length = _NO_CHARS, 0

    def _check_alternatives(self, body: list[tuple]) -> None:
        body_first, _nullable = self.first_of_sequence(body)
        for op, av in _walk(body):
            if op != sre_constants.BRANCH:
                continue
            firsts = [self.first_of_sequence(list(alternative)) for alternative in av[1]]
            nullable = [chars for chars, is_nullable in firsts if is_nullable]
            if len(nullable) > 1:
                self.report(self.AMBIGUOUS)
            for index, (chars, _is_nullable) in enumerate(firsts):
                if any(_intersects(chars, other) for other, _ in firsts[index + 1 :]):
                    self.report(self.AMBIGUOUS)
                if nullable and _intersects(chars, body_first):
                    self.report(self.AMBIGUOUS)

    def _is_variable(self, op: Any, av: Any) -> bool:
        if op in _REPEATS:
            low, high, _body = av
            return high > low
        return any(self._contains_variable_repeat(list(child)) for child in _children(op, av))

    def _contains_variable_repeat(self, items: list[tuple]) -> bool:
        return any(op in _REPEATS and av[1] > av[0] for op, av in _walk(items))

    def chars(self, op: Any, av: Any) -> _Chars:
        """Every character the node can consume (over-approximated)."""
        if op == sre_constants.LITERAL:
            return self._fold(((av, av),))
        if op in (sre_constants.NOT_LITERAL, sre_constants.ANY, sre_constants.GROUPREF):
            return _ALL_CHARS
        if op == sre_constants.IN:
            return self._class_chars(av)
        if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            return _NO_CHARS
        children = _children(op, av)
        if not children:
            return _ALL_CHARS
        return _union(*(self.chars(c_op, c_av) for child in children for c_op, c_av in child))

    def first(self, op: Any, av: Any) -> tuple[_Chars, bool]:
        """The characters the node can start with, and whether it can match empty."""
        if op in (
            sre_constants.LITERAL,
            sre_constants.NOT_LITERAL,
            sre_constants.ANY,
            sre_constants.IN,
        ):
            return self.chars(op, av), False
        if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            return _NO_CHARS, True
        if op in _REPEATS:
            low, _high, body = av
            chars, nullable = self.first_of_sequence(list(body))
            return chars, nullable or low == 0
        if op == sre_constants.BRANCH:
            firsts = [self.first_of_sequence(list(alternative)) for alternative in av[1]]
            return _union(*(chars for chars, _ in firsts)), any(n for _, n in firsts)
        if op in (sre_constants.SUBPATTERN, sre_constants.ATOMIC_GROUP):
            return self.first_of_sequence(list(_children(op, av)[0]))
        return _ALL_CHARS, True

    def first_of_sequence(self, items: list[tuple]) -> tuple[_Chars, bool]:
        collected: _Chars = _NO_CHARS
        for op, av in items:
            chars, nullable = self.first(op, av)
            collected = _union(collected, chars)
            if not nullable:
                return collected, False
        return collected, True

    def _class_chars(self, members: list[tuple]) -> _Chars:
        negate = False
        ranges: list[tuple[int, int]] = []
        for op, av in members:
            if op == sre_constants.NEGATE:
                negate = True
            elif op == sre_constants.LITERAL:
                ranges.append((av, av))
            elif op == sre_constants.RANGE:
                ranges.append(av)
            elif op == sre_constants.CATEGORY and av in _CATEGORY_CHARS:
                ranges.extend(_CATEGORY_CHARS[av])
            else:
                return _ALL_CHARS
        chars = self._fold(_union(tuple(ranges)))
        return _complement(chars) if negate else chars

    def _fold(self, chars: _Chars) -> _Chars:
        if not self.ignore_case:
            return chars
        mirrored = []
        for low, high in chars:
            for start, end, shift in ((65, 90, 32), (97, 122, -32)):
                overlap_low, overlap_high = max(low, start), min(high, end)
                if overlap_low <= overlap_high:
                    mirrored.append((overlap_low + shift, overlap_high + shift))
        return _union(chars, tuple(mirrored))


def _is_required_characters(op: Any, av: Any) -> bool:
    """A literal or class, or a fixed-minimum repeat of them: text that must be there."""
    single = (sre_constants.LITERAL, sre_constants.IN)
    if op in single:
        return True
    return op in _REPEATS and av[0] >= 1 and all(child_op in single for child_op, _ in av[2])


def _children(op: Any, av: Any) -> list[Iterable[tuple]]:
    """The sub-sequences of a parsed node."""
    if op in _REPEATS:
        return [av[2]]
    if op == sre_constants.SUBPATTERN:
        return [av[3]]
    if op == sre_constants.BRANCH:
        return list(av[1])
    if op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
        return [av[1]]
    if op == sre_constants.ATOMIC_GROUP:
        return [av]
    if op == sre_constants.GROUPREF_EXISTS:
        return [branch for branch in av[1:] if branch]
    return []


def _walk(items: Iterable[tuple]) -> Iterable[tuple]:
    for op, av in items:
        yield op, av
        for child in _children(op, av):
            yield from _walk(child)


def _union(*sets: _Chars) -> _Chars:
    ranges = sorted(pair for chars in sets for pair in chars)
    merged: list[tuple[int, int]] = []
    for low, high in ranges:
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def _intersects(first: _Chars, second: _Chars) -> bool:
    return any(
        a_low <= b_high and b_low <= a_high for a_low, a_high in first for b_low, b_high in second
    )


def _complement(chars: _Chars) -> _Chars:
    gaps: list[tuple[int, int]] = []
    start = 0
    for low, high in chars:
        if low > start:
            gaps.append((start, low - 1))
        start = high + 1
    if start <= sys.maxunicode:
        gaps.append((start, sys.maxunicode))
    return tuple(gaps)
