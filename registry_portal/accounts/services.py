"""Every write to accounts data: organizations, teams, memberships, grants, access tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from django.core.cache import caches
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from registry_portal.errors import PermissionDenied, ValidationFailed

from . import throttling
from .choices import AccessLevel, Action
from .models import AccessToken, Organization, OrganizationMembership, RepositoryAccess, Team
from .permissions import organization_is_admin, repository_allows

credential_cache = caches["credentials"]
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


def _check_may_grant(actor, team: Team, repository) -> None:
    """Grants on one repository are for its admins; organization-wide grants for the org's
    admins. ``actor`` None is the system (management commands, fixtures). Checked here, so
    every surface (admin, pages, API) obeys it."""
    if actor is None:
        return
    if repository is not None:
        if not repository_allows(actor, repository, Action.ADMIN):
            raise PermissionDenied(f"You are not an admin of {repository.full_name}.")
    elif not organization_is_admin(actor, team.organization):
        raise PermissionDenied(f"You are not an admin of the organization {team.organization}.")


def access_grant(
    *, team: Team, level: AccessLevel | int, repository=None, actor=None
) -> RepositoryAccess:
    """Give a team a level on one repository of its organization, or on all of them.

    ``actor`` must administer the repository, or for every repository the organization
    (None: the system)."""
    _check_may_grant(actor, team, repository)
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


def access_token_create(
    *,
    user,
    name: str,
    expires_at: datetime | None = None,
    presented_token: AccessToken | None = None,
):
    """Create a personal access token. Returns ``(token, secret)``; the secret is shown once.

    Only a password or a browser sign-in may create tokens: a caller who authenticated with a
    token (``presented_token``) may not, or a short-lived or revocable token could mint itself
    an heir that outlives it.
    """
    if presented_token is not None:
        raise PermissionDenied(
            "A personal access token cannot create tokens: sign in with your password (the "
            "portal's pages or the admin) to create one."
        )
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
    token = access_token_valid(secret=secret)
    return token.user if token is not None else None


def access_token_valid(*, secret: str) -> AccessToken | None:
    """The valid (unexpired, unrevoked, of an active user) token of a secret, or None."""
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
    return token


def access_token_purge(*, older_than: timedelta) -> int:
    """Delete tokens revoked or expired longer ago than ``older_than``; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = AccessToken.objects.filter(
        Q(revoked_at__lt=cutoff) | Q(expires_at__lt=cutoff)
    ).delete()
    return deleted


# Registry clients send the password with every token request (and with every request under
# Basic auth). Checking it costs a deliberately slow hash (~0.3 s), so a success is remembered
# for a short while, in this process only, under an HMAC of the credentials; a changed
# password or a deactivated user no longer matches.
CREDENTIAL_CACHE_SECONDS = 120


def _credential_cache_key(username: str, password: str) -> str:
    mac = hmac.new(settings.SECRET_KEY.encode(), f"{username}\0{password}".encode(), "sha256")
    return f"portal:credentials:{mac.hexdigest()}"


def credentials_authenticate(*, username: str, password: str, request=None):
    """A user from a username and a password or personal access token; None if neither fits.

    Throttled (`throttling`): a locked-out username or address gets None whatever it sends,
    and every failure is counted, so the caller's answer becomes a 429 past the threshold.
    """
    if throttling.is_locked_out(request, username=username):
        return None
    user = access_token_user(secret=password)
    if user is not None:
        if user.get_username() == username or not username:
            return user
        throttling.record_failure(request, username=username)
        return None
    key = _credential_cache_key(username, password)
    remembered = credential_cache.get(key)
    if remembered is not None:
        user_id, password_hash = remembered
        user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
        if user is not None and user.password == password_hash:
            return user
    user = authenticate(request, username=username, password=password)
    if user is not None:
        credential_cache.set(key, (user.pk, user.password), CREDENTIAL_CACHE_SECONDS)
    return user


def team_remove_member(*, team: Team, user) -> None:
    """Take a user out of a team; their organization membership stays."""
    team.members.remove(user)


def team_delete(*, team: Team) -> None:
    """Delete a team with its grants; its members lose the access it gave them."""
    team.delete()


def access_revoke(*, grant: RepositoryAccess, actor=None) -> None:
    """Remove a team's grant; ``actor`` needs the same rights as to give it."""
    _check_may_grant(actor, grant.team, grant.repository)
    grant.delete()


def organization_update(
    *, organization: Organization, display_name: str | None = None, description: str | None = None
) -> Organization:
    """Change an organization's display name or description (None leaves one as it is)."""
    if display_name is not None:
        organization.display_name = display_name
    if description is not None:
        organization.description = description
    organization.full_clean()
    organization.save(update_fields=["display_name", "description"])
    return organization


@transaction.atomic
def membership_remove(*, organization: Organization, user) -> None:
    """Remove a user from an organization and from every team of it."""
    for team in Team.objects.filter(organization=organization, members=user):
        team.members.remove(user)
    OrganizationMembership.objects.filter(organization=organization, user=user).delete()


def team_update(*, team: Team, name: str | None = None, description: str | None = None) -> Team:
    """Rename a team or change its description (None leaves one as it is)."""
    if name is not None:
        if Team.objects.filter(organization=team.organization, name=name).exclude(pk=team.pk):
            raise ValidationFailed("A team with this name already exists here.", field="name")
        team.name = name
    if description is not None:
        team.description = description
    team.full_clean()
    team.save(update_fields=["name", "description"])
    return team
