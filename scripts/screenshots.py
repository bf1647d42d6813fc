#!/usr/bin/env python3
"""Screenshots of every dashboard page at desktop (1280) and phone (390) width,
in light and dark mode, into docs/screenshots/.

Starts a daemon in a temporary folder with the test suite's sample tasks,
gives it some history (successes in three queues, failures, a parent with
children, a long task running, two schedules), then photographs each page
with Playwright driving /usr/bin/chromium.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
WIDTHS = {"desktop": 1280, "phone": 390}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(base: str, method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _wait(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("timed out waiting for the daemon")


def start(folder: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    config = folder / "settings.yaml"
    config.write_text(yaml.safe_dump({
        "database": "sqlite:///data/hopper.db", "workers": 3,
        "server": {"bind": f"127.0.0.1:{port}", "threads": 4},
        "tasks": {"modules": ["sample_tasks"]},
        "queues": {"library": {"concurrency": 1}},
        "schedules": [{"name": "echo", "every": "30s", "args": {"ping": True}},
                      {"name": "sleep", "cron": "0 3 * * *", "args": {"seconds": 1}}],
    }, sort_keys=False))
    env = {**os.environ, "HOPPER_CONFIG": str(config),
           "PYTHONPATH": str(REPO / "tests") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    log = open(folder / "daemon.log", "wb")
    process = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--config", str(config)],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    _wait(lambda: _call(base, "GET", "/healthz")["status"] == "ok")
    return process, base


def seed(base: str, folder: Path) -> dict:
    """Some history to show: returns the ids the pages are photographed at."""
    batch = [{"name": "echo", "queue": q, "args": {"photo": f"IMG_{i:04}.jpg"}}
             for i in range(40) for q in ("default", "video", "library") if i % 3 or q == "default"]
    _call(base, "POST", "/api/tasks/batch", batch)
    failed = [_call(base, "POST", "/api/tasks", {"name": "always_fails", "queue": "video"})["id"]
              for _ in range(3)]
    parent = _call(base, "POST", "/api/tasks", {"name": "fan_out", "args": {
        "children": 12, "log": str(folder / "fan.log")}})["id"]
    _call(base, "POST", "/api/tasks", {"name": "sleep", "args": {"seconds": 120}})
    _call(base, "POST", "/api/tasks", {"name": "echo", "queue": "video", "delay": 3600})
    _wait(lambda: _call(base, "GET", f"/api/tasks/{failed[-1]}")["status"] == "failed")
    _wait(lambda: _call(base, "GET", f"/api/tasks/{parent}")["status"] == "succeeded")
    return {"failed": failed[-1], "parent": parent}


def pages(ids: dict) -> dict[str, tuple[str, str]]:
    """name -> (path, a selector that shows the page has its data)."""
    return {
        "overview": ("/", "#workers-table tr[data-worker]"),
        "tasks": ("/tasks", "#task-table"),
        "task-failed": (f"/tasks/{ids['failed']}", "details.attempt"),
        "task-parent": (f"/tasks/{ids['parent']}", ".progress"),
        "schedules": ("/schedules", "#schedules-table tbody tr"),
        "settings": ("/settings", "#concurrency-table tbody tr"),
    }


def shoot(base: str, ids: dict, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox"])
        for scheme in ("light", "dark"):
            for device, width in WIDTHS.items():
                context = browser.new_context(viewport={"width": width, "height": 900},
                                              color_scheme=scheme, device_scale_factor=1)
                page = context.new_page()
                for name, (path, ready) in pages(ids).items():
                    page.goto(base + path)
                    page.wait_for_selector(ready, timeout=30_000)
                    page.wait_for_timeout(600)
                    target = out / f"{name}-{device}-{scheme}.png"
                    page.screenshot(path=str(target), full_page=True)
                    written.append(target)
                context.close()
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hopper-shots-") as tmp:
        process, base = start(Path(tmp))
        try:
            ids = seed(base, Path(tmp))
            for path in shoot(base, ids, args.out):
                print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
