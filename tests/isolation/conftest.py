"""The /v2/ fixtures, for the isolation tests that speak the protocol."""

from tests.registry.conftest import registry_settings  # noqa: F401 - a fixture
