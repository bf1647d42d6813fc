"""The Limits page: concurrency keys and rate limits shared by every daemon, and
the form that sets or removes a rate."""
from __future__ import annotations

import logging
import time

from flask import current_app, flash, redirect, render_template, request, url_for

from hopper.app import flow
from hopper.app.web import auth

log = logging.getLogger("hopper.web")


def _backend():
    return current_app.extensions["hopper"].backend


def limits_page():
    """Per key: running / limit and queued; per rate key: claims in the last period."""
    limits = _backend().limits()
    return render_template("limits.html", keys=limits["concurrency"], rates=limits["rates"],
                           now=time.time())


def rate_form():
    """Set (``rate``) or remove (``remove``) a rate limit from the Limits page."""
    auth.require_csrf_form()
    key = (request.form.get("key") or "").strip()
    try:
        flow.check_key(key, "the rate key")
        if request.form.get("remove"):
            _backend().set_rate_limit(key, None)
            flash(f"rate limit {key} removed")
        else:
            rate = flow.parse_rate(request.form.get("rate", ""))
            _backend().set_rate_limit(key, rate)
            flash(f"rate limit {key} is now {rate}")
            log.info("rate limit %s set to %s from the Limits page", key, rate)
    except ValueError as exc:
        flash(f"not changed: {exc}")
    return redirect(url_for("ui.limits"))
