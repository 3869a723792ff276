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
- ``matches`` searches, like DTR: ``stable`` matches any tag that contains it,
  and users anchor with ``^`` and ``$`` when they mean the whole tag. Matching
  is case-sensitive, as tags are; ``(?i)`` makes a pattern case-insensitive.
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

Regular expressions are written by policy admins but run on every push, so
they run on RE2 (``google-re2``): its syntax is Go's, as the reference product's
rules were, and its matching time is linear in the subject whatever the pattern.
RE2 refuses what it cannot do in linear time (backreferences, lookaround), and
``validate_rule`` passes its reason on. Names and tags come from the one grammar
in ``registry_portal.grammar``.
"""

import functools
import operator as operators
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

import re2

from promotions.choices import (
    FIELD_OPERATORS,
    MULTI_VALUE_OPERATORS,
    VULNERABILITY_FIELD_SEVERITY,
    RuleField,
    RuleOperator,
    field_needs_scan,
    operator_label,
)
from registry_portal import grammar

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low", "unknown")

MAX_VALUES = 100
MAX_VALUE_LENGTH = 256
MAX_REGEX_LENGTH = 256
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
        if not self.tag or len(self.tag) > grammar.MAX_TAG_LENGTH:
            raise ValueError(
                f"a tag has 1 to {grammar.MAX_TAG_LENGTH} characters, not {len(self.tag)}"
            )
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
    return _compiled_regex(pattern).search(subject) is not None


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
        if not grammar.is_valid_tag(value):
            return [f"{_quote(value)} is not a valid tag ({grammar.TAG_RULES})"]
        return []
    if not grammar.is_tag_fragment(value):
        return [
            f"{_quote(value)} cannot be part of a tag (letters, digits, '_', '.' and '-', "
            f"at most {grammar.MAX_TAG_LENGTH} characters)"
        ]
    if operator == RuleOperator.STARTS_WITH and value[0] in ".-":
        return [f"no tag starts with {_quote(value)}: a tag cannot start with '.' or '-'"]
    return []


# --- regular expressions (RE2) -------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is a field error, not a log line


def validate_regex(pattern: str) -> list[str]:
    """Why ``pattern`` is refused as a ``matches`` value: empty when accepted."""
    if len(pattern) > MAX_REGEX_LENGTH:
        return [
            f"a regular expression may have at most {MAX_REGEX_LENGTH} characters, "
            f"not {len(pattern)}"
        ]
    try:
        _compiled_regex(pattern)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        return [
            f"{_quote(pattern)} is not a valid regular expression: {reason} (RE2 syntax, "
            "as in Go: no backreferences, lookahead or lookbehind)"
        ]
    return []


@functools.lru_cache(maxsize=512)
def _compiled_regex(pattern: str) -> re2._Regexp:
    return re2.compile(pattern, _RE2_OPTIONS)
