#!/usr/bin/env python3
"""Hopper's one entrypoint. ``python run.py`` starts the daemon; see ``--help``."""
from __future__ import annotations

import sys

from hopper.app.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
