"""Hosts simulated on one machine: network namespaces joined by a bridge, each with
its own address and host name, and a PostgreSQL server of the test's own.

::

    root namespace: bridge b<id> (10.X.Y.254, the test process reaches everything)
       ├─ veth ── namespace <id>-db  (10.X.Y.1)  postgres (initdb + pg_ctl, as user postgres)
       ├─ veth ── namespace <id>-h1  (10.X.Y.11) run.py worker/serve, host name h1
       └─ veth ── namespace <id>-h2  (10.X.Y.12) ...

A partition is the host's end of its link set down; a lost host is every process
in its namespace killed. Everything is torn down by :meth:`Lab.close`.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_USER = "postgres"
PG_PORT = 5432


def sh(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Run a command, capturing its output; a failure names the command and what it said."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done


def unavailable_reason() -> str | None:
    """Why hosts cannot be simulated here (None when they can)."""
    if os.geteuid() != 0:
        return "simulated hosts need root (network namespaces)"
    if not (PG_BIN / "initdb").exists():
        return f"no PostgreSQL server binaries in {PG_BIN}"
    if shutil.which("ip") is None or shutil.which("unshare") is None:
        return "the ip and unshare commands are needed"
    probe = f"hp{os.getpid() % 100000}"
    done = sh("ip", "netns", "add", probe, check=False)
    if done.returncode != 0:
        return f"network namespaces are not permitted: {done.stderr.strip()}"
    sh("ip", "netns", "del", probe, check=False)
    try:
        import pwd

        pwd.getpwnam(PG_USER)
    except KeyError:
        return f"no {PG_USER} OS user to run the PostgreSQL server"
    return None


def _free_subnet() -> str:
    """A 10.X.Y prefix no route of this machine uses yet."""
    routes = sh("ip", "-4", "route").stdout
    while True:
        prefix = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
        if f"{prefix}." not in routes:
            return prefix


class Host:
    """One simulated machine: a namespace, an address, a host name and its daemons."""

    def __init__(self, lab: "Lab", name: str, index: int):
        self.lab, self.name = lab, name
        self.ns = f"{lab.id}-{name}"
        self.address = f"{lab.prefix}.{index}"
        self.link = f"v{lab.id}{name}"        # the host's end, inside its namespace
        self.peer = f"p{lab.id}{name}"        # the bridge's end
        self.processes: list[subprocess.Popen] = []
        self.folder = lab.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        sh("ip", "netns", "add", self.ns)
        lab.namespaces.append(self.ns)
        sh("ip", "link", "add", self.link, "type", "veth", "peer", "name", self.peer)
        lab.links.append(self.peer)
        sh("ip", "link", "set", self.link, "netns", self.ns)
        sh("ip", "link", "set", self.peer, "master", lab.bridge, "up")
        self.ip("addr", "add", f"{self.address}/24", "dev", self.link)
        self.ip("link", "set", self.link, "up")
        self.ip("link", "set", "lo", "up")

    def ip(self, *args: str) -> None:
        sh("ip", "-n", self.ns, *args)

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside this host: its namespace and its own host name."""
        inner = f"hostname {self.name} && exec \"$@\""
        return ["ip", "netns", "exec", self.ns, "unshare", "--uts", "sh", "-c", inner, "sh",
                *argv]

    def spawn(self, argv: list[str], log_name: str, env: dict | None = None,
              user: str | None = None) -> subprocess.Popen:
        """Start a process on this host; its output goes to ``log_name`` in its folder."""
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        log = open(self.folder / log_name, "ab")
        process = subprocess.Popen(self.command(argv), stdout=log, stderr=subprocess.STDOUT,
                                   env=env, cwd=REPO, start_new_session=True)
        self.processes.append(process)
        return process

    # -- faults ----------------------------------------------------------------
    def cut(self) -> None:
        """A network partition: this host's link goes down."""
        self.ip("link", "set", self.link, "down")

    def heal(self) -> None:
        self.ip("link", "set", self.link, "up")

    def pids(self) -> list[int]:
        done = sh("ip", "netns", "pids", self.ns, check=False)
        return [int(p) for p in done.stdout.split()]

    def kill_all(self) -> None:
        """The host is lost: every process on it dies at once."""
        for _ in range(5):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)


class Daemon:
    """``run.py worker`` or ``serve`` on a simulated host."""

    def __init__(self, host: Host, settings: Path, command: str = "worker",
                 extra: tuple[str, ...] = (), env: dict | None = None):
        self.host, self.settings, self.command = host, settings, command
        self.log_path = host.folder / f"{command}.log"
        env = dict(env or {})
        path = [env.pop("PYTHONPATH", ""), str(REPO / "tests"), str(Path(__file__).parent),
                os.environ.get("PYTHONPATH", "")]
        full_env = {**os.environ, "HOPPER_CONFIG": str(settings),
                    "PYTHONPATH": os.pathsep.join(p for p in path if p), **env}
        self.process = host.spawn([sys.executable, str(REPO / "run.py"), "--config",
                                   str(settings), command, *extra], f"{command}.log", full_env)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (killed after ``timeout``: then -9)."""
        # The process is ``ip netns exec`` → sh → python, all exec'd: one pid.
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            return -9


class Lab:
    """A bridge, a PostgreSQL host and application hosts; :meth:`close` removes all."""

    def __init__(self):
        self.id = f"{random.randint(0, 0xffff):04x}"
        self.prefix = _free_subnet()
        self.bridge = f"b{self.id}"
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.hosts: list[Host] = []
        self.folder = Path(tempfile.mkdtemp(prefix=f"hopper-lab-{self.id}-"))
        os.chmod(self.folder, 0o755)
        self.pg_data: Path | None = None
        self.db_host: Host | None = None
        try:
            sh("ip", "link", "add", self.bridge, "type", "bridge")
            self.links.append(self.bridge)
            sh("ip", "addr", "add", f"{self.prefix}.254/24", "dev", self.bridge)
            sh("ip", "link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise

    def add_host(self, name: str) -> Host:
        host = Host(self, name, 11 + len(self.hosts))
        self.hosts.append(host)
        return host

    # -- the database server -------------------------------------------------------
    def start_postgres(self) -> str:
        """initdb and start a server on the database host; its URL (database ``test``)."""
        self.db_host = db = Host(self, "db", 1)
        self.pg_data = self.folder / "pgdata"
        os.chown(self.folder, _uid(PG_USER), -1)
        sh("runuser", "-u", PG_USER, "--", str(PG_BIN / "initdb"), "-D", str(self.pg_data),
           "-A", "trust", "-U", "postgres", "--no-sync")
        with open(self.pg_data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.prefix}.0/24 trust\n")
        with open(self.pg_data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = '{db.address}'\nport = {PG_PORT}\n"
                       f"unix_socket_directories = '{self.folder}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                       "max_connections = 200\nshared_buffers = 64MB\n")
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(self.folder / "postgres.log"))
        admin = f"postgresql://postgres@{db.address}:{PG_PORT}/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=10) as conn:
            conn.execute("CREATE DATABASE test")
        return f"postgresql://postgres@{db.address}:{PG_PORT}/test"

    def pg_ctl(self, *args: str) -> None:
        assert self.db_host is not None and self.pg_data is not None
        sh(*self.db_host.command(["runuser", "-u", PG_USER, "--", str(PG_BIN / "pg_ctl"),
                                  "-D", str(self.pg_data), *args]))

    def restart_postgres(self) -> None:
        """``pg_ctl restart -m fast``: every session is ended, the server comes back."""
        self.pg_ctl("restart", "-m", "fast", "-w", "-t", "60",
                    "-l", str(self.folder / "postgres.log"))

    def stop_postgres(self) -> None:
        """The database goes away (fast shutdown: sessions are ended)."""
        self.pg_ctl("stop", "-m", "fast", "-w", "-t", "60")

    def start_postgres_again(self) -> None:
        self.pg_ctl("start", "-w", "-t", "60", "-l", str(self.folder / "postgres.log"))

    # -- settings ----------------------------------------------------------------
    def settings(self, host: Host, database: str, **overrides) -> Path:
        """A settings file for ``host`` (its own data folder)."""
        raw = {"database": database, "workers": 2, "lease": "4s", "shutdown_grace": "10s",
               "server": {"bind": f"{host.address}:8000", "threads": 8,
                          "allowed_hosts": [host.address]},
               "auth": {"token": "lab-token"},
               "library": {"inbox": "data/inbox", "root": "data/library",
                           "quarantine": "data/quarantine"},
               "tasks": {"modules": ["sample_tasks", "lab_tasks"]}}
        raw.update(overrides)
        path = host.folder / "settings.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        return path

    # -- teardown ----------------------------------------------------------------
    def close(self) -> None:
        """Stop every process, the server, the namespaces and links; always safe to call."""
        for host in self.hosts:
            for process in host.processes:
                if process.poll() is None:
                    try:
                        os.killpg(process.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    process.wait(10)
            host.kill_all()
        if self.pg_data is not None and self.db_host is not None:
            try:
                self.pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
            except RuntimeError:
                pass  # not running (a failed start): the namespace goes below anyway
            self.db_host.kill_all()
        for ns in self.namespaces:
            sh("ip", "netns", "del", ns, check=False)
        for link in self.links:
            sh("ip", "link", "del", link, check=False)
        if os.environ.get("LAB_KEEP_FILES"):  # logs and settings kept to look at
            print(f"lab files kept in {self.folder}")
        else:
            shutil.rmtree(self.folder, ignore_errors=True)


def _uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid
