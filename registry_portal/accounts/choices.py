"""Choices of the accounts app: access levels and the actions they allow."""

from django.db import models


class AccessLevel(models.IntegerChoices):
    """A team's level on a repository; higher includes lower."""

    NONE = 0, "no access"
    READ_ONLY = 1, "read-only"
    READ_WRITE = 2, "read-write"
    ADMIN = 3, "admin"


class Action(models.TextChoices):
    """What a caller may do to a repository. The registry's token scopes use the same words."""

    PULL = "pull", "pull"
    PUSH = "push", "push"
    DELETE = "delete", "delete"
    ADMIN = "admin", "administer"


ACTIONS_BY_LEVEL: dict[int, frozenset[str]] = {
    AccessLevel.NONE: frozenset(),
    AccessLevel.READ_ONLY: frozenset({Action.PULL}),
    AccessLevel.READ_WRITE: frozenset({Action.PULL, Action.PUSH}),
    AccessLevel.ADMIN: frozenset({Action.PULL, Action.PUSH, Action.DELETE, Action.ADMIN}),
}
