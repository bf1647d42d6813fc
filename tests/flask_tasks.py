"""A small Flask app with Flask-SQLAlchemy and tasks that look into its session
(loaded with ``tasks.modules: [sample_tasks, flask_tasks]``).

The app's database and a file that records every app build come from the
environment the test gives the daemon: ``FLASK_TASKS_DB``, ``FLASK_TASKS_BUILDS``.
"""
from __future__ import annotations

import os

from flask import Flask, current_app
from flask_sqlalchemy import SQLAlchemy

from hopper.app.queue import task

db = SQLAlchemy()


class Note(db.Model):
    __tablename__ = "notes"
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(100), nullable=False)


def _record_build(kind: str) -> None:
    with open(os.environ["FLASK_TASKS_BUILDS"], "a") as f:
        f.write(f"{kind} {os.getpid()}\n")


def create_app() -> Flask:
    """The factory ``tasks.flask_app: "flask_tasks:create_app"`` names."""
    _record_build("factory")
    app = Flask("flask_tasks")
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["FLASK_TASKS_DB"]
    app.config["GREETING"] = "from the factory"
    db.init_app(app)
    return app


def broken_factory() -> Flask:
    """A factory that fails the way a misconfigured app does."""
    _record_build("broken")
    raise RuntimeError("SQLALCHEMY_DATABASE_URI is not set")


def not_an_app():
    """A factory that returns something else than a Flask app."""
    _record_build("not-an-app")
    return {"not": "an app"}


app = Flask("flask_tasks_module_level")   # ``tasks.flask_app: "flask_tasks:app"``
app.config["GREETING"] = "from the module-level app"


@task(name="flask.whoami")
def whoami() -> dict:
    """Which app this task runs in, in which process."""
    return {"app": current_app.name, "greeting": current_app.config["GREETING"],
            "pid": os.getpid()}


@task(name="flask.add_uncommitted")
def add_uncommitted(text: str) -> dict:
    """Add a Note to the session and return without committing."""
    db.create_all()
    db.session.add(Note(text=text))
    return {"pending": sorted(n.text for n in db.session.new), "pid": os.getpid()}


@task(name="flask.session_state")
def session_state() -> dict:
    """What the session holds when a task starts, and what the table holds."""
    return {"pending": sorted(n.text for n in db.session.new),
            "stored": db.session.scalar(db.select(db.func.count()).select_from(Note)),
            "pid": os.getpid()}
