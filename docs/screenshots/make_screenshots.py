"""Regenerate the library screenshots in this folder.

Runs the screenshot test (tests/browser/test_library_screenshots.py) against a
real daemon with a demo library, writing one PNG per page, width and colour
scheme here. Needs /usr/bin/chromium and the test extras installed:

    .venv/bin/python docs/screenshots/make_screenshots.py
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


def main() -> int:
    env = {**os.environ, "HOPPER_SCREENSHOTS": str(HERE), "CI": "1"}  # CI: fail, never skip
    return subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            "tests/browser/test_library_screenshots.py"], cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(main())
