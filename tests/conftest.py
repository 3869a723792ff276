"""Shared fixtures."""

import pytest

from tests import factories


@pytest.fixture
def make_user(db):
    return factories.make_user


@pytest.fixture
def make_org(db):
    return factories.make_org


@pytest.fixture
def make_repo(db):
    return factories.make_repo
