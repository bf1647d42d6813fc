#!/usr/bin/env python3
"""Hopper's one entrypoint. ``python run.py`` starts the daemon; see ``--help``.

In the source checkout the settings file is this folder's ``settings.yaml``
unless ``--config`` or ``HOPPER_CONFIG`` names another; the installed ``hopper``
command looks in the current folder instead.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # Imported here, not above: worker processes import this file as their main
    # module, and they need none of the command line.
    from hopper.app.cli import main

    os.environ.setdefault("HOPPER_CONFIG", str(Path(__file__).resolve().parent / "settings.yaml"))
    sys.exit(main(sys.argv[1:]))
