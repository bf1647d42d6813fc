"""Watching a Playwright page: every request it makes and every console message."""
from __future__ import annotations

from urllib.parse import urlsplit

DESKTOP = {"width": 1280, "height": 900}   # viewports of the browser tests and screenshots
PHONE = {"width": 390, "height": 844}
ABORTED_BY_PAGE = "net::ERR_ABORTED"  # Chromium's error code for a request the page cancelled


class PageRecorder:
    """Records a page's requests, console messages, page errors and failed requests,
    so a test can assert that nothing left the host and nothing went wrong."""

    def __init__(self, page, base_url: str):
        self.page = page
        self.origin = urlsplit(base_url)._replace(path="", query="", fragment="").geturl()
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.page_errors: list[str] = []
        self.failed: list[str] = []
        self.bad_responses: list[str] = []
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("console", lambda message: self.console.append(
            (message.type, f"{message.text} ({message.location.get('url')})")))
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        page.on("requestfailed", self._request_failed)
        page.on("response", lambda response: response.status >= 400 and
                self.bad_responses.append(f"{response.status} {response.url}"))

    def _request_failed(self, request) -> None:
        # A request the page cancelled itself (it navigated away before an image or
        # the favicon arrived) is not a failure of the server.
        if request.failure != ABORTED_BY_PAGE:
            self.failed.append(f"{request.url}: {request.failure}")

    def foreign_requests(self) -> list[str]:
        """Requests to anywhere but the daemon under test."""
        return [url for url in self.requests
                if urlsplit(url)._replace(path="", query="", fragment="").geturl() != self.origin]

    def errors(self) -> list[str]:
        """Console errors and warnings, uncaught page errors, failed requests and
        responses with an error status (named, since the console does not say which)."""
        return ([f"console {kind}: {text}" for kind, text in self.console
                 if kind in ("error", "warning")] + self.page_errors + self.failed +
                self.bad_responses)

    def assert_clean(self) -> None:
        """No request left the host; the console logged no error."""
        assert self.requests, "the page made no request at all"
        assert self.foreign_requests() == [], self.foreign_requests()
        assert self.errors() == [], self.errors()
