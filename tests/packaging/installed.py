"""Helpers for tests of the installed package: a wheel, a fresh virtual environment,
commands run from folders outside the source checkout."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# What a build needs: the project metadata and the package sources (as the Dockerfile copies).
PACKAGE_SOURCES = ("pyproject.toml", "README.md", "hopper")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")


def copy_sources(target: Path) -> Path:
    """A copy of the package sources in ``target``, so builds never write into the checkout."""
    target.mkdir(parents=True, exist_ok=True)
    for name in PACKAGE_SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=IGNORED)
        else:
            shutil.copy2(source, target / name)
    return target


def clean_env(venv: Path | None = None, **extra: str) -> dict:
    """The environment of a user's shell: nothing that points at the checkout or a test's
    settings file, the virtual environment's commands first on PATH."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("HOPPER_") and k not in ("PYTHONPATH", "VIRTUAL_ENV",
                                                        "PYTHONHOME", "PYTHONSTARTUP")}
    if venv is not None:
        env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(venv)
    env.update(extra)
    return env


def run(command: list, cwd: Path, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run a command to completion; fail with its output when it fails."""
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"{command} exited {result.returncode}\n"
                             f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def build_wheel(workdir: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the sources: the one ``hopper-*.whl``."""
    sources = copy_sources(workdir / "src")
    out = workdir / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", out, sources],
        cwd=workdir, env=clean_env())
    (wheel,) = out.glob("hopper-*.whl")
    return wheel


def make_venv(path: Path) -> Path:
    """A new, empty virtual environment at ``path`` (no access to the test's packages)."""
    run([sys.executable, "-m", "venv", path], cwd=path.parent, env=clean_env())
    return path


def http_get(url: str, timeout: float = 5) -> tuple[int, object]:
    """(status, parsed JSON body or text); status 0 while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, _body(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, None


def http_post(url: str, timeout: float = 10) -> tuple[int, object]:
    return _send("POST", url, {}, timeout)


def http_patch(url: str, body: dict, timeout: float = 10) -> tuple[int, object]:
    return _send("PATCH", url, body, timeout)


def _send(method: str, url: str, body: dict, timeout: float) -> tuple[int, object]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, _body(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, _body(exc.read())


def _body(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
