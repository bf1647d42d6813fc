"""Who runs a task: the ids of daemons and of their worker processes.

A daemon draws a random id at each start. Its workers' ids embed it
(``host:pid-daemon-nonce``), so a running task names the daemon that owns its
worker, and that daemon's heartbeat row says whether the worker can still be
alive. Host names and pids are shown to people but never trusted for liveness:
two containers may share a host name, and a restarted container reuses pids.
"""
from __future__ import annotations

import os
import socket

HOSTNAME_ENV = "HOPPER_HOSTNAME"   # overrides the host name shown in worker ids


def host_name() -> str:
    """The host name this daemon reports (``HOPPER_HOSTNAME`` or the system's)."""
    return os.environ.get(HOSTNAME_ENV) or socket.gethostname()


def new_daemon_id() -> str:
    """A fresh id for one start of one daemon."""
    return os.urandom(6).hex()


def worker_id_for(pid: int, daemon_id: str, nonce: str) -> str:
    """The id a worker process records on the tasks it runs.

    The nonce tells apart two workers of one daemon that got the same pid in turn.
    """
    return f"{host_name()}:{pid}-{daemon_id}-{nonce}"


def daemon_of(worker_id: str) -> str | None:
    """The daemon id inside a worker id; None for ids of another shape."""
    _, sep, rest = worker_id.rpartition(":")
    parts = rest.split("-")
    return parts[1] if sep and len(parts) == 3 else None
