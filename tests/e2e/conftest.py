"""Fixtures for end-to-end tests with real clients against live servers.

One portal (gunicorn, the ``make run`` configuration) and one reference registry
(``docker-registry``, distribution 2.8) are started per session, on free loopback ports with
temp data dirs, and stopped at the end. Tests that compare behaviour run against both
(``target`` fixture); tests of permissions run against the portal only.

The portal holds these accounts (password = username + PASSWORD_SUFFIX):
- alice: admin of the organization ``acme`` (may create repositories in it);
- bob: team ``devs``, read-write on every acme repository;
- carol: team ``viewers``, read-only on every acme repository;
- mallory: no membership at all.
Repositories ``acme/public`` (public) and ``acme/private`` exist; alice has an access token
``ci``.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.services import need_tool
from tests.support.clients import RegistryClient, Skopeo
from tests.support.servers import PortalServer, ReferenceRegistry

PASSWORD_SUFFIX = "-Secret-pw-42"
USERS = ("alice", "bob", "carol", "mallory")
_names = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "aborted_requests(method): a request of this method is cut off by the test, so the "
        "server may log an error status for it",
    )


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.e2e)


def creds(user: str) -> tuple[str, str]:
    return (user, user + PASSWORD_SUFFIX)


PORTAL_SPEC = {
    "users": [{"username": u, "password": u + PASSWORD_SUFFIX} for u in USERS],
    "orgs": [{"name": "acme", "admins": ["alice"]}],
    "repositories": [{"name": "acme/public", "public": True}, {"name": "acme/private"}],
    "teams": [
        {"org": "acme", "name": name, "members": [member], "grants": [{"level": level}]}
        for name, member, level in (
            ("devs", "bob", "read-write"),
            ("viewers", "carol", "read-only"),
        )
    ],
    "tokens": [{"user": "alice", "name": "ci"}],
}


@dataclass
class Target:
    """A live registry under test: where to push, and with which credentials."""

    kind: str  # "portal" or "reference"
    server: PortalServer | ReferenceRegistry
    pusher: tuple[str, str] | None  # credentials of someone who may create repositories
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return self.server.host

    def ref(self, name: str, reference: str = "latest") -> str:
        separator = "@" if ":" in reference else ":"
        return f"{self.host}/{name}{separator}{reference}"

    def client(self, user: str | None = None, password: str | None = None) -> RegistryClient:
        if user is not None and password is None:
            user, password = creds(user)
        return RegistryClient(self.server.url, user, password)

    def pusher_client(self) -> RegistryClient:
        if self.pusher is None:
            return RegistryClient(self.server.url)
        return RegistryClient(self.server.url, *self.pusher)


def unique_repo(prefix: str = "e2e") -> str:
    """A fresh repository name in the acme namespace."""
    return f"acme/{prefix}-{os.getpid()}-{next(_names)}"


@pytest.fixture(scope="session")
def skopeo_bin() -> str:
    return need_tool("skopeo")


@pytest.fixture
def skopeo(skopeo_bin, tmp_path) -> Skopeo:
    return Skopeo(skopeo_bin, workdir=tmp_path / "skopeo")


@pytest.fixture(scope="session")
def portal_server(tmp_path_factory):
    with PortalServer(tmp_path_factory.mktemp("portal")) as server:
        result = server.setup(PORTAL_SPEC)
        server.tokens = result["tokens"]
        yield server


@pytest.fixture(scope="session")
def portal_target(portal_server) -> Target:
    response = requests.get(portal_server.url + "/v2/", timeout=10)
    if response.status_code not in (200, 401):
        pytest.fail(f"the portal's /v2/ API is not there: GET /v2/ answered {response.status_code}")
    return Target("portal", portal_server, creds("alice"), tokens=portal_server.tokens)


@pytest.fixture(scope="session")
def reference_target(tmp_path_factory) -> Target:
    need_tool("docker-registry")
    with ReferenceRegistry(tmp_path_factory.mktemp("reference")) as server:
        yield Target("reference", server, None)


def _check_log(target: Target, offset: int, request) -> None:
    tracebacks = target.server.tracebacks(since=offset)
    assert not tracebacks, f"the {target.kind} logged a traceback:\n{tracebacks[0][-3000:]}"
    aborted = {m.args[0] for m in request.node.iter_markers("aborted_requests")}
    server_errors = [
        f"{status} {method} {path}"
        for method, path, status in target.server.requests_logged(since=offset)
        if status >= 500 and method not in aborted
    ]
    assert not server_errors, f"the {target.kind} answered 5xx: {server_errors}"


@pytest.fixture(params=["reference", "portal"])
def target(request):
    """Runs the test against the reference registry, then against the portal.

    After the test, the server's log must show no traceback and no 5xx answer.
    """
    chosen: Target = request.getfixturevalue(f"{request.param}_target")
    offset = chosen.server.log_size()
    yield chosen
    _check_log(chosen, offset, request)


@pytest.fixture
def portal(portal_target, request):
    """The portal; after the test its log must show no traceback and no 5xx answer."""
    offset = portal_target.server.log_size()
    yield portal_target
    _check_log(portal_target, offset, request)
