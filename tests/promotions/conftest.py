"""Fixtures for promotion service tests: the seed world of the reference story."""

import pytest

from registry_portal.accounts.choices import AccessLevel
from tests import factories


@pytest.fixture
def seed(db):
    """dev/website and qa/website; a lead admin of both, a developer, a QA engineer."""
    dev, qa = factories.make_org("dev"), factories.make_org("qa")
    source = factories.make_repo(dev, "website")
    target = factories.make_repo(qa, "website")
    lead = factories.make_user("lead")
    developer = factories.make_user("dev1")
    tester = factories.make_user("qa1")
    factories.make_team(dev, members=[developer], level=AccessLevel.READ_WRITE, repository=source)
    factories.make_team(qa, members=[tester], level=AccessLevel.READ_WRITE, repository=target)
    factories.make_team(dev, members=[lead], level=AccessLevel.ADMIN, repository=source)
    factories.make_team(qa, members=[lead], level=AccessLevel.ADMIN, repository=target)
    return {
        "dev": dev,
        "qa": qa,
        "source": source,
        "target": target,
        "lead": lead,
        "developer": developer,
        "tester": tester,
    }
