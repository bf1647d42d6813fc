"""Bearer-token auth for the API and /metrics, a session login for the UI,
and CSRF tokens for anything a browser can send with its cookie.

With ``auth.token`` unset everything is open (the settings refuse that unless
the server binds to loopback). With it set, ``/api/*`` and ``/metrics`` need
``Authorization: Bearer <token>`` or a UI session; a request authenticated by
the session cookie alone must also carry the CSRF token when it changes state,
since a browser attaches cookies to cross-site requests too.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, redirect, request, session, url_for

from hopper.app.web.errors import error_response
from hopper.app.web.throttle import LoginThrottle

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
OPEN_PATHS = ("/healthz", "/login", "/logout")
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def _token() -> str | None:
    return current_app.extensions["hopper"].settings.token


def _fingerprint(token: str) -> str:
    # Stored in the session instead of a plain flag, so changing the token
    # (and restarting) logs every browser out.
    return hashlib.sha256(b"hopper-session:" + token.encode()).hexdigest()


def token_matches(candidate: str | None) -> bool:
    """Constant-time comparison with the configured token."""
    token = _token()
    if not token or candidate is None:
        return False
    return hmac.compare_digest(candidate.encode("utf-8", "surrogatepass"), token.encode())


def throttle() -> LoginThrottle:
    """This web server's wrong-token throttle."""
    return current_app.extensions["hopper_throttle"]


def client_address() -> str:
    """The address wrong tokens are counted against."""
    return request.remote_addr or "unknown"


def too_many_attempts(retry_after: int):
    """429 with Retry-After for a client locked out after wrong tokens."""
    body, status = error_response(429, "too many wrong tokens",
                                  f"try again in {retry_after} s")
    body.headers["Retry-After"] = str(retry_after)
    return body, status


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def logged_in() -> bool:
    """True when auth is off or this browser session logged in with the token."""
    token = _token()
    if not token:
        return True
    return hmac.compare_digest(str(session.get("auth", "")), _fingerprint(token))


def log_in() -> None:
    """Mark this session as authenticated (after the token was checked)."""
    session.clear()
    token = _token()
    if token is None:
        raise RuntimeError("log_in() needs auth.token set")  # callers check the token first
    session["auth"] = _fingerprint(token)
    session["csrf"] = secrets.token_urlsafe(32)


def csrf_token() -> str:
    """This session's CSRF token, created on first use."""
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def csrf_ok(candidate: str | None) -> bool:
    """Whether ``candidate`` is this session's CSRF token."""
    expected = session.get("csrf")
    if not expected or not candidate:
        return False
    return hmac.compare_digest(candidate.encode("utf-8", "surrogatepass"), expected.encode())


def require_csrf_form() -> None:
    """Abort with 400 unless the submitted form carries the session's CSRF token."""
    if not csrf_ok(request.form.get(CSRF_FIELD)):
        abort(400, "missing or wrong CSRF token; reload the page and try again")


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not target or urlsplit(target).netloc or urlsplit(target).scheme \
            or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _check_request():
    path = request.path
    if path in OPEN_PATHS or path.startswith("/static/") or not _token():
        return None
    machine = path.startswith("/api/") or path == "/api" or path == "/metrics"
    if machine:
        bearer = _bearer()
        if bearer is not None:
            return _check_bearer(bearer)
        if logged_in():
            if request.method in SAFE_METHODS or csrf_ok(request.headers.get(CSRF_HEADER)):
                return None
            return _unauthorized("a session request that changes state needs the "
                                 f"{CSRF_HEADER} header")
        return _unauthorized("send Authorization: Bearer <token>")
    if not logged_in():
        return redirect(url_for("ui.login", next=request.full_path.rstrip("?")))
    return None


def _check_bearer(bearer: str):
    client = client_address()
    wait = throttle().retry_after(client)
    if wait:
        return too_many_attempts(wait)
    if token_matches(bearer):
        throttle().succeeded(client)
        return None
    throttle().failed(client)
    return _unauthorized("wrong token")


def _unauthorized(detail: str):
    body, status = error_response(401, "unauthorized", detail)
    body.headers["WWW-Authenticate"] = 'Bearer realm="hopper"'
    return body, status


def session_secret(data_dir: Path) -> bytes:
    """A random key kept in the data folder, shared by every Gunicorn process and
    surviving restarts, so sessions and CSRF tokens stay valid."""
    path = Path(data_dir) / ".session-key"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Write a complete key under a temporary name, then link it into place:
        # a concurrent starter either wins the link or reads the winner's key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".session-key.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(64))
                f.flush()
                os.fsync(f.fileno())
            os.link(tmp, path)
        except FileExistsError:
            pass  # another process created it first; use theirs
        finally:
            os.unlink(tmp)
    key = path.read_bytes()
    if len(key) < 32:
        raise RuntimeError(f"{path} is damaged (shorter than 32 bytes); delete it")
    return key


def register(app: Flask) -> None:
    """Check every request before its view runs."""
    app.extensions["hopper_throttle"] = LoginThrottle()
    app.before_request(_check_request)
