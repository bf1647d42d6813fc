"""A running daemon with a small real library, for the browser tests and screenshots."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import requests
from daemons import Daemon, write_settings
from helpers import poll_until


@dataclass
class LibrarySite:
    """A daemon serving a library; ``items`` maps each dropped name to its API item."""

    daemon: Daemon
    items: dict[str, dict] = field(default_factory=dict)
    token: str | None = None

    @property
    def base_url(self) -> str:
        return self.daemon.base_url

    @property
    def data(self) -> Path:
        return self.daemon.config.parent / "data"

    def api(self, path: str, **params) -> dict:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = requests.get(self.base_url + path, params=params, headers=headers, timeout=10)
        response.raise_for_status()
        return response.json()


def _healthy(base_url: str) -> bool:
    try:
        return requests.get(base_url + "/healthz", timeout=2).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # not listening, or still booting
        return False


def start_site(folder: Path, files: dict[str, tuple[bytes, dt.datetime | None]],
               token: str | None = None) -> LibrarySite:
    """Start a daemon (with ``auth.token`` when given), drop ``files`` ({name: (bytes,
    mtime)}) into its inbox and wait until each is indexed with its preview made (or
    none); a site that does not come up is stopped before the error is raised."""
    overrides = {"auth": {"token": token}} if token else {}
    daemon = Daemon(write_settings(folder, **overrides)).start()
    site = LibrarySite(daemon, token=token)
    try:
        _fill(site, folder, files)
    except BaseException:
        stop_site(site)  # a site that never came up must not outlive the test
        raise
    return site


def _fill(site: LibrarySite, folder: Path, files: dict[str, tuple[bytes, dt.datetime | None]]):
    daemon = site.daemon
    poll_until(lambda: _healthy(site.base_url), timeout=30,
               message=lambda: f"web server did not come up:\n{daemon.read_log()[-3000:]}")
    inbox = site.data / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    for name, (data, mtime) in files.items():
        staged = folder / f".staged-{name}"
        staged.write_bytes(data)
        if mtime is not None:
            os.utime(staged, (mtime.timestamp(), mtime.timestamp()))
        os.rename(staged, inbox / name)  # complete when it appears, as a copy tool does

    def ready():
        items = {i["source_name"]: i for i in site.api("/api/library", limit=500)["items"]}
        done = set(files) <= set(items) and all(
            items[n]["thumbnail"] != "pending" for n in files)
        return items if done else None

    site.items = poll_until(ready, timeout=90, interval=0.2,
                            message=lambda: f"library not ready\n{daemon.read_log()[-3000:]}")


def stop_site(site: LibrarySite) -> None:
    try:
        site.daemon.stop(timeout=20)
    except subprocess.TimeoutExpired:
        pass
    site.daemon.kill_everything()
