"""Command line: ``python run.py [COMMAND] [options]``.

Commands: serve, worker, queue, enqueue, status, migrate, library, backup.

Global options (``--config``, ``--log-format``, ``--log-level``) go before or
after the subcommand.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from hopper.app import logs, plugins, registry
from hopper.app import settings as settings_mod
from hopper.app.backends import database_errors
from hopper.app.queue_names import parse_queue_list

# Exit codes (docs/configuration.md lists them).
EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE, EXIT_DATABASE, EXIT_TIMEOUT = 0, 1, 2, 3, 4
# Commands that only read: they never create a database that is not there.
READ_ONLY = ("status", "backup")


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (usage stays available with --help)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class _NotADaemon(Exception):
    """The early look at the command line could not read it (the full parse will say why)."""


class _EarlyParser(argparse.ArgumentParser):
    """The pre-parse that starts the fork server: silent on any error."""

    def error(self, message: str):
        raise _NotADaemon(message)


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # The same options on the main parser and on every subcommand; on the
    # subcommands their defaults are suppressed so that a value given before
    # the subcommand is not overwritten by the subcommand's default.
    default = (lambda value: argparse.SUPPRESS) if suppress else (lambda value: value)
    parser.add_argument("--config", default=default(None),
                        help="settings file (default: $HOPPER_CONFIG, else ./settings.yaml,"
                             " else built-in defaults under ./data)")
    parser.add_argument("--log-format", choices=logs.FORMATS, default=default("text"),
                        help="text (default) or json: one JSON object per line")
    parser.add_argument("--log-level", choices=logs.LEVELS, default=default("info"),
                        help="debug also shows every task's enqueued and started events")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="run.py", description="Hopper background-job daemon")
    _global_options(parser, suppress=False)
    sub = parser.add_subparsers(dest="command")

    def command(name: str, help_: str, description: str | None = None) -> argparse.ArgumentParser:
        child = sub.add_parser(name, help=help_, description=description or help_)
        _global_options(child, suppress=True)
        return child

    command("serve", "the daemon: workers, web server, watchers (default)")
    worker = command("worker", "workers only, e.g. on other machines against PostgreSQL")
    worker.add_argument("--queues", metavar="A,B",
                        help="claim only these queues (a plugin's serve-only queues run only "
                             "where named here or on serve)")
    queue_cmd = command("queue", "pause or resume a queue for every daemon")
    queue_cmd.add_argument("action", choices=["pause", "resume"])
    queue_cmd.add_argument("name", help="the queue's name")
    enqueue = command("enqueue", "enqueue a task")
    enqueue.add_argument("name")
    enqueue.add_argument("--args", default="{}", help="JSON object of arguments")
    enqueue.add_argument("--delay", type=float, help="seconds to wait before it may run")
    enqueue.add_argument("--priority", type=int)
    enqueue.add_argument("--queue")
    enqueue.add_argument("--unique-key")
    enqueue.add_argument("--max-attempts", type=int)
    enqueue.add_argument("--timeout", type=float)
    enqueue.add_argument("--wait", type=float, metavar="S",
                         help="wait up to S seconds and print the result (exit 4 on timeout)")
    status = command("status", "queue counts, workers, last failures")
    status.add_argument("--json", action="store_true")
    command("migrate", "apply database migrations and exit")
    for extra in plugins.commands():
        extra.arguments(command(extra.name, extra.help))
    backup = command("backup", "consistent online copy of the SQLite database")
    backup.add_argument("path")
    return parser


def console_main() -> int:
    """The ``hopper`` console script: the same CLI as ``python run.py``."""
    return main(sys.argv[1:])


def _fail(message: str | BaseException, code: int) -> int:
    print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def _start_fork_server_early(argv: list[str]) -> None:
    """For ``serve`` and ``worker``: start the fork server before the full parse
    (which loads the plugins) and before the daemon's imports, so that it imports
    the worker code on the other core meanwhile. It reads the settings itself
    (``hopper.worker.preload``), so ``--config`` is passed on first."""
    if {"-h", "--help"} & set(argv):
        return
    early = _EarlyParser(add_help=False, allow_abbrev=False)
    _global_options(early, suppress=False)
    early.add_argument("command", nargs="?")
    try:
        known, _ = early.parse_known_args(argv)
    except _NotADaemon:
        return  # the full parse reports what is wrong, in the words of the command
    if known.command not in (None, "serve", "worker"):
        return
    if known.config:
        os.environ["HOPPER_CONFIG"] = str(Path(known.config).resolve())
    # The workers are forked from the fork server: they inherit its environment.
    logs.export(known.log_format, known.log_level)
    from hopper.worker.context import start_early

    start_early()


def main(argv: list[str]) -> int:
    """Run one command; return its exit code (never a traceback for a usage,
    settings, database or timeout error)."""
    _start_fork_server_early(argv)
    args = _parser().parse_args(argv)
    if args.config:
        os.environ["HOPPER_CONFIG"] = str(Path(args.config).resolve())
    logs.export(args.log_format, args.log_level)  # the web server and workers log alike
    command = args.command or "serve"
    if command in ("serve", "worker"):
        queues = None
        if getattr(args, "queues", None) is not None:
            try:
                queues = parse_queue_list(args.queues)
            except ValueError as exc:
                return _fail(exc, EXIT_USAGE)
        from hopper.app.daemon import serve

        return serve(args.config, web=command == "serve", queues=queues)
    logs.configure()
    try:
        settings = settings_mod.load(args.config)
    except settings_mod.SettingsError as exc:
        return _fail(exc, EXIT_USAGE)
    if command in READ_ONLY and not _database_exists(settings):
        return _fail(f"no database at {settings_mod.sqlite_path(settings.database)} "
                     f"(settings: {settings.path}); check --config, or start the daemon "
                     "or run `migrate` to create it", EXIT_DATABASE)
    handler = {"enqueue": _enqueue, "status": _status, "migrate": _migrate,
               "backup": _backup, "queue": _queue,
               **{c.name: c.run for c in plugins.commands()}}[command]
    from hopper.app import queue

    try:
        client = queue.configure(settings, migrate=command != "migrate",
                                 modules=plugins.task_modules())
        return handler(args, client)
    except registry.TaskModuleError as exc:
        return _fail(exc, EXIT_USAGE)
    except TimeoutError as exc:
        return _fail(exc, EXIT_TIMEOUT)
    except database_errors() as exc:
        return _fail(f"database {settings.database} unavailable: {exc}", EXIT_DATABASE)
    except ValueError as exc:
        return _fail(exc, EXIT_USAGE)
    except BrokenPipeError:  # e.g. `status --json | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _database_exists(settings: settings_mod.Settings) -> bool:
    """False for a SQLite file that is not there (a server database is asked instead)."""
    if not settings.database.startswith("sqlite:///"):
        return True
    return settings_mod.sqlite_path(settings.database).is_file()


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
    task = queue.wait(task_id, timeout=args.wait)  # TimeoutError: exit 4, one line
    print(json.dumps(task, indent=2, default=str))
    return EXIT_OK if task["status"] == "succeeded" else EXIT_TASK_FAILED


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


def _queue(args, client) -> int:
    from hopper.app import queue

    changed = queue.pause_queue(args.name) if args.action == "pause" else queue.resume_queue(
        args.name)
    state = "paused" if args.action == "pause" else "resumed"
    print(f"queue {args.name} {state}" if changed else f"queue {args.name} was already {state}")
    return 0


def _migrate(args, client) -> int:
    applied = client.backend.migrate()  # the client applied them on connect; this reports
    print("database is up to date" if not applied else "applied: " + ", ".join(applied))
    return 0


def _backup(args, client) -> int:
    if not hasattr(client.backend, "backup"):
        raise ValueError("backup copies a SQLite database; use pg_dump for PostgreSQL")
    target = Path(args.path).resolve()
    client.backend.backup(target)
    print(f"backed up {client.settings.database} to {target}")
    return 0
