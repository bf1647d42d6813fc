"""The HTTP benchmark's yardstick: a bare Flask app with one endpoint.

``POST /api/tasks`` parses the JSON body and answers 201 with a small JSON
object, touching no database: what Gunicorn (gthread) and Flask cost per
request on this machine, served with the same Gunicorn settings as Hopper.
"""
from __future__ import annotations

import itertools

from flask import Flask, jsonify, request

_ids = itertools.count(1)


def create_app() -> Flask:
    """The app factory Gunicorn loads (``bare_flask:create_app()``)."""
    app = Flask(__name__)

    @app.post("/api/tasks")
    def create_task():
        body = request.get_json()
        return jsonify(id=next(_ids), name=body["name"], status="queued"), 201

    return app
