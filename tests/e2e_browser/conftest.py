"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Playwright never downloads a browser here: it launches /usr/bin/chromium. Without Chromium a
laptop skips these tests and CI (REQUIRE_SERVICES=1) fails them. Screenshots of the key
pages go to test-artifacts/ (not committed).
"""

import os
from pathlib import Path

import pytest

from tests.services import need_tool

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    need_tool("chromium")
    # Playwright's sync API runs an event loop in this thread; Django's ORM then refuses
    # to run in it unless told it is safe (the test's own code is synchronous).
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def screenshot():
    """Save a full-page screenshot of ``page`` as test-artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)

    def take(page, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def sign_in(page, username: str, password: str) -> None:
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name=f"Welcome, {username}").wait_for()
