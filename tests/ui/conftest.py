"""The world of the UI tests: dev/website and qa/website, and one user of each kind."""

import pytest

from registry_portal.accounts.choices import AccessLevel
from registry_portal.registry.services import tag_set
from tests import factories


@pytest.fixture
def world(db):
    """dev/website (private, two tags) and qa/website (private); users by access level.

    - lead: admin of both repositories (a team grant on each);
    - writer, reader: read-write / read-only on dev/website;
    - outsider: a user with no access at all;
    - dev_admin: admin of the dev organization.
    """
    lead = factories.make_user("lead")
    dev_admin = factories.make_user("devadmin")
    dev, qa = factories.make_org("dev", admin=dev_admin), factories.make_org("qa")
    source = factories.make_repo(dev, "website", description="The public web site.")
    target = factories.make_repo(qa, "website")
    writer, reader = factories.make_user("writer"), factories.make_user("reader")
    outsider = factories.make_user("outsider")
    factories.make_team(
        dev, members=[writer], level=AccessLevel.READ_WRITE, repository=source, name="developers"
    )
    factories.make_team(
        dev, members=[reader], level=AccessLevel.READ_ONLY, repository=source, name="readers"
    )
    factories.make_team(
        dev, members=[lead], level=AccessLevel.ADMIN, repository=source, name="leads"
    )
    factories.make_team(
        qa, members=[lead], level=AccessLevel.ADMIN, repository=target, name="leads"
    )
    for name in ("1.0-stable", "1.1-beta"):
        tag_set(repository=source, name=name, manifest=factories.make_manifest(), actor=writer)
    return {
        "dev": dev,
        "qa": qa,
        "source": source,
        "target": target,
        "lead": lead,
        "dev_admin": dev_admin,
        "writer": writer,
        "reader": reader,
        "outsider": outsider,
    }


@pytest.fixture
def login(client):
    """Sign a user in on the test client; returns the client."""

    def sign_in(user):
        client.force_login(user)
        return client

    return sign_in
