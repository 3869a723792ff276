"""Tests that need a real service (PostgreSQL, Redis, skopeo, Chromium...) call ``need``.

On a laptop a missing service skips the test; with REQUIRE_SERVICES=1 (CI) it fails it, so
a green CI run means the test really ran.
"""

import os
import shutil
import socket

import pytest


def services_required() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "").strip() in {"1", "true", "yes"}


def need(available: bool, what: str) -> None:
    """Skip (laptop) or fail (CI) when ``what`` is not available."""
    if available:
        return
    message = f"needs {what}"
    if services_required():
        pytest.fail(f"{message}, and REQUIRE_SERVICES=1 makes that a failure")
    pytest.skip(message)


def need_tool(name: str) -> str:
    """The path of an executable, or skip/fail."""
    path = shutil.which(name)
    need(path is not None, f"the '{name}' executable")
    return path


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
