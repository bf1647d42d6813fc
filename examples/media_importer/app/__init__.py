"""A small media importer: a Flask app whose imports run as Hopper tasks.

``create_app`` is built by the web server and, once per worker process, by
Hopper (``tasks.flask_app: "app:create_app"`` in hopper.yaml), so the tasks in
``app.tasks`` use the same ``db.session`` and config as the views.
"""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from flask import Flask

from app.models import db

ROOT = Path(__file__).resolve().parent.parent


def create_app() -> Flask:
    """The app factory (settings from the environment, with local defaults)."""
    app = Flask(__name__, instance_path=str(ROOT / "instance"))
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "MEDIA_DATABASE_URL", f"sqlite:///{Path(app.instance_path) / 'media.db'}"),
        # Where imported files are copied to, one folder per user.
        MEDIA_ROOT=os.environ.get("MEDIA_ROOT", str(Path(app.instance_path) / "media")),
        # The settings file ``from hopper import enqueue`` uses inside this app.
        HOPPER_CONFIG=os.environ.get("HOPPER_CONFIG", str(ROOT / "hopper.yaml")),
        # Where the browser reaches Hopper (artifact downloads).
        HOPPER_URL=os.environ.get("HOPPER_URL", "http://127.0.0.1:8000"),
    )
    db.init_app(app)
    _create_tables(app)
    from app.cli import import_command
    from app.views import bp

    app.register_blueprint(bp)
    app.cli.add_command(import_command)
    return app


def _create_tables(app: Flask) -> None:
    # The web server and every Hopper worker build this app at the same moment:
    # one at a time, or two of them may both try to create a table.
    with open(Path(app.instance_path) / ".create-tables.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with app.app_context():
            db.create_all()
