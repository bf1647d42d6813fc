"""Fixtures for the web tests: real daemons on free ports and HTTP clients for them."""
from __future__ import annotations

import pytest
from daemons import Daemon
from webtools import Api, start_web_daemon, stop_daemon


@pytest.fixture(scope="module")
def shared_daemon(tmp_path_factory):
    """One daemon (2 workers) shared by a module's read-mostly tests; tests
    isolate themselves with their own queue names."""
    daemon = start_web_daemon(tmp_path_factory.mktemp("web"))
    yield daemon
    stop_daemon(daemon)


@pytest.fixture
def api(shared_daemon) -> Api:
    """An HTTP client for the shared daemon."""
    return Api(shared_daemon.base_url)


@pytest.fixture
def web_daemon(tmp_path):
    """Factory for a test's own daemon: ``web_daemon(**settings_overrides)``."""
    started = []

    def factory(extra_args: tuple[str, ...] = (), **overrides) -> Daemon:
        daemon = start_web_daemon(tmp_path, extra_args, **overrides)
        started.append(daemon)
        return daemon

    yield factory
    for daemon in started:
        stop_daemon(daemon)
