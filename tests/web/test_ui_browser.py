"""The UI in a real browser under the Content-Security-Policy: every page renders
with no CSP violation or script error, the worker slider saves, the cancel form
works."""
from __future__ import annotations

import os

import pytest
import yaml
from helpers import poll_until
from webtools import Api

CHROMIUM = "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (CI installs the chromium package)")


@pytest.fixture
def browser_page():
    """A Chromium page that records console errors and page errors."""
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.problems = []
        page.on("console", lambda m: page.problems.append(m.text)
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: page.problems.append(str(exc)))
        yield page
        browser.close()


def test_every_page_renders_under_the_csp_without_errors(web_daemon, browser_page, tmp_path):
    daemon = web_daemon(workers=1)
    api = Api(daemon.base_url)
    task = api.enqueue("echo", {"shown": True})
    api.wait_status(task["id"])
    page = browser_page
    for path in ("/", "/tasks", f"/tasks/{task['id']}", "/settings", "/library"):
        response = page.goto(daemon.base_url + path)
        assert response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
        # The stylesheet applied: the nav bar has its background colour.
        background = page.eval_on_selector("nav", "n => getComputedStyle(n).backgroundColor")
        assert background == "rgb(34, 51, 68)", path
        page.screenshot(path=str(tmp_path / f"page{path.replace('/', '_') or '_'}.png"))
    assert page.problems == []


def test_the_worker_slider_saves_through_the_csp(web_daemon, browser_page, tmp_path):
    daemon = web_daemon(workers=1)
    page = browser_page
    page.goto(daemon.base_url + "/settings")
    page.eval_on_selector("#workers", """s => { s.value = 3;
        s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }""")
    # (wait_for_function would evaluate a string in the page, which the CSP forbids)
    page.wait_for_selector("#workers-status:has-text('written')", timeout=10_000)
    page.screenshot(path=str(tmp_path / "slider.png"))
    assert page.text_content("#workers-status") == "written to settings.yaml: workers 3"
    assert page.text_content("#workers-value") == "3"
    assert yaml.safe_load(daemon.config.read_text())["workers"] == 3
    poll_until(lambda: len(Api(daemon.base_url).get("/api/workers").json()) == 3, timeout=10)
    assert page.problems == []


def test_the_cancel_form_works_in_the_browser(web_daemon, browser_page, tmp_path):
    daemon = web_daemon(workers=1)
    api = Api(daemon.base_url)
    task = api.enqueue("echo", delay=3600)
    page = browser_page
    page.goto(f"{daemon.base_url}/tasks/{task['id']}")
    page.click("text=Cancel")
    page.wait_for_selector("text=cancel done")
    page.screenshot(path=str(tmp_path / "cancelled.png"))
    assert api.get(f"/api/tasks/{task['id']}").json()["status"] == "cancelled"
    page.click("text=Retry")
    page.wait_for_selector("text=retry done")
    api.wait_status(task["id"])  # re-queued to run now, and run
    assert page.problems == []


def test_login_with_a_token_then_the_slider_saves(web_daemon, browser_page, tmp_path):
    daemon = web_daemon(workers=1, auth={"token": "browser-token"})
    page = browser_page
    page.goto(daemon.base_url + "/settings")
    assert "/login" in page.url
    page.fill("input[name=token]", "browser-token")
    page.click("button:has-text('Log in')")
    page.wait_for_selector("#workers")
    assert page.url == daemon.base_url + "/settings"
    cookie = next(c for c in page.context.cookies() if c["name"] == "session")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
    page.eval_on_selector("#workers", """s => { s.value = 2;
        s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change')); }""")
    page.wait_for_selector("#workers-status:has-text('written')", timeout=10_000)
    page.screenshot(path=str(tmp_path / "logged-in-settings.png"))
    assert yaml.safe_load(daemon.config.read_text())["workers"] == 2
    assert page.problems == []
