"""The try-it page (web/) in a real browser: Debian's chromium driven by
Playwright, never a downloaded browser.

scripts/test.sh starts the functions (cargo lambda watch), the Plivo sandbox
and scripts/dev_server.py, and sets:

  BROWSER_PAGE_URL   the page, served by the dev server (http://127.0.0.1:P/)
  BROWSER_API_URL    the API with API Gateway's CORS rules, on another port,
                     so that the page really calls it cross-origin
  E2E_SANDBOX_URL    the Plivo sandbox, where the test reads the codes
  BROWSER_ARTIFACTS  where the screenshots of each state go (the run's folder)

Against ./scripts/dev.sh instead (DEV_LIMITS=production, for the cooldown;
ALLOWED_ORIGINS=http://127.0.0.1:8000, for the refused origin):
BROWSER_PAGE_URL=http://127.0.0.1:8000/ BROWSER_API_URL=http://127.0.0.1:9000
E2E_SANDBOX_URL=http://127.0.0.1:8089 .venv/bin/pytest tests/browser
"""

import os
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("BROWSER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# A small phone: the page must work at 360 px wide.
PHONE_VIEWPORT = {"width": 360, "height": 780}


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=PHONE_VIEWPORT, device_scale_factor=2, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert errors == [], f"the page threw: {errors}"


@pytest.fixture(scope="session")
def artifacts():
    folder = Path(os.environ.get("BROWSER_ARTIFACTS") or "/tmp/otp-browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def shoot(page, artifacts):
    """Saves a screenshot of the page's current state, whole page."""
    def shoot(name):
        path = artifacts / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
    return shoot


