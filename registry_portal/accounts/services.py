"""Every write to accounts data: organizations, teams, memberships, grants, access tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry_portal.errors import ValidationFailed

from .choices import AccessLevel
from .models import AccessToken, Organization, OrganizationMembership, RepositoryAccess, Team

TOKEN_PREFIX = "rpat_"  # noqa: S105 - a marker, not a secret


def organization_create(*, name: str, display_name: str = "", description: str = "", admin=None):
    """Create an organization; ``admin`` becomes its first org admin."""
    organization = Organization(name=name, display_name=display_name, description=description)
    organization.full_clean()
    with transaction.atomic():
        organization.save()
        if admin is not None:
            membership_set(organization=organization, user=admin, is_admin=True)
    return organization


def membership_set(*, organization: Organization, user, is_admin: bool = False):
    """Add a user to an organization, or change their admin flag."""
    membership, _ = OrganizationMembership.objects.update_or_create(
        organization=organization, user=user, defaults={"is_admin": is_admin}
    )
    return membership


def team_create(*, organization: Organization, name: str, description: str = "", members=()):
    team = Team(organization=organization, name=name, description=description)
    team.full_clean()
    with transaction.atomic():
        team.save()
        for user in members:
            team_add_member(team=team, user=user)
    return team


def team_add_member(*, team: Team, user) -> None:
    """Add a user to a team (and so to the team's organization)."""
    with transaction.atomic():
        OrganizationMembership.objects.get_or_create(organization=team.organization, user=user)
        team.members.add(user)


def access_grant(*, team: Team, level: AccessLevel | int, repository=None) -> RepositoryAccess:
    """Give a team a level on one repository of its organization, or on all of them."""
    if repository is not None and repository.namespace_id != team.organization_id:
        raise ValidationFailed(
            "A team can only be given access to repositories of its own organization.",
            field="repository",
        )
    if int(level) not in (AccessLevel.READ_ONLY, AccessLevel.READ_WRITE, AccessLevel.ADMIN):
        raise ValidationFailed("Choose read-only, read-write or admin.", field="level")
    grant, _ = RepositoryAccess.objects.update_or_create(
        team=team, repository=repository, defaults={"level": int(level)}
    )
    return grant


def _hash_token(secret: str) -> str:
    # The secret is 256 random bits: a plain SHA-256 is enough, and lookups stay one index hit.
    return hashlib.sha256(secret.encode()).hexdigest()


def access_token_create(*, user, name: str, expires_at: datetime | None = None):
    """Create a personal access token. Returns ``(token, secret)``; the secret is shown once."""
    name = name.strip()
    if not name:
        raise ValidationFailed("Give the token a name.", field="name")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationFailed("The expiry must be in the future.", field="expires_at")
    if AccessToken.objects.filter(user=user, name=name).exists():
        raise ValidationFailed("You already have a token with this name.", field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AccessToken.objects.create(
        user=user,
        name=name,
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        token_hash=_hash_token(secret),
        expires_at=expires_at,
    )
    return token, secret


def access_token_revoke(*, token: AccessToken) -> None:
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])


def access_token_get(*, secret: str) -> AccessToken | None:
    """The token row a secret belongs to (valid or not), or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    return AccessToken.objects.filter(token_hash=_hash_token(secret)).first()


def access_token_user(*, secret: str):
    """The active user a valid, unexpired, unrevoked token belongs to, or None."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    token = (
        AccessToken.objects.select_related("user")
        .filter(token_hash=_hash_token(secret), revoked_at__isnull=True)
        .first()
    )
    now = timezone.now()
    if token is None or (token.expires_at and token.expires_at <= now) or not token.user.is_active:
        return None
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        AccessToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def access_token_purge(*, older_than: timedelta) -> int:
    """Delete tokens revoked or expired longer ago than ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = AccessToken.objects.filter(
        Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff)
    ).delete()
    return deleted


def credentials_authenticate(*, username: str, password: str, request=None):
    """A user from a username and a password or personal access token; None if neither fits."""
    user = access_token_user(secret=password)
    if user is not None:
        return user if user.get_username() == username or not username else None
    return authenticate(request, username=username, password=password)
