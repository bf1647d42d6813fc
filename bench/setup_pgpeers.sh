#!/usr/bin/env bash
# The PostgreSQL peers' own virtual environment (never the project's): PgQueuer and
# procrastinate, pinned, from PyPI. Idempotent. PG_PEER_VENV picks the folder.
set -euo pipefail
VENV=${PG_PEER_VENV:-/tmp/pgpeervenv}
want="pgqueuer==1.6.0 procrastinate==3.10.0 asyncpg==0.32.0 psycopg[binary]==3.3.9"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
if ! "$VENV/bin/python" - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if (version("pgqueuer"), version("procrastinate")) == ("1.6.0", "3.10.0") else 1)
PY
then
  echo "[setup_pgpeers] pip installing $want into $VENV" >&2
  "$VENV/bin/pip" install -q --disable-pip-version-check $want
fi
