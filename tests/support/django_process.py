"""Run a little Django code, or a management command, in a fresh process with a chosen
environment: for settings that are derived from the environment at import time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Variables of the calling environment that would change the settings under test.
CLEARED = frozenset(
    {
        "ALLOWED_HOSTS",
        "CACHE_URL",
        "CELERY_BROKER_URL",
        "DATABASE_URL",
        "DEBUG",
        # Set by the browser tests for their own process; `check --deploy` refuses it.
        "DJANGO_ALLOW_ASYNC_UNSAFE",
        "PORTAL_URL",
        "SECRET_KEY",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "TRUSTED_PROXY_HEADERS",
    }
)


def django_process(env: dict[str, str], *, code: str = "", manage: list[str] | None = None):
    """Run `code` after django.setup(), or `manage.py *manage`; the CompletedProcess."""
    full_env = {key: value for key, value in os.environ.items() if key not in CLEARED}
    full_env.update(env, DJANGO_SETTINGS_MODULE="registry_portal.settings")
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    argv = (
        [sys.executable, str(REPO_ROOT / "manage.py"), *manage]
        if manage is not None
        else [sys.executable, "-c", "import django\ndjango.setup()\n" + code]
    )
    return subprocess.run(
        argv, env=full_env, capture_output=True, text=True, timeout=180, cwd=REPO_ROOT, check=False
    )


def django_output(env: dict[str, str], code: str) -> str:
    """The stripped stdout of `code` run after django.setup(); fails on an error."""
    result = django_process(env, code=code)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
