"""Small factories for tests: users, organizations, teams, grants, repositories, manifests."""

import hashlib
import itertools
import json

from django.contrib.auth import get_user_model

from registry_portal.accounts import services as account_services
from registry_portal.accounts.models import Organization
from registry_portal.registry.models import Manifest, Repository

_counter = itertools.count(1)
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - a test password


def make_user(username: str | None = None, **extra):
    username = username or f"user{next(_counter)}"
    return get_user_model().objects.create_user(username=username, password=PASSWORD, **extra)


def make_org(name: str | None = None, admin=None) -> Organization:
    return account_services.organization_create(name=name or f"org{next(_counter)}", admin=admin)


def make_repo(namespace: Organization, name: str | None = None, **extra) -> Repository:
    return Repository.objects.create(
        namespace=namespace, name=name or f"repo{next(_counter)}", **extra
    )


def make_team(org: Organization, *, members=(), level=None, repository=None, name=None):
    team = account_services.team_create(
        organization=org, name=name or f"team{next(_counter)}", members=members
    )
    if level is not None:
        account_services.access_grant(team=team, level=level, repository=repository)
    return team


def make_manifest(layers: int = 1, *, subject: str = "") -> Manifest:
    """A manifest row with valid JSON bytes (its blobs are not stored)."""
    body = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": "sha256:" + hashlib.sha256(f"c{next(_counter)}".encode()).hexdigest(),
        },
        "layers": [],
        "annotations": {"n": str(next(_counter))},
    }
    content = json.dumps(body).encode()
    return Manifest.objects.create(
        digest="sha256:" + hashlib.sha256(content).hexdigest(),
        media_type=body["mediaType"],
        content=content,
        size=len(content),
        subject_digest=subject,
    )
