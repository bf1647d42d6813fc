"""What keeps other web sites from acting through a user's browser.

Runs before routing and authentication on every request, token or not:

- **Host allowlist** (DNS rebinding): a page on ``evil.example`` whose name
  re-resolves to 127.0.0.1 reaches this server with ``Host: evil.example``;
  only loopback names, the bind address and ``server.allowed_hosts`` are served.
- **State changes only from Hopper's own pages**: a POST, PUT, PATCH or DELETE
  from another origin (``Origin``, ``Sec-Fetch-Site``) is refused, and so is
  one whose body is not JSON. Browsers send ``text/plain``, form and
  body-without-type requests cross-site without asking first (no CORS
  preflight); JSON needs a preflight, which this server never grants. HTML
  forms of the UI are the exception, and must carry the session's CSRF token.
- **Response headers**: a Content-Security-Policy allowing only Hopper's own
  origin, ``nosniff``, no referrer, no framing.
"""
from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from flask import Flask, current_app, request

from hopper.app.web import auth
from hopper.app.web.errors import error_response

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})  # "none": typed in or bookmarked
MACHINE_PREFIXES = ("/api/", "/metrics", "/healthz")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: under it browsers send "Origin: null" with the UI's own forms.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
_SECURITY_ITEMS = tuple(SECURITY_HEADERS.items())
_SECURITY_NAMES = frozenset(name.lower() for name in SECURITY_HEADERS)


def host_name(host_header: str) -> str:
    """The name in a ``Host`` header, without port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(settings) -> frozenset[str]:
    """Loopback names, the bind address (unless it is a wildcard) and ``server.allowed_hosts``."""
    names = set(LOOPBACK_NAMES)
    if settings.bind_host not in ("0.0.0.0", "::", ""):
        names.add(settings.bind_host.lower())
    names.update(host_name(h) for h in settings.allowed_hosts)
    return frozenset(names)


def host_allowed(host_header: str, settings) -> bool:
    """Whether a request's ``Host`` is one this server answers to (``*`` allows any)."""
    if "*" in settings.allowed_hosts:
        return True
    name = host_name(host_header)
    if name in LOOPBACK_NAMES:  # always allowed: no need to build the whole set
        return True
    return name in allowed_hosts(settings) or _is_loopback_ip(name)


def _is_loopback_ip(name: str) -> bool:
    # An address, not a name: "127.0.0.1.nip.io" is a DNS name anyone can point anywhere.
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _refuse(error: str, detail: str):
    return error_response(403, error, detail)


def _cross_origin() -> str | None:
    """Why this request comes from another site, or None when it does not.

    ``Sec-Fetch-Site`` is set by the browser itself (no page can forge it) and so
    decides when present; otherwise ``Origin`` must name this server.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        if fetch_site.lower() in SAME_ORIGIN_FETCH:
            return None
        return f"Sec-Fetch-Site is {fetch_site}"
    origin = request.headers.get("Origin")
    if origin is None:
        return None  # not sent by a browser for this request, or by a script such as curl
    parts = urlsplit(origin)
    if origin == "null" or parts.netloc.lower() != request.host.lower() \
            or parts.scheme not in ("http", "https"):
        return f"Origin {origin} is not this server"
    return None


def _body_refusal() -> str | None:
    """Why this state-changing request's body is refused, or None."""
    mimetype = request.mimetype
    if mimetype == "application/json" or mimetype.endswith("+json"):
        return None
    if not request.headers.get("Content-Type"):
        if request.content_length in (None, 0) and not request.get_data(cache=True):
            return None  # e.g. POST /api/tasks/1/cancel with no body at all
        return "a body needs Content-Type: application/json"
    if mimetype in FORM_TYPES and not request.path.startswith(MACHINE_PREFIXES):
        if auth.csrf_ok(request.form.get(auth.CSRF_FIELD)):
            return None
        return "a form needs the page's CSRF token; reload the page and try again"
    return f"Content-Type {mimetype} is not accepted; send application/json"


def check_request():
    """Refuse a request with 403 before any view sees it (see the module docstring)."""
    settings = current_app.extensions["hopper"].settings
    if not host_allowed(request.host, settings):
        return _refuse("host not allowed",
                       f"{host_name(request.host)!r} is not this server's name; add it to "
                       "server.allowed_hosts to serve it")
    if request.method not in STATE_CHANGING:
        return None
    reason = _cross_origin() or _body_refusal()
    if reason:
        return _refuse("cross-site request refused", reason)
    return None


def add_headers(response):
    """The security headers, on every response (pages, API, errors, static files)."""
    # One pass over the response's headers, then one extend: six setdefault calls
    # scanned the headers six times (a tenth of a single enqueue's time in the
    # web process).
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    if present.isdisjoint(_SECURITY_NAMES):
        headers.extend(_SECURITY_ITEMS)
    else:
        headers.extend([(n, v) for n, v in _SECURITY_ITEMS if n.lower() not in present])
    return response


def register(app: Flask) -> None:
    """Install the checks ahead of authentication, and the headers."""
    app.before_request_funcs.setdefault(None, []).insert(0, check_request)
    app.after_request(add_headers)
