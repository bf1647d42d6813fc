"""Command line: ``python run.py [--config PATH] [serve|worker|enqueue|status|migrate|library|backup]``."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hopper.app import settings as settings_mod



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run.py", description="Hopper background-job daemon")
    parser.add_argument("--config", help="settings file (default: $HOPPER_CONFIG, else ./settings.yaml, else built-in defaults)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="the daemon: workers, web server, watchers (default)")
    sub.add_parser("worker", help="workers only, e.g. on other machines against PostgreSQL")
    enqueue = sub.add_parser("enqueue", help="enqueue a task")
    enqueue.add_argument("name")
    enqueue.add_argument("--args", default="{}", help="JSON object of arguments")
    enqueue.add_argument("--delay", type=float, help="seconds to wait before it may run")
    enqueue.add_argument("--priority", type=int)
    enqueue.add_argument("--queue")
    enqueue.add_argument("--unique-key")
    enqueue.add_argument("--max-attempts", type=int)
    enqueue.add_argument("--timeout", type=float)
    enqueue.add_argument("--wait", type=float, metavar="S", help="wait up to S seconds and print the result")
    status = sub.add_parser("status", help="queue counts, workers, last failures")
    status.add_argument("--json", action="store_true")
    sub.add_parser("migrate", help="apply database migrations and exit")
    library = sub.add_parser("library", help="library maintenance")
    library.add_argument("action", choices=["reindex"])
    backup = sub.add_parser("backup", help="consistent online copy of the SQLite database")
    backup.add_argument("path")
    return parser


def console_main() -> int:
    """The ``hopper`` console script: the same CLI as ``python run.py``."""
    return main(sys.argv[1:])


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.config:
        os.environ["HOPPER_CONFIG"] = str(Path(args.config).resolve())
    command = args.command or "serve"
    if command in ("serve", "worker"):
        from hopper.worker.context import start_early

        start_early()  # the fork server imports the worker code while the supervisor starts
        from hopper.app.daemon import serve

        return serve(args.config, web=command == "serve")
    try:
        settings = settings_mod.load(args.config)
    except settings_mod.SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from hopper.app import queue

    try:
        client = queue.configure(settings, migrate=command != "migrate")
    except ImportError as exc:  # a tasks.modules entry: the message names it and where it looked
        print(f"error: {exc}", file=sys.stderr)
        return 2
    handler = {"enqueue": _enqueue, "status": _status, "migrate": _migrate,
               "library": _library, "backup": _backup}[command]
    try:
        return handler(args, client)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _enqueue(args, client) -> int:
    from hopper.app import queue

    try:
        task_args = json.loads(args.args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--args is not valid JSON: {exc}") from None
    options = {k: v for k, v in (("delay", args.delay), ("priority", args.priority),
                                 ("queue", args.queue), ("unique_key", args.unique_key),
                                 ("max_attempts", args.max_attempts),
                                 ("timeout", args.timeout)) if v is not None}
    task_id = queue.enqueue(args.name, task_args, **options)
    if args.wait is None:
        print(task_id)
        return 0
    task = queue.wait(task_id, timeout=args.wait)
    print(json.dumps(task, indent=2, default=str))
    return 0 if task["status"] == "succeeded" else 1


def _status(args, client) -> int:
    backend = client.backend
    workers = [{k: w[k] for k in ("id", "pid", "state", "task_id")}
               for w in backend.live_workers()]
    failures = [{k: t[k] for k in ("id", "name", "queue", "attempts", "error", "finished_at")}
                for t in backend.recent_failures(5)]
    report = {"queues": backend.counts(), "workers": workers, "failures": failures}
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print("queues:")
    for queue_name, counts in sorted(report["queues"].items()):
        print(f"  {queue_name}: " + ", ".join(f"{s} {n}" for s, n in sorted(counts.items())))
    print(f"workers: {len(workers)}")
    for w in workers:
        print(f"  {w['id']} {w['state']}" + (f" task {w['task_id']}" if w["task_id"] else ""))
    print(f"recent failures: {len(failures)}")
    for f in failures:
        last_line = (f["error"] or "").strip().splitlines()[-1:] or [""]
        print(f"  #{f['id']} {f['name']}: {last_line[0]}")
    return 0


def _migrate(args, client) -> int:
    applied = client.backend.migrate()  # the client applied them on connect; this reports
    print("database is up to date" if not applied else "applied: " + ", ".join(applied))
    return 0


def _library(args, client) -> int:
    from hopper.app.library.reindex import reindex

    count = reindex(client.settings, client.backend)
    print(f"indexed {count} file(s) under {client.settings.library_root}")
    return 0


def _backup(args, client) -> int:
    if not hasattr(client.backend, "backup"):
        raise ValueError("backup copies a SQLite database; use pg_dump for PostgreSQL")
    target = Path(args.path).resolve()
    client.backend.backup(target)
    print(f"backed up {client.settings.database} to {target}")
    return 0
