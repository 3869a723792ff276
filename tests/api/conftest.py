"""Fixtures of the REST API tests: clients authenticated with personal access tokens, and a
small world of organizations, teams and repositories."""

import uuid

import pytest
from rest_framework.test import APIClient

from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import AccessLevel
from tests import factories


def token_client(user) -> APIClient:
    """A client sending ``Authorization: Bearer <a new token of user>``."""
    _, secret = account_services.access_token_create(user=user, name=f"api-{uuid.uuid4()}")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


@pytest.fixture
def client_for(db):
    """``client_for(user)``: a token client for a user, or an anonymous client for None."""
    return lambda user: APIClient() if user is None else token_client(user)


@pytest.fixture
def world(db):
    """dev/website (private) and dev/public (public); qa/website (private).

    Users: ``reader``, ``writer`` and ``admin`` with team grants on both dev repositories,
    ``outsider`` with none, ``lead`` admin of dev/website and qa/website, ``org_admin`` admin of
    the dev organization, ``superuser``.
    """
    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    private = factories.make_repo(dev, "website")
    public = factories.make_repo(dev, "public", is_public=True)
    target = factories.make_repo(qa, "website")
    users = {
        name: factories.make_user(name)
        for name in ("reader", "writer", "admin", "outsider", "lead", "org_admin")
    }
    users["superuser"] = factories.make_user("root", is_superuser=True, is_staff=True)
    for level, name in (
        (AccessLevel.READ_ONLY, "reader"),
        (AccessLevel.READ_WRITE, "writer"),
        (AccessLevel.ADMIN, "admin"),
    ):
        for repository in (private, public):
            factories.make_team(dev, members=[users[name]], level=level, repository=repository)
    factories.make_team(dev, members=[users["lead"]], level=AccessLevel.ADMIN, repository=private)
    factories.make_team(qa, members=[users["lead"]], level=AccessLevel.ADMIN, repository=target)
    account_services.membership_set(organization=dev, user=users["org_admin"], is_admin=True)
    return {"dev": dev, "qa": qa, "private": private, "public": public, "target": target, **users}


def error_of(response) -> dict:
    """The ``error`` object of an error response (and a check of the one error shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]
