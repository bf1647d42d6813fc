#!/usr/bin/env bash
# Hopper beside the peers, in one run, printed as one table.
#
#   bash bench/run_all.sh            (from the repository root; about 17 minutes on 2 cores)
#
# 0. bench/bench_wake.py: the machine's wake-up of a process idle 5 s, the floor under
#    the cold pickups (a halted vCPU of a virtual machine takes a while to run again)
# 1. the peer harness (../shared/bench-peers/run_all.sh: huey, RQ, SQLite limit,
#    the floor) with N=20000, 2 workers; its results go to bench/out/<stamp>/
# 2. bench/bench_hopper.py (durability full and normal, batch enqueue, claim rate),
#    run once before and once after the peers (the second without the extras)
# 3. PostgreSQL (127.0.0.1:5432, a fresh database per run): bench/bench_hopper.py
#    --engine postgres, then PgQueuer and procrastinate (bench/bench_pgpeers.py, in their
#    own virtual environment made by bench/setup_pgpeers.sh), each with 1, 2, 4 and 8
#    worker processes, same N; SKIP_PG=1 leaves this out
# 4. bench/bench_http.py: single POST /api/tasks beside a bare Flask endpoint under the
#    same Gunicorn command line, then POST /api/tasks/batch
# 5. bench/bench_enqueue_ab.py: single enqueues of Hopper and SqliteHuey (both synchronous=FULL)
#    in alternating bursts, so the disk's fsync time is the same for both
# 6. bench/bench_counters.py: claim+finish in one process (64 per transaction) with no
#    counting, with the per-transaction counter batch and with the old row triggers, in
#    alternating runs, on SQLite (CPU time) and PostgreSQL (wall time; unless SKIP_PG=1)
# 7. bench/bench_flow.py: keyed claims (1,000 keys, limit 1) against plain ones, and a
#    deep backlog under one key against none, on SQLite and PostgreSQL
# 8. bench/bench_library.py --media: phone photos, HEIC and videos to previews beside a
#    bare-library floor (LIBRARY_SCALE, default 1: 1,000 + 20 + 5 files; SKIP_LIBRARY=1
#    leaves it out)
# 9. bench/report.py: one table with Hopper and the peers, and the ratios vs targets
#
# Everything lands in bench/out/<stamp>/ (ignored by git). Env: N, WORKERS,
# PEER_DIR (default ../shared/bench-peers), HOPPER_PY (default .venv/bin/python),
# SKIP_PEERS=1 with PEERS_JSON=path reuses an earlier peer run.
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONDONTWRITEBYTECODE=1  # keep __pycache__ out of the peers' folder
export N=${N:-20000} WORKERS=${WORKERS:-2}
PEER_DIR=${PEER_DIR:-../shared/bench-peers}
PY=${HOPPER_PY:-.venv/bin/python}
OUT=bench/out/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
started=$(date +%s)
# Hopper's own modules are compiled once, as an installed package's are (the peers'
# are, in site-packages); without it every process started here would compile them.
"$PY" -m compileall -q hopper bench > /dev/null

# The floor under a cold pickup on this machine: one wake-up of a process idle 5 s.
echo "[bench] wake-up floor: bench/bench_wake.py" >&2
"$PY" bench/bench_wake.py --json "$OUT/wake.json" 2>&1 >/dev/null | tee "$OUT/wake.log" >&2

# Hopper runs before and after the peers: on a shared machine the load drifts
# over the ~7 minutes the peers take, and the two runs bracket them.
echo "[bench] hopper (before peers): $PY bench/bench_hopper.py" >&2
"$PY" bench/bench_hopper.py --label "before peers" --json "$OUT/hopper-before.json" \
  > /dev/null 2> "$OUT/hopper-before.log"
rc=$?
grep '^\[' "$OUT/hopper-before.log" >&2

if [ "${SKIP_PEERS:-0}" != 1 ]; then
  echo "[bench] peers: N=$N WORKERS=$WORKERS bash $PEER_DIR/run_all.sh" >&2
  PEER_OUT="$OUT" bash "$PEER_DIR/run_all.sh" > "$OUT/peers.stdout" 2> "$OUT/peers.log"
  echo "[bench] peers exited $?" >&2
  PEERS_JSON=$(ls "$OUT"/peers-*.json 2>/dev/null | head -1)
fi
if [ -z "${PEERS_JSON:-}" ] || [ ! -f "$PEERS_JSON" ]; then
  echo "[bench] no peer JSON; see $OUT/peers.log" >&2
  exit 1
fi

pg_args=()
if [ "${SKIP_PG:-0}" != 1 ]; then
  echo "[bench] postgres: hopper, pgqueuer, procrastinate (workers ${PG_WORKERS_LIST:-1,2,4,8})" >&2
  "$PY" bench/bench_hopper.py --engine postgres --label postgres \
    --json "$OUT/hopper-pg.json" > /dev/null 2> "$OUT/hopper-pg.log" || rc=1
  grep '^\[' "$OUT/hopper-pg.log" >&2
  if bash bench/setup_pgpeers.sh 2> "$OUT/pgpeers-setup.log"; then
    PGPY=${PG_PEER_VENV:-/tmp/pgpeervenv}/bin/python
    for q in pgqueuer procrastinate; do
      timeout -k 10 900 "$PGPY" bench/bench_pgpeers.py --queue "$q" --json "$OUT/$q.json" \
        > /dev/null 2> "$OUT/$q.log" || rc=1
      grep '^\[' "$OUT/$q.log" >&2
    done
  else
    echo "[bench] PostgreSQL peers' setup failed; see $OUT/pgpeers-setup.log" >&2; rc=1
  fi
  pg_args=(--hopper-pg "$OUT/hopper-pg.json" --pgqueuer "$OUT/pgqueuer.json"
           --procrastinate "$OUT/procrastinate.json")
fi

echo "[bench] single enqueue, Hopper and SqliteHuey interleaved: bench/bench_enqueue_ab.py" >&2
"$PY" bench/bench_enqueue_ab.py --json "$OUT/enqueue-ab.json" > /dev/null 2> "$OUT/enqueue-ab.log" || rc=1
cat "$OUT/enqueue-ab.log" >&2

echo "[bench] http: bench/bench_http.py (bare Flask vs POST /api/tasks, then batches)" >&2
"$PY" bench/bench_http.py --json "$OUT/http.json" > "$OUT/http.log" 2>&1 || rc=1
cat "$OUT/http.log" >&2

echo "[bench] counting cost: bench/bench_counters.py (none / per batch / row triggers)" >&2
"$PY" bench/bench_counters.py --runs 5 --json "$OUT/counters-sqlite.json" \
  > "$OUT/counters-sqlite.md" 2> "$OUT/counters-sqlite.log" || rc=1
cat "$OUT/counters-sqlite.md" >&2
if [ "${SKIP_PG:-0}" != 1 ]; then
  "$PY" bench/bench_counters.py --runs 5 --n 10000 --json "$OUT/counters-pg.json" \
    --postgres "${HOPPER_BENCH_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}" \
    > "$OUT/counters-pg.md" 2> "$OUT/counters-pg.log" || rc=1
  cat "$OUT/counters-pg.md" >&2
fi

echo "[bench] hopper (after peers; batch enqueue and claim rate only before)" >&2
"$PY" bench/bench_hopper.py --label "after peers" --skip-extras --json "$OUT/hopper-after.json" \
  > /dev/null 2> "$OUT/hopper-after.log" || rc=1
grep '^\[' "$OUT/hopper-after.log" >&2

echo "[bench] flow control: bench/bench_flow.py (keyed vs plain claims, a backlog under one key)" >&2
"$PY" bench/bench_flow.py --rounds 9 --json "$OUT/flow-sqlite.json" > /dev/null \
  2> "$OUT/flow-sqlite.log" || rc=1
cat "$OUT/flow-sqlite.log" >&2
if [ "${SKIP_PG:-0}" != 1 ]; then
  "$PY" bench/bench_flow.py --rounds 9 --engine postgres --json "$OUT/flow-pg.json" > /dev/null \
    2> "$OUT/flow-pg.log" || rc=1
  cat "$OUT/flow-pg.log" >&2
fi

if [ "${SKIP_LIBRARY:-0}" != 1 ]; then
  echo "[bench] library: bench/bench_library.py --media --scale ${LIBRARY_SCALE:-1}" >&2
  "$PY" bench/bench_library.py --media --scale "${LIBRARY_SCALE:-1}" > "$OUT/library.log" 2>&1 \
    || rc=1
  cat "$OUT/library.log" >&2
fi

"$PY" bench/report.py --peers "$PEERS_JSON" \
  --hopper "$OUT/hopper-before.json" "$OUT/hopper-after.json" "${pg_args[@]}" \
  --http "$OUT/http.json" --enqueue-ab "$OUT/enqueue-ab.json" --wake "$OUT/wake.json" \
  --md "$OUT/table.md" --cmd "bash bench/run_all.sh  (N=$N WORKERS=$WORKERS)" || rc=1
echo "[bench] total $(( $(date +%s) - started )) s; results in $OUT" >&2
exit $rc
