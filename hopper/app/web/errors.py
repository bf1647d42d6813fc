"""The API's error shape: ``{"error": "...", "detail": ...}`` with a 4xx status.

Every failure a client can cause becomes one of these; an unexpected failure
becomes a bare 500 with no stack trace (the trace goes to the log only).
"""
from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from hopper.app.backends import connection_lost
from hopper.app.backends.base import QueueUnavailable

log = logging.getLogger("hopper.web")


class ApiError(Exception):
    """Raised by a view to answer with the JSON error shape."""

    def __init__(self, status: int, error: str, detail: Any = None):
        super().__init__(error)
        self.status, self.error, self.detail = status, error, detail


def bad_request(error: str, detail: Any = None) -> ApiError:
    """A 400 for input the client must fix."""
    return ApiError(400, error, detail)


def not_found(error: str, detail: Any = None) -> ApiError:
    """A 404 for an unknown id."""
    return ApiError(404, error, detail)


def conflict(error: str, detail: Any = None) -> ApiError:
    """A 409 for a change the resource's state does not allow."""
    return ApiError(409, error, detail)


def error_response(status: int, error: str, detail: Any = None):
    """The JSON error body with its status."""
    return jsonify(error=error, detail=detail), status


def _wants_json() -> bool:
    # UI pages keep Werkzeug's HTML error pages; everything machine-facing gets JSON.
    path = request.path
    return path.startswith("/api/") or path in ("/api", "/metrics", "/healthz")


def _unavailable(detail: str):
    """The 503 of a database that cannot be reached: the UI's page or the API's JSON."""
    if not _wants_json():
        return render_template("unavailable.html", database_away=True), 503
    return error_response(503, "database unavailable", detail)


def register(app: Flask) -> None:
    """Install the handlers that turn exceptions into the JSON error shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.status, exc.error, exc.detail)

    @app.errorhandler(QueueUnavailable)
    def _database_down(exc: QueueUnavailable):
        log.warning("database unavailable on %s %s: %s", request.method, request.path, exc)
        return _unavailable(str(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not _wants_json():
            return exc
        messages = {413: "request body too large", 405: "method not allowed",
                    404: "not found"}
        response = error_response(exc.code or 500, messages.get(exc.code or 500, exc.name),
                                  exc.description)
        allowed = getattr(exc, "valid_methods", None)  # only MethodNotAllowed has them
        if exc.code == 405 and allowed:
            response[0].headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if connection_lost(exc):  # a read or change the view did not wrap: still a 503
            log.warning("database unavailable on %s %s: %s: %s", request.method,
                        request.path, type(exc).__name__, " ".join(str(exc).split()))
            return _unavailable(type(exc).__name__)
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal server error", None)
