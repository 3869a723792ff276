"""Fixtures of the /v2/ tests: blob storage in a temporary directory, fast password hashing,
and ready-made callers. Test modules opt in with ``pytestmark = V2`` (helpers)."""

import pytest

from registry_portal.accounts.choices import AccessLevel
from tests import factories

from .helpers import Registry, basic


@pytest.fixture
def registry_settings(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "blobs": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "blobs")},
        },
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.PORTAL_URL = "http://registry.test"
    settings.REGISTRY_TOKEN_SERVICE = "registry.test"
    settings.REGISTRY_DELETE_ENABLED = True
    settings.REGISTRY_BLOB_REDIRECT = "auto"
    return settings


@pytest.fixture
def owner(db):
    return factories.make_user("owner")


@pytest.fixture
def org(owner):
    return factories.make_org("acme", admin=owner)


@pytest.fixture
def repo(org):
    return factories.make_repo(org, "app")


@pytest.fixture
def reg(client, owner) -> Registry:
    """The org admin of ``acme`` over Basic auth."""
    return Registry(client, basic(owner))


@pytest.fixture
def anonymous(client) -> Registry:
    return Registry(client)


@pytest.fixture
def reader(client, org, repo) -> Registry:
    user = factories.make_user("reader")
    factories.make_team(org, members=[user], level=AccessLevel.READ_ONLY, repository=repo)
    return Registry(client, basic(user))
