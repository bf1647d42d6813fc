"""The UI's signed-cookie session, opened only when a request carries a cookie.

API clients (scripts, the benchmark, other services) send no cookie. Flask's
default interface builds its signing serializer and parses the cookie header
on every request anyway: about 8 % of the web process's CPU per single
enqueue, measured with py-spy. Here a request without a ``Cookie`` header gets
a new empty session at once; anything that writes to it is saved as before.
"""
from __future__ import annotations

from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class CookieSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie sessions, skipping the signer when there is no cookie."""

    def open_session(self, app, request) -> SecureCookieSession | None:
        if "HTTP_COOKIE" not in request.environ and app.secret_key:
            return self.session_class()
        return super().open_session(app, request)
