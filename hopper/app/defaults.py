"""Hopper's tunable constants, in one place.

Each value is a default chosen for a small self-hosted machine; the settings
file overrides the few that users tune (``lease``, ``workers``, retention). The
rest are here so that a change is made once and its reason stays beside it.
Times are in seconds unless the name says otherwise.
"""
from __future__ import annotations

# -- leases and liveness ------------------------------------------------------
HEARTBEAT_S = 1.0           # supervisor: worker rows, leases, orphan rescue
LIVE_WORKER_AGE_S = 3.0     # a worker row older than this is a dead one's (shown as gone)
DAEMON_STALE_S = 10.0       # a daemon silent this long is dead and its tasks are rescued;
                            # longer than a slow heartbeat, and than small clock differences
                            # between machines (heartbeats carry each daemon's own clock)
STALE_WORKER_ROW_S = 3600   # rows of killed daemons' workers are deleted after this
FENCE_CHECK_S = 0.2         # how often a daemon checks it still renews its leases (self-fencing)
FENCE_MARGIN_S = 0.5        # it stops its tasks this long before others may rescue them

# -- when the database goes away ------------------------------------------------
RECONNECT_FIRST_S = 0.1     # the first retry after the database is lost ...
RECONNECT_MAX_S = 5.0       # ... doubling up to this: a restart is seen at once, an outage costs
                            # one attempt per 5 s per component
# PostgreSQL connections (libpq parameters; the database URL may override each): a server
# or network that died is noticed in seconds, not after the kernel's ~15 min of retransmits.
PG_CONNECTION = {
    "connect_timeout": 5,         # seconds for a new connection
    "keepalives": 1,              # probe idle connections ...
    "keepalives_idle": 5,         # ... after 5 s of silence,
    "keepalives_interval": 2,     # every 2 s,
    "keepalives_count": 3,        # dead after 3 unanswered probes (~11 s idle)
    "tcp_user_timeout": 5000,     # ms a sent statement may stay unacknowledged
}

# -- the worker loop ----------------------------------------------------------
IDLE_POLL_S = 0.25          # fallback poll: delayed tasks coming due, other machines
IDLE_POLL_MAX_S = 1.0       # ... backing off to this while nothing happens (idle CPU)
MAX_BATCH = 64              # most tasks one group commit claims
PREFETCH_HOLD_S = 0.05      # claimed-but-unstarted tasks are given back after this
FAST_TASK_S = 0.002         # tasks faster than this (moving average) are batched

# -- the pool monitor ---------------------------------------------------------
MONITOR_TICK_S = 0.1        # bounds how late a timeout is enforced (deaths wake it at once)
CANCEL_CHECK_S = 0.2        # how often running tasks are checked for a cancel
FAST_EXIT_S = 2.0           # a worker dying sooner than this after start is crash-looping
MAX_RESPAWN_DELAY_S = 10.0  # the longest wait before replacing a crash-looping worker
SLOT_LOCK_WAIT_S = 1.0      # the monitor's wait for a worker to finish changing tasks
# A Flask app (tasks.flask_app) that fails to build fails the same way until the
# user's code or settings change: retry rarely, and say why once.
APP_FAILED_FIRST_DELAY_S = 1.0
APP_FAILED_MAX_DELAY_S = 30.0

# -- retries ------------------------------------------------------------------
BACKOFF_BASE_S = 1.0        # the first retry delay of a task that names none
MAX_BACKOFF_S = 3600.0      # no retry waits longer than this
MAX_ATTEMPTS = 3            # attempts of a task that names none

# -- outcomes the database must store -----------------------------------------
MAX_RESULT_BYTES = 1_000_000   # a larger result is replaced by a note saying so
MAX_ERROR_CHARS = 64_000       # a longer error (traceback) keeps its head and tail

# -- the supervisor -------------------------------------------------------------
SUPERVISE_TICK_S = 0.5      # how often the main loop looks at SIGHUP and the web server
# A web server that keeps exiting is restarted after a delay that doubles from
# WEB_RESTART_FIRST_S up to WEB_RESTART_MAX_S; one that stayed up WEB_STABLE_S
# before exiting starts over from the first delay.
WEB_RESTART_FIRST_S = 1.0
WEB_RESTART_MAX_S = 30.0
WEB_STABLE_S = 30.0
# A web server that exits with an error within WEB_EXITS_AT_ONCE_S of starting (Gunicorn
# retries a busy port for about 5 s) WEB_EXITS_AT_ONCE times in a row stops the daemon: it
# cannot serve. Killed by a signal does not count (that is a crash; it is restarted).
WEB_EXITS_AT_ONCE_S = 15.0
WEB_EXITS_AT_ONCE = 3

# -- housekeeping -------------------------------------------------------------
PRUNE_EVERY_S = 60.0        # how often retention runs
PRUNE_CHUNK = 5000          # rows deleted per write transaction while pruning
SCHEDULER_MAX_SLEEP_S = 1.0  # the scheduler wakes at least this often (live changes, pauses)

# -- eager mode ---------------------------------------------------------------
EAGER_LEASE_S = 3600.0      # an eager task runs in the caller; nobody else may rescue it

# -- queues ------------------------------------------------------------------
# Queue names are labels chosen by users; this bound keeps them printable in
# the UI, usable as URL path segments and as keys of settings.yaml.
QUEUE_NAME_MAX = 100

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

# -- the library browser ------------------------------------------------------
THUMBNAIL_SIZE = 320        # longest side in pixels (Immich uses 250; sharper on HiDPI screens)
THUMBNAIL_QUALITY = 80      # WebP/JPEG quality of thumbnails
PREVIEW_SIZE = 1600         # longest side of the item page's large preview (a laptop screen)
VIDEO_POSTER_AT = 0.10      # a video's poster frame is taken this far in (past fades from black)
THUMBNAIL_TIMEOUT_S = 120.0  # a thumbnail takes well under a second; a hang is the file's fault
THUMBNAIL_MAX_AGE_S = 86400  # browsers may cache a thumbnail this long (named by content)
THUMBNAIL_ORPHAN_AGE_S = 3600.0  # an unindexed content's thumbnail older than this is removed
EXPORT_TIMEOUT_S = 3600.0   # library.export of a very large index
LIBRARY_PAGE_SIZE = 60      # items per page of the /library grid ("load more" adds as many)

# -- folder triggers ------------------------------------------------------------
# How long after a task's hopper.quiet block (or hopper.moved call) events on its paths
# are still its own: the watcher acts on a move within a second, on a new file after
# its settle time (5 s by default), so a minute covers both with room for a busy host.
WATCH_QUIET_GRACE_S = 60.0
# Catch-up rescans of watched folders when no plugin setting gives the interval: files
# dropped while no daemon watched are found within this long at worst (and at each start).
WATCH_RESCAN_INTERVAL_S = 3600.0

# -- flow control (backends/flow_sql.py, flow_rates.py) ---------------------
RATE_CLAIM_LOG_S = 60.0     # claims under a rate key are kept at least this long (and at least
                            # two periods): the Limits page and audits read when each was made
FLOW_CANDIDATE_SCAN = 2     # rate-limited groups a claim looks at per task it may take
FLOW_CANDIDATE_EXTRA = 4    # other keyed groups looked at beyond the tasks a claim may take
                            # (peers hold some; groups with only delayed tasks are deferred
                            # and looked past, see FLOW_DEFER_PASSES); each costs a lookup,
                            # and a row lock on PostgreSQL (16: 3 % more work per keyed task)
FLOW_DEFER_PASSES = 3       # picks one keyed claim makes while the groups it meets hold only
                            # delayed tasks (each pass moves those behind the others and looks
                            # at four times as many groups; the next claim goes on from there)
FLOW_GROUP_TAKE = 8         # most tasks of one key in one queue one claim takes (a batch of fast
                            # tasks holds its slots while it runs them one by one) ...
FLOW_GROUP_SHARE = 4        # ... or, for a key with many free slots, this fraction of them
                            # (1/4: a key of limit 500 fills a worker's batch of 64)
FLOW_RECOUNT_CHUNK = 100    # keys one transaction of the minutely recount of running tasks
                            # locks and counts (prune_flow; a count drifts only in upgrades)
FLOW_KEYS_SHOWN = 1000      # concurrency keys GET /api/limits lists (the busiest ones first)
