"""Editing ``queues.NAME.concurrency`` in settings.yaml as text, keeping comments.

The ``queues:`` block is found by its top-level key; an entry written as a
flow mapping (``  library: {concurrency: 1}  # why``) has its mapping rewritten
and keeps its comment; an entry written as a block (``  library:`` then
``    concurrency: 1``) has its ``concurrency`` line rewritten or added; a queue
without an entry gets one after the block's last entry. A file without a
``queues`` key gets the block at its end. Anything else returns None and the
caller falls back to a full dump; so does any edit whose result does not parse
to exactly the intended settings (the caller checks).
"""
from __future__ import annotations

import json
import re

import yaml

_TOP_QUEUES = re.compile(r"^queues:[ \t]*(?P<value>[^#\n]*?)[ \t]*(?P<comment>#[^\n]*)?$")
_ENTRY = re.compile(
    r"^(?P<indent>[ ]+)(?P<key>\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s#'\"{\[][^#:]*?)"
    r"[ \t]*:(?P<rest>(?:[ \t][^\n]*)?)$")
_CONCURRENCY = re.compile(r"^(?P<indent>[ ]+)concurrency[ \t]*:[ \t]*(?P<value>[^\s#]+)")
_FLOW = re.compile(r"^[ \t]*(?P<flow>\{[^#]*\})[ \t]*(?P<comment>#.*)?$")
_EMPTY_VALUES = ("", "{}", "null", "~")


def merged_queues(current, limits: dict[str, int]) -> dict:
    """The ``queues`` mapping with ``limits`` applied to it."""
    queues = dict(current) if isinstance(current, dict) else {}
    for name, n in limits.items():
        entry = queues.get(name)
        queues[name] = {**(entry if isinstance(entry, dict) else {}), "concurrency": n}
    return queues


def yaml_key(name: str) -> str:
    """``name`` as a YAML mapping key: plain when it reads back as itself, else quoted."""
    plain_ok = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) is not None
    if plain_ok and yaml.safe_load(f"{name}: 0") == {name: 0}:
        return name
    return json.dumps(name)


def _key_of(text: str):
    try:
        parsed = yaml.safe_load(f"{text}: 0")
    except yaml.YAMLError:
        return None
    return next(iter(parsed)) if isinstance(parsed, dict) and len(parsed) == 1 else None


def with_queue_limits(text: str, limits: dict[str, int]) -> str | None:
    """The settings text with each ``queues.NAME.concurrency`` set, or None when
    the file's layout is not one this edit knows."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    starts = [i for i, line in enumerate(lines) if line.startswith("queues:")]
    if len(starts) > 1:
        return None
    if not starts:
        lines.append("queues:\n")
        starts = [len(lines) - 1]
    start = starts[0]
    match = _TOP_QUEUES.match(lines[start].rstrip("\n"))
    if match is None:
        return None
    if match.group("value") not in _EMPTY_VALUES:
        return None  # a flow mapping on the key's own line: dump instead
    comment = match.group("comment")
    lines[start] = "queues:" + (f"  {comment}" if comment else "") + "\n"
    for name, n in limits.items():
        if not _set_one(lines, start, name, n):
            return None
    return "".join(lines)


def _block_end(lines: list[str], start: int) -> int:
    """The index after the queues block (its indented lines, comments and blanks)."""
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line.startswith((" ", "\t", "#")):
            break
        end += 1
    return end


def _set_one(lines: list[str], start: int, name: str, n: int) -> bool:
    end = _block_end(lines, start)
    entries = [(i, m) for i in range(start + 1, end)
               if (m := _ENTRY.match(lines[i].rstrip("\n")))]
    indent = min((len(m.group("indent")) for _, m in entries), default=2)
    for i, m in entries:
        if len(m.group("indent")) != indent or _key_of(m.group("key")) != name:
            continue
        rest = m.group("rest").strip()
        if not rest or rest.startswith("#"):
            return _set_block_entry(lines, i, indent, n)
        flow = _FLOW.match(rest)
        if flow is None:
            return False
        try:
            entry = yaml.safe_load(flow.group("flow"))
        except yaml.YAMLError:
            return False
        if not isinstance(entry, dict):
            return False
        entry["concurrency"] = n
        body = ", ".join(f"{yaml_key(str(k))}: {json.dumps(v)}" for k, v in entry.items())
        tail = f"  {flow.group('comment')}" if flow.group("comment") else ""
        lines[i] = f"{m.group('indent')}{m.group('key')}: {{{body}}}{tail}\n"
        return True
    # A new entry goes after the block's last entry line, before trailing comments.
    last = max((i for i, _ in entries), default=start)
    while last + 1 < end and lines[last + 1].startswith(" " * (indent + 1)) and \
            lines[last + 1].strip() and not lines[last + 1].lstrip().startswith("#"):
        last += 1
    lines.insert(last + 1, f"{' ' * indent}{yaml_key(name)}: {{concurrency: {n}}}\n")
    return True


def _set_block_entry(lines: list[str], i: int, indent: int, n: int) -> bool:
    """``NAME:`` followed by indented keys: rewrite or add its concurrency line."""
    j = i + 1
    child_indent = None
    while j < len(lines) and (not lines[j].strip() or
                              len(lines[j]) - len(lines[j].lstrip(" ")) > indent):
        match = _CONCURRENCY.match(lines[j])
        if match:
            line = lines[j]
            lines[j] = line[:match.start("value")] + str(n) + line[match.end("value"):]
            return True
        if lines[j].strip() and child_indent is None:
            child_indent = len(lines[j]) - len(lines[j].lstrip(" "))
        j += 1
    lines.insert(i + 1, f"{' ' * (child_indent or indent + 2)}concurrency: {n}\n")
    return True
