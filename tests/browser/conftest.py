"""Browser tests: a real daemon, real files, Chromium driven by Playwright.

Chromium is Debian's (``/usr/bin/chromium``; ``.ci/run`` installs it when missing).
Without it, or without the playwright package, the tests are skipped with the
reason, except in CI (``CI`` set), where that is a failure.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from daemons import Daemon, write_settings
from helpers import poll_until

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "library")]  # library_media: real test photos

from recorder import DESKTOP, PageRecorder  # noqa: E402  (found on the path set just above)

CHROMIUM = "/usr/bin/chromium"


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"browser tests are required in CI: {reason}")
    pytest.skip(reason)


# Module scope, not session: while Playwright's sync API runs, this process's main
# thread has an event loop, so tests of other modules that run their own asyncio
# loop (async tasks in eager mode) or their own Playwright would fail next to it.
@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module."""
    if not os.path.exists(CHROMIUM):
        _unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is missing (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def open_page(browser):
    """Factory: ``open_page(base_url, viewport=..., color_scheme=...)`` → (page, recorder);
    the contexts are closed at teardown."""
    contexts = []

    def factory(base_url: str, viewport: dict = DESKTOP, color_scheme: str = "light"):
        context = browser.new_context(viewport=viewport, color_scheme=color_scheme,
                                      accept_downloads=True, base_url=base_url)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page, PageRecorder(page, base_url)

    yield factory
    for context in contexts:
        context.close()


@pytest.fixture(scope="module")
def two_photos_site(tmp_path_factory):
    """A daemon whose inbox got two camera JPEGs taken in different months."""
    from library_media import photo_bytes
    from library_site import start_site, stop_site

    files = {
        "harbour-sunrise.jpg": (photo_bytes(1, size=(900, 600), original="2023:04:09 06:12:00",
                                            make="FUJIFILM", model="X-T30"), None),
        "mountain-lake.jpg": (photo_bytes(2, size=(600, 900), original="2022:08:21 15:40:10",
                                          make="Canon", model="Canon EOS R6"), None),
    }
    site = start_site(tmp_path_factory.mktemp("browser"), files)
    yield site
    stop_site(site)


@pytest.fixture(scope="module")
def token_site(tmp_path_factory):
    """A daemon with ``auth.token`` set and one photo in its library."""
    from library_media import photo_bytes
    from library_site import start_site, stop_site

    files = {"garden.jpg": (photo_bytes(3, original="2024:05:01 12:00:00"), None)}
    site = start_site(tmp_path_factory.mktemp("token"), files, token="browser-test-token")
    yield site
    stop_site(site)


LOCAL_HOSTS = ("127.0.0.1", "localhost")


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
        "console",
        lambda msg: watch.console_errors.append(msg.text) if msg.type == "error" else None))
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
    except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
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
