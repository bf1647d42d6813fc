"""What a queue name may be: one rule for enqueue, pause and resume, the settings'
``queues`` and the command line's ``--queues``.

A name is listed in ``--queues a,b`` and in URLs (``/api/queues/NAME/pause``), so it
cannot hold a comma or a slash: a task in queue ``a,b`` could never be paused.
"""
from __future__ import annotations

from typing import Any, Mapping

from hopper.app.defaults import QUEUE_NAME_MAX


class InvalidQueueName(ValueError):
    """A queue name breaks the rule; the message names the setting or option."""


def check_queue_name(name: Any, key: str = "queue") -> str:
    """``name`` if it is a queue name: 1 to QUEUE_NAME_MAX printable characters, no
    comma, no slash, no surrounding spaces. InvalidQueueName says what is wrong."""
    if not isinstance(name, str) or not name or len(name) > QUEUE_NAME_MAX:
        raise InvalidQueueName(f"{key}: a queue name must be a string of 1 to {QUEUE_NAME_MAX} "
                               f"characters, got {name!r}")
    if not name.isprintable() or name != name.strip() or "," in name or "/" in name:
        raise InvalidQueueName(f"{key}: queue name {name!r} may not contain commas, slashes, "
                               "control characters or surrounding spaces")
    return name


def parse_queue_list(text: str) -> frozenset[str]:
    """``a,b`` from the command line as a set of queue names; InvalidQueueName if a
    name is empty or breaks the rule."""
    names = [part.strip() for part in text.split(",")]
    if not text.strip() or any(not name for name in names):
        raise InvalidQueueName(
            f"--queues expects queue names separated by commas, got {text!r}")
    return frozenset(check_queue_name(name, "--queues") for name in names)


def check_claimable(queues: frozenset[str] | None, limits: Mapping[str, int],
                    settings_path: object) -> None:
    """Refuse ``--queues`` naming a queue the settings give ``concurrency: 0``: such a
    daemon would never claim it, and its tasks would wait with nothing said.
    InvalidQueueName names the queues and both ways out."""
    refused = sorted(q for q in (queues or ()) if limits.get(q) == 0)
    if refused:
        raise InvalidQueueName(
            f"--queues names {', '.join(refused)}, which {settings_path} gives"
            " concurrency: 0 (this daemon would never claim it); leave it out of --queues"
            " or give it a concurrency above 0")
