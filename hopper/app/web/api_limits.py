"""``/api/limits`` and ``/api/rate-limits/<key>``: flow control shared by every daemon."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify

from hopper.app import flow
from hopper.app.web import inputs
from hopper.app.web.errors import bad_request

bp = Blueprint("api_limits", __name__)
log = logging.getLogger("hopper.web")


def _backend():
    return current_app.extensions["hopper"].backend


@bp.get("/api/limits")
def limits():
    """Concurrency keys with tasks queued or running, and every rate limit."""
    return jsonify(_backend().limits())


@bp.put("/api/rate-limits/<path:key>")
def put_rate_limit(key: str):
    """Set a key's rate for every daemon (``{rate: "10/s"}``); ``{rate: null}`` removes it."""
    try:
        flow.check_key(key, "the rate key")
    except ValueError as exc:
        raise bad_request("invalid rate key", str(exc)) from None
    inputs.check_text(key, "key")
    body = inputs.json_body()
    if not isinstance(body, dict) or set(body) != {"rate"}:
        raise bad_request("invalid body", 'send {"rate": "N/s|m|h"} or {"rate": null}')
    if body["rate"] is None:
        removed = _backend().set_rate_limit(key, None)
        log.info("rate limit %s removed", key)
        return jsonify(key=key, rate=None, changed=removed)
    try:
        rate = flow.parse_rate(body["rate"])
    except ValueError as exc:
        raise bad_request("invalid rate", str(exc)) from None
    _backend().set_rate_limit(key, rate)
    log.info("rate limit %s set to %s", key, rate)
    return jsonify(key=key, rate=str(rate), changed=True)
