"""Replaying a Dockerfile's recipe on this machine, without a container engine.

Each stage's file system is a folder; the base image's Python (``python:3.11``) is a
fresh virtual environment whose commands come first on PATH. COPY, RUN, ENV, WORKDIR,
USER, VOLUME, HEALTHCHECK, STOPSIGNAL and CMD are carried out or recorded as Docker
would, with absolute image paths (``/srv/hopper``, ``/wheels`` …) mapped into the
stage's folder. Account changes (``groupadd``, ``useradd``) are never made on this
machine; the image's numeric USER is used as is, and ``chown`` only runs when the
replay runs as root. Commands run as the image's user through ``setpriv`` when the
replay runs as root.
"""
from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_DIRS = {"usr", "bin", "sbin", "lib", "lib64", "etc", "dev", "proc", "sys", "tmp", "var",
               "opt", "root", "run"}
ACCOUNT_COMMANDS = {"groupadd", "useradd", "adduser", "addgroup"}
_ABSOLUTE = re.compile(r"(?<![\w/.:-])/[\w.*-]+(?:/[\w.*-]*)*")


@dataclass
class Instruction:
    keyword: str
    value: str


def parse(text: str) -> list[Instruction]:
    """Instructions in order: continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical, pending = pending + stripped, ""
        keyword, _, value = logical.partition(" ")
        out.append(Instruction(keyword.upper(), value.strip()))
    if pending:
        raise ValueError("the Dockerfile ends inside a continued line")
    return out


@dataclass
class Stage:
    name: str | None
    root: Path
    python: Path                    # the base image's Python: a virtual environment
    workdir: str = "/"
    env: dict = field(default_factory=dict)
    user: tuple[int, int] | None = None
    cmd: list[str] | None = None
    healthcheck: list[str] | None = None
    healthcheck_options: dict = field(default_factory=dict)
    volumes: list[str] = field(default_factory=list)
    stopsignal: str = "SIGTERM"

    def host(self, path: str) -> Path:
        """Where an image path lives on this machine."""
        absolute = path if path.startswith("/") else f"{self.workdir.rstrip('/')}/{path}"
        return self.root / absolute.lstrip("/")

    def base_env(self) -> dict:
        """The environment a container of this image starts with (as Docker sets it)."""
        return {"PATH": f"{self.python / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "HOME": str(self.host(self.workdir)), "LANG": "C.UTF-8", **self.env}

    def as_user(self, argv: list[str]) -> list[str]:
        """``argv`` run as the image's USER (only possible, and only needed, as root)."""
        if self.user is None or os.geteuid() != 0:
            return argv
        uid, gid = self.user
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *argv]


class Replay:
    """Carries out a Dockerfile in ``workspace``; ``image`` is the last stage."""

    def __init__(self, dockerfile: Path, context: Path, workspace: Path):
        self.context, self.workspace = context, workspace
        self.ignore = _dockerignore(context / ".dockerignore")
        self.stages: list[Stage] = []
        for instruction in parse(dockerfile.read_text()):
            handler = getattr(self, "do_" + instruction.keyword.lower(), None)
            if handler is None:
                raise NotImplementedError(f"the replay does not know {instruction.keyword}")
            handler(instruction.value)

    @property
    def image(self) -> Stage:
        return self.stages[-1]

    # -- instructions --------------------------------------------------------
    def do_from(self, value: str) -> None:
        words = value.split()
        if not words[0].startswith("python:3.11"):
            raise NotImplementedError(f"only python:3.11 images are replayed, not {words[0]}")
        index = len(self.stages)
        name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
        python = self.workspace / f"stage-{index}-python"
        subprocess.run([base_interpreter(), "-m", "venv", str(python)], check=True,
                       env=_without_test_settings())
        root = self.workspace / f"stage-{index}"
        root.mkdir()
        self.stages.append(Stage(name, root, python))

    def do_workdir(self, value: str) -> None:
        stage = self.image
        stage.workdir = value if value.startswith("/") else f"{stage.workdir.rstrip('/')}/{value}"
        stage.host(stage.workdir).mkdir(parents=True, exist_ok=True)

    def do_env(self, value: str) -> None:
        words = shlex.split(value)
        if len(words) >= 2 and "=" not in words[0]:
            self.image.env[words[0]] = " ".join(words[1:])  # the legacy ENV KEY value form
            return
        for word in words:
            key, _, val = word.partition("=")
            self.image.env[key] = val

    def do_copy(self, value: str) -> None:
        words = shlex.split(value)
        flags = {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if w.startswith("--")}
        paths = [w for w in words if not w.startswith("--")]
        sources, dest = paths[:-1], paths[-1]
        stage = self.image
        target = stage.host(dest)
        into_folder = dest.endswith("/") or len(sources) > 1
        for source in sources:
            if "--from" in flags:
                origin = next(s for s in self.stages if s.name == flags["--from"]).host(source)
            else:
                origin = self.context / source
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True, ignore=self.ignore)
                copied = target
            else:
                copied = target / origin.name if into_folder or target.is_dir() else target
                copied.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, copied)
            if "--chown" in flags:
                _chown(flags["--chown"], copied)

    def do_run(self, value: str) -> None:
        stage = self.image
        for command in re.split(r"\s*&&\s*", value):
            words = shlex.split(command)
            if words[0] in ACCOUNT_COMMANDS:
                continue  # never change this machine's accounts; USER is numeric
            if words[0] == "chown":
                if os.geteuid() == 0:
                    _chown(words[1], *(stage.host(w) for w in words[2:]))
                continue
            mapped = _ABSOLUTE.sub(lambda m: self._map(stage, m.group(0)), command)
            # The machine's pip settings (index mirror, proxy) pass through, like build args.
            pip = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
            subprocess.run(["bash", "-c", f"set -euo pipefail; {mapped}"], check=True,
                           cwd=stage.host(stage.workdir), env={**pip, **stage.base_env()})

    def do_user(self, value: str) -> None:
        user, _, group = value.partition(":")
        if not user.isdigit() or (group and not group.isdigit()):
            raise ValueError(f"USER {value}: the replay needs a numeric uid[:gid]")
        self.image.user = (int(user), int(group or user))

    def do_volume(self, value: str) -> None:
        paths = json.loads(value) if value.startswith("[") else value.split()
        for path in paths:
            self.image.volumes.append(path)
            self.image.host(path).mkdir(parents=True, exist_ok=True)

    def do_healthcheck(self, value: str) -> None:
        options, _, command = value.partition(" CMD ")
        self.image.healthcheck = json.loads(command)
        self.image.healthcheck_options = dict(o.lstrip("-").split("=", 1) for o in options.split())

    def do_cmd(self, value: str) -> None:
        self.image.cmd = json.loads(value)

    def do_stopsignal(self, value: str) -> None:
        self.image.stopsignal = value

    def do_expose(self, value: str) -> None:
        """Ports are the network's business: nothing to replay."""

    @staticmethod
    def _map(stage: Stage, path: str) -> str:
        first = path.lstrip("/").split("/", 1)[0]
        return path if first in SYSTEM_DIRS else str(stage.host(path))


def base_interpreter() -> str:
    """A Python 3.11 every user may run, like the image's /usr/local/bin/python (the
    test's own may live under a private home folder)."""
    for candidate in (getattr(sys, "_base_executable", sys.executable),
                      shutil.which("python3.11"), "/usr/local/bin/python3.11",
                      "/usr/bin/python3.11"):
        if candidate and os.path.exists(candidate) and _open_to_all(Path(candidate).resolve()):
            return candidate
    raise RuntimeError("no Python 3.11 that every user may run was found")


def _open_to_all(executable: Path) -> bool:
    """The interpreter and its standard library can be reached by any user."""
    stdlib = executable.parent.parent / "lib" / "python3.11"
    for path in (executable, stdlib):
        for folder in [*reversed(path.parents), path]:
            mode = folder.stat().st_mode if folder.exists() else 0
            if folder.is_dir() and not mode & 0o001:
                return False
    return executable.stat().st_mode & 0o005 == 0o005


def _chown(owner: str, *paths: Path) -> None:
    uid, _, gid = owner.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        raise ValueError(f"chown {owner}: the replay needs numeric ids")
    if os.geteuid() != 0:
        return  # an unprivileged replay owns everything it made already
    for path in paths:
        for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
            os.chown(item, int(uid), int(gid or uid), follow_symlinks=False)


def _dockerignore(path: Path):
    """A copytree ``ignore`` callable for the ``**/`` name patterns of .dockerignore."""
    patterns = [line.strip()[3:] for line in path.read_text().splitlines()
                if line.strip().startswith("**/")] if path.exists() else []

    def ignore(_folder, names):
        return {n for n in names if any(fnmatch.fnmatch(n, p) for p in patterns)}

    return ignore


def _without_test_settings() -> dict:
    return {k: v for k, v in os.environ.items()
            if not k.startswith("HOPPER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
