"""schemathesis against the live OpenAPI schema, in-process (WSGI), as an authenticated user
with a personal access token: no 500s, and every response conforms to the schema (status
codes, content types, bodies). The examples per operation are bounded to keep CI fast."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from promotions.services import policy_create
from registry_portal.accounts import services as account_services
from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.services import tag_set
from registry_portal.wsgi import application
from tests import factories

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def keep_test_connection():
    """Requests through the bare WSGI app would close the database connection when they
    finish, and with it the test's transaction; Django's own test client does the same."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


# Loaded when the module is collected: fetching the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def token(db):
    """A user who administers dev (with a repository, a tag and a policy) and reads qa."""
    user = factories.make_user("fuzzer")
    dev, qa = factories.make_org("dev", admin=user), factories.make_org("qa")
    source = factories.make_repo(dev, "website")
    target = factories.make_repo(qa, "website", is_public=True)
    factories.make_team(qa, members=[user], level=AccessLevel.ADMIN, repository=target)
    tag_set(repository=source, name="1.0-stable", manifest=factories.make_manifest())
    policy_create(
        actor=user,
        source=source,
        target=target,
        name="to QA",
        rules=[{"field": "tag_name", "operator": "ew", "values": ["stable"]}],
    )
    _, secret = account_services.access_token_create(user=user, name="fuzz")
    return secret


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_conforms_to_its_schema(case, token, keep_test_connection):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
