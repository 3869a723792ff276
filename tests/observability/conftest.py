"""The /v2/ fixtures (temporary blob storage, the acme/app repository, its admin's client)."""

from tests.registry.conftest import org, owner, reg, registry_settings, repo  # noqa: F401
