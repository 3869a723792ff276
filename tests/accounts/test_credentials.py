"""Credentials: passwords and personal access tokens, and the short memory of a success."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from registry_portal.accounts import services
from tests import factories


@pytest.fixture
def user(db):
    return factories.make_user("alice")


def test_password_and_token_both_work(user):
    assert services.credentials_authenticate(username="alice", password=factories.PASSWORD) == user
    _, secret = services.access_token_create(user=user, name="ci")
    assert services.credentials_authenticate(username="alice", password=secret) == user
    assert services.credentials_authenticate(username="", password=secret) == user
    assert services.credentials_authenticate(username="bob", password=secret) is None
    assert services.credentials_authenticate(username="alice", password="wrong") is None


def test_revoked_and_expired_tokens_do_not_work(user):
    token, secret = services.access_token_create(user=user, name="ci")
    services.access_token_revoke(token=token)
    assert services.credentials_authenticate(username="alice", password=secret) is None
    token2, secret2 = services.access_token_create(
        user=user, name="short", expires_at=timezone.now() + timedelta(seconds=30)
    )
    type(token2).objects.filter(pk=token2.pk).update(expires_at=timezone.now())
    assert services.credentials_authenticate(username="alice", password=secret2) is None


def test_a_checked_password_is_not_hashed_again(user):
    services.credentials_authenticate(username="alice", password=factories.PASSWORD)
    with mock.patch.object(services, "authenticate") as slow_check:
        again = services.credentials_authenticate(username="alice", password=factories.PASSWORD)
    assert again == user
    slow_check.assert_not_called()


def test_a_changed_password_or_deactivated_user_is_not_remembered(user):
    services.credentials_authenticate(username="alice", password=factories.PASSWORD)
    user.set_password("another-password-123")
    user.save()
    assert services.credentials_authenticate(username="alice", password=factories.PASSWORD) is None

    assert services.credentials_authenticate(username="alice", password="another-password-123")
    user.is_active = False
    user.save()
    assert (
        services.credentials_authenticate(username="alice", password="another-password-123") is None
    )
