"""The dashboard in a real browser against a real daemon: live refresh, the
worker slider, failures with every attempt's traceback, pausing a queue, and
bulk retry by filter."""
from __future__ import annotations

import uuid

import pytest
import requests
from helpers import poll_until

expect = pytest.importorskip("playwright.sync_api", reason="playwright is not installed").expect

TIMEOUT_MS = 30_000


def _post(base: str, path: str, body) -> dict:
    response = requests.post(base + path, json=body, timeout=10)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _task(base: str, task_id: int) -> dict:
    return requests.get(f"{base}/api/tasks/{task_id}", timeout=10).json()


def _needs(available: bool, what: str) -> None:
    """Skip, saying what is missing, when a feature this test drives is not in this build."""
    if not available:
        pytest.skip(f"this build has no {what}")


def test_worker_slider_grows_the_overview_workers_table_without_reload(ui_daemon, browser_context):
    daemon = ui_daemon(workers=2)
    overview = browser_context.new_page()
    overview.goto(daemon.base_url + "/")
    rows = overview.locator("#workers-table tr[data-worker]")
    expect(rows).to_have_count(2, timeout=TIMEOUT_MS)
    # A reload would start a new document with a new time origin.
    origin = overview.evaluate("() => performance.timeOrigin")
    settings = browser_context.new_page()
    settings.goto(daemon.base_url + "/settings")
    # fill() sets the value and fires input and change, as a drag does
    settings.locator("#workers").fill("4")
    expect(settings.locator("#workers-value")).to_have_text("4")
    expect(settings.locator("#workers-running")).to_have_text("4", timeout=TIMEOUT_MS)
    expect(rows).to_have_count(4, timeout=TIMEOUT_MS)
    assert overview.evaluate("() => performance.timeOrigin") == origin


def test_failing_task_shows_in_failures_with_each_attempts_traceback_then_retries(ui_daemon, page):
    daemon = ui_daemon(workers=1)
    task_id = _post(daemon.base_url, "/api/tasks", {"name": "always_fails"})["id"]
    poll_until(lambda: _task(daemon.base_url, task_id)["status"] == "failed", timeout=30)
    _needs("history" in _task(daemon.base_url, task_id), "attempt history in GET /api/tasks/<id>")
    page.goto(daemon.base_url + "/")
    failure = page.locator("#failures li[data-error-type='ValueError']")
    failure.wait_for(timeout=TIMEOUT_MS)
    assert "× 1" in failure.inner_text()
    failure.get_by_role("link", name=f"#{task_id} always_fails").click()
    page.wait_for_url(f"**/tasks/{task_id}")
    attempts = page.locator("details.attempt")
    assert attempts.count() == 2  # always_fails has max_attempts=2
    for i in range(2):
        attempt = attempts.nth(i)
        if attempt.get_attribute("open") is None:  # the latest is open, earlier ones fold
            attempt.locator("summary").click()
        assert "ValueError: this task always fails" in attempt.locator("pre").inner_text()
    page.locator("#retry-button").click()
    page.wait_for_url(f"**/tasks/{task_id}")
    poll_until(lambda: _task(daemon.base_url, task_id)["status"] == "failed"
               and _task(daemon.base_url, task_id)["finished_at"] is not None, timeout=30)
    assert "retry done" in page.locator(".flash").inner_text()


def test_paused_queue_keeps_its_tasks_queued_until_resumed(ui_daemon, page):
    daemon = ui_daemon(workers=2)
    queue = f"p{uuid.uuid4().hex[:6]}"
    first = _post(daemon.base_url, "/api/tasks", {"name": "echo", "queue": queue})["id"]
    poll_until(lambda: _task(daemon.base_url, first)["status"] == "succeeded", timeout=30)
    _needs(requests.post(f"{daemon.base_url}/api/queues/{queue}/resume", json={},
                         timeout=10).status_code == 200, "POST /api/queues/<name>/pause|resume")
    page.goto(daemon.base_url + "/")
    card = page.locator(f"section.card[data-queue='{queue}']")
    card.locator("button.pause-toggle", has_text="Pause").click()
    card.locator(".badge.s-paused", has_text="paused").wait_for(timeout=TIMEOUT_MS)
    ids = _post(daemon.base_url, "/api/tasks/batch",
                [{"name": "echo", "queue": queue, "args": {"i": i}} for i in range(5)])["ids"]
    expect(card.locator("a[data-count='queued']")).to_have_text("5", timeout=TIMEOUT_MS)
    assert {_task(daemon.base_url, i)["status"] for i in ids} == {"queued"}
    card.locator("button.pause-toggle", has_text="Resume").click()
    expect(card.locator("a[data-count='succeeded']")).to_have_text("6", timeout=TIMEOUT_MS)
    assert card.locator(".badge.s-paused").count() == 0


def test_bulk_retry_of_fifty_failed_tasks_selected_by_filter(ui_daemon, page, tmp_path):
    daemon = ui_daemon(workers=2)
    queue = f"b{uuid.uuid4().hex[:6]}"
    # Each fails its first attempt (max_attempts=1, so it stays failed) and succeeds when retried.
    ids = _post(daemon.base_url, "/api/tasks/batch", [
        {"name": "flaky", "queue": queue, "max_attempts": 1,
         "args": {"log": str(tmp_path / f"flaky-{i}.log"),
                  "failures": 1}} for i in range(50)])["ids"]
    poll_until(lambda: requests.post(daemon.base_url + "/api/tasks/bulk", timeout=10, json={
        "action": "retry", "filter": {"queue": queue}, "dry_run": True}).json()["matched"] == 50,
        timeout=60, message="the 50 tasks did not all fail")
    page.goto(f"{daemon.base_url}/tasks?status=failed&queue={queue}")
    page.locator("#bulk-action").select_option("retry")
    page.locator("#bulk-matching").click()
    question = page.locator("#bulk-question")
    question.wait_for(timeout=TIMEOUT_MS)
    assert question.inner_text() == f"Retry 50 task(s) matching status=failed, queue={queue}?"
    page.locator("#bulk-yes").click()
    expect(page.locator("#bulk-status")).to_have_text("retry: 50 of 50 matched task(s) changed",
                                                      timeout=TIMEOUT_MS)
    poll_until(lambda: all(_task(daemon.base_url, i)["status"] == "succeeded" for i in ids),
               timeout=60, message="the retried tasks did not all succeed")
