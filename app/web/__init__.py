"""The Flask web UI and REST API, served by Gunicorn."""
from __future__ import annotations

from flask import Flask, jsonify


def create_app() -> Flask:
    """The Flask app factory (Gunicorn loads ``app.web:create_app()``)."""
    from app import queue

    app = Flask(__name__)
    client = queue.client()

    @app.get("/healthz")
    def healthz():
        client.backend.ping()
        return jsonify(status="ok")

    return app
