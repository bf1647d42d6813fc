"""Tunable constants, in one place, with why each has its value.

Modules that predate this file keep their own constants next to their use;
new ones belong here.
"""
from __future__ import annotations

# -- queues ------------------------------------------------------------------
# Queue names are labels chosen by users; this bound keeps them printable in
# the UI, usable as URL path segments and as keys of settings.yaml.
QUEUE_NAME_MAX = 100

# Queues whose files live where the inbox watcher runs: only daemons started
# with ``serve`` claim them, unless ``worker --queues`` names them.
SERVE_ONLY_QUEUES = ("library",)

# How many queues may have a concurrency limit at once. Each limited queue
# takes one column of the pool's shared-memory table of held tasks.
MAX_LIMITED_QUEUES = 32

# How many entries ``queues:`` in settings.yaml may have (limits of 0 included).
MAX_QUEUE_SETTINGS = 256

# Rows of that table: one per worker process alive at the same time. A pool
# that shrinks and grows again briefly has retiring and new workers side by
# side, so there is room for several times the largest pool.
LIMIT_TABLE_ROWS_PER_WORKER = 4

# Bytes of shared memory that carry the live concurrency settings (JSON) from
# the supervisor to its workers: room for MAX_QUEUE_SETTINGS names of
# QUEUE_NAME_MAX characters, each escaped to up to 6 bytes per character.
LIMITS_BLOB_BYTES = 256 * 1024

# ``GET /api/queues`` reports tasks finished per minute over this window.
QUEUE_THROUGHPUT_MINUTES = 60
