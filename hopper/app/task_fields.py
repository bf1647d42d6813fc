"""Checks for the fields a task is found and described by: ``tags`` and ``meta``.

Shared by the Python API (``enqueue``, ``set_meta``, ``list_tasks``) and the REST API,
so both refuse the same input with the same message.
"""
from __future__ import annotations

import json
from typing import Any

from hopper.app.backends.base import MAX_META_BYTES, MAX_TAG_LENGTH, MAX_TAGS


def check_tag(tag: Any) -> str:
    """A tag as stored: a non-empty string of printable characters; ValueError otherwise."""
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"each tag must be a non-empty string of at most {MAX_TAG_LENGTH}"
                         f" characters, got {tag!r:.80}")
    if any(ord(c) < 32 or ord(c) == 127 for c in tag):
        raise ValueError(f"tag {tag!r:.80} contains a control character")
    try:
        tag.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"tag {tag!r:.80} is not valid Unicode") from None
    return tag


def check_tags(tags: Any) -> tuple[str, ...]:
    """A list of tags, validated, duplicates dropped (order kept)."""
    if tags is None:
        return ()
    if not isinstance(tags, (list, tuple)):
        raise ValueError(f"tags must be a list of strings, got {type(tags).__name__}")
    if len(tags) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags per task, got {len(tags)}")
    return tuple(dict.fromkeys(check_tag(tag) for tag in tags))


def check_meta(meta: Any) -> str | None:
    """``meta`` as JSON text (None stays None); ValueError when not a small JSON object."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise ValueError(f"meta must be a JSON object, got {type(meta).__name__}")
    try:
        text = json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"meta is not JSON-serializable: {exc}") from None
    if len(text.encode()) > MAX_META_BYTES:
        raise ValueError(f"meta is {len(text.encode())} bytes as JSON; at most {MAX_META_BYTES}")
    return text
