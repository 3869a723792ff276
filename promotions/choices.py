"""The vocabulary of promotion rules: fields, operators and which fit together.

Plain data shared by the pure engine (``promotions.engine``), the models,
forms and the API, so that every surface offers and accepts the same
combinations. The operator codes are those of the reference product (DTR):
``eq sw ew c oo noo gte gt eq neq lte lt bf af``, plus ``matches`` for
regular expressions. ``eq`` is both text equality and numeric ``=``.

Vulnerability severities use the CVSS v3 qualitative bands, and the labels
say so, because the reference product used a different scale.
"""

from collections.abc import Mapping
from types import MappingProxyType

from django.db import models


class RuleField(models.TextChoices):
    """What a promotion rule looks at."""

    TAG_NAME = "tag_name", "tag name"
    COMPONENT_NAME = "component_name", "component name"
    LICENSE = "license", "license (SPDX id)"
    VULNS_ALL = "vulns_all", "all vulnerabilities (any severity)"
    VULNS_CRITICAL = "vulns_critical", "critical vulnerabilities (CVSS 9.0–10.0)"
    VULNS_HIGH = "vulns_high", "high vulnerabilities (CVSS 7.0–8.9)"
    VULNS_MEDIUM = "vulns_medium", "medium vulnerabilities (CVSS 4.0–6.9)"
    VULNS_LOW = "vulns_low", "low vulnerabilities (CVSS 0.1–3.9)"
    LAST_UPDATED = "last_updated", "last updated"


class RuleOperator(models.TextChoices):
    """How a rule compares its field with its values."""

    EQUALS = "eq", "equals"
    STARTS_WITH = "sw", "starts with"
    ENDS_WITH = "ew", "ends with"
    CONTAINS = "c", "contains"
    ONE_OF = "oo", "one of"
    NOT_ONE_OF = "noo", "not one of"
    MATCHES = "matches", "matches (regular expression)"
    GREATER_OR_EQUAL = "gte", ">="
    GREATER = "gt", ">"
    NOT_EQUAL = "neq", "!="
    LESS_OR_EQUAL = "lte", "<="
    LESS = "lt", "<"
    BEFORE = "bf", "before"
    AFTER = "af", "after"


TEXT_OPERATORS: tuple[RuleOperator, ...] = (
    RuleOperator.EQUALS,
    RuleOperator.STARTS_WITH,
    RuleOperator.ENDS_WITH,
    RuleOperator.CONTAINS,
    RuleOperator.ONE_OF,
    RuleOperator.NOT_ONE_OF,
    RuleOperator.MATCHES,
)

COUNT_OPERATORS: tuple[RuleOperator, ...] = (
    RuleOperator.GREATER_OR_EQUAL,
    RuleOperator.GREATER,
    RuleOperator.EQUALS,
    RuleOperator.NOT_EQUAL,
    RuleOperator.LESS_OR_EQUAL,
    RuleOperator.LESS,
)

TIME_OPERATORS: tuple[RuleOperator, ...] = (RuleOperator.BEFORE, RuleOperator.AFTER)

SET_OPERATORS: tuple[RuleOperator, ...] = (RuleOperator.ONE_OF, RuleOperator.NOT_ONE_OF)

VULNERABILITY_FIELDS: tuple[RuleField, ...] = (
    RuleField.VULNS_ALL,
    RuleField.VULNS_CRITICAL,
    RuleField.VULNS_HIGH,
    RuleField.VULNS_MEDIUM,
    RuleField.VULNS_LOW,
)

# The order of each tuple is the order a form offers the operators in.
FIELD_OPERATORS: Mapping[RuleField, tuple[RuleOperator, ...]] = MappingProxyType(
    {
        RuleField.TAG_NAME: TEXT_OPERATORS,
        RuleField.COMPONENT_NAME: SET_OPERATORS
        + tuple(op for op in TEXT_OPERATORS if op not in SET_OPERATORS),
        RuleField.LICENSE: SET_OPERATORS,
        **{field: COUNT_OPERATORS for field in VULNERABILITY_FIELDS},
        RuleField.LAST_UPDATED: TIME_OPERATORS,
    }
)

# Rules on these fields read the scan report: a policy using one waits for
# the image's scan to finish, and neither passes nor fails before.
SCAN_FIELDS: frozenset[RuleField] = frozenset(
    {RuleField.COMPONENT_NAME, RuleField.LICENSE, *VULNERABILITY_FIELDS}
)

# Every other operator takes exactly one value.
MULTI_VALUE_OPERATORS: frozenset[RuleOperator] = frozenset(SET_OPERATORS)

# The severity each vulnerability field counts; "all" counts every severity,
# "unknown" included.
VULNERABILITY_FIELD_SEVERITY: Mapping[RuleField, str] = MappingProxyType(
    {
        RuleField.VULNS_ALL: "all",
        RuleField.VULNS_CRITICAL: "critical",
        RuleField.VULNS_HIGH: "high",
        RuleField.VULNS_MEDIUM: "medium",
        RuleField.VULNS_LOW: "low",
    }
)


# How component names compare (promotions.engine.normalise_component_name), for help texts.
COMPONENT_NAME_HELP = (
    "Component names compare as their ecosystem compares them: PyPI names by PEP 503 "
    "(Django = django, zope.interface = zope-interface), Debian, Alpine and npm names "
    "ignoring case, others (RPM, Maven, Go) as written; 'matches' searches the name as "
    "written (add (?i) to ignore case)."
)


def field_needs_scan(field: RuleField | str) -> bool:
    """Whether a rule on ``field`` needs a finished scan of the image."""
    return field in SCAN_FIELDS


def operators_for(field: RuleField | str) -> tuple[RuleOperator, ...]:
    """The operators that fit ``field``, in display order; none for an unknown field."""
    if field not in RuleField.values:
        return ()
    return FIELD_OPERATORS[RuleField(field)]


def operator_label(field: RuleField | str, operator: RuleOperator | str) -> str:
    """The label of ``operator`` as used on ``field``.

    ``eq`` reads "equals" on text and "=" on a count, as in the reference table.
    """
    operator = RuleOperator(operator)
    if field in VULNERABILITY_FIELDS and operator == RuleOperator.EQUALS:
        return "="
    return str(operator.label)


class Trigger(models.TextChoices):
    """What started a promotion attempt."""

    PUSH = "push", "push"
    APPLY = "apply", "save & apply"
    MANUAL = "manual", "manual"
    CHAIN = "chain", "chain"


class PromotionOutcome(models.TextChoices):
    """How a promotion attempt ended (or that it waits: for the image's scan, or for data
    the scan lacked that can still arrive, such as vulnerability data)."""

    PROMOTED = "promoted", "promoted"
    SKIPPED = "skipped", "skipped"
    WAITING = "waiting", "waiting"
    FAILED = "failed", "failed"


class OnMove(models.TextChoices):
    """What a promotion does when its target tag was last promoted from the same source
    tag (a "move", as with a keep-the-tag policy or ``latest`` moving on)."""

    OVERWRITE = "overwrite", "move the target tag to the new image"
    KEEP = "keep", "keep the target tag as it is"
