"""Browser fixtures: Playwright for Python driving the system Chromium.

Skipped with a reason when Playwright or /usr/bin/chromium is missing; with
``CI`` set, a missing browser fails the run instead. Every page records its
console errors and any request that leaves the host; a test that produced
either fails at teardown.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

from daemons import Daemon, write_settings
from helpers import poll_until

CHROMIUM = Path("/usr/bin/chromium")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def _missing(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser tests are required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def browser():
    """A headless Chromium for one test. Not shared across tests: Playwright's sync API
    runs an event loop in this thread while it is open, which would break the other
    tests of this process that run asyncio (eager async tasks, other browsers)."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


class PageWatch:
    """What a page did that a test must not allow."""

    def __init__(self):
        self.console_errors: list[str] = []
        self.outside_requests: list[str] = []


@pytest.fixture
def browser_context(browser):
    """A fresh context (cookies, storage) whose pages are watched; checked at teardown."""
    watch = PageWatch()
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def on_route(route):
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            watch.outside_requests.append(route.request.url)
            route.abort()

    context.route("**/*", on_route)
    context.on("page", lambda page: page.on(
        "console", lambda msg: watch.console_errors.append(msg.text) if msg.type == "error" else None))
    context.watch = watch
    yield context
    context.close()
    assert watch.outside_requests == [], "requests left the host"
    assert watch.console_errors == [], "the console logged errors"


@pytest.fixture
def page(browser_context):
    """A watched page."""
    return browser_context.new_page()


def _healthy(base_url: str) -> bool:
    try:
        return requests.get(base_url + "/healthz", timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture
def ui_daemon(tmp_path):
    """Factory for a test's own daemon with the web UI: ``ui_daemon(**settings)``."""
    started: list[Daemon] = []

    def factory(**overrides) -> Daemon:
        daemon = Daemon(write_settings(tmp_path, **overrides))
        started.append(daemon)
        daemon.start()
        poll_until(lambda: _healthy(daemon.base_url), timeout=30,
                   message=lambda: f"web server did not come up:\n{daemon.read_log()}")
        return daemon

    yield factory
    for daemon in started:
        try:
            daemon.stop(timeout=20)
        except subprocess.TimeoutExpired:
            pass
        daemon.kill_everything()
