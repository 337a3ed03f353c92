"""One HTTP client for the pipeline: timeouts, retries with backoff, a proper User-Agent.

httpx does the HTTP; tenacity does the retrying. Only transient failures are retried (connection errors,
timeouts, 429 and 5xx); a 404 fails at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from archive import __version__

USER_AGENT = f"podarchive/{__version__} (+https://github.com/podarchive/podarchive)"
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class HttpOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    attempts: int = 3
    backoff_seconds: float = 1.0


def make_client(options: HttpOptions | None = None) -> httpx.Client:
    options = options or HttpOptions()
    timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        headers={"User-Agent": USER_AGENT},
    )


class RetryableStatus(Exception):
    def __init__(self, response: httpx.Response):
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (httpx.TransportError, RetryableStatus))


def with_retries(fn, options: HttpOptions | None = None):
    """Call fn() and retry transient failures with exponential backoff."""
    options = options or HttpOptions()
    retrying = retry(
        retry=retry_if_exception(_is_transient),
        stop=stop_after_attempt(options.attempts),
        wait=wait_exponential(multiplier=options.backoff_seconds, max=30),
        reraise=True,
    )
    return retrying(fn)()


def get(client: httpx.Client, url: str, *, headers: dict | None = None,
        options: HttpOptions | None = None) -> httpx.Response:
    """GET with retries on transient errors. Returns the final response (any status that is not transient)."""

    def attempt() -> httpx.Response:
        response = client.get(url, headers=headers or {})
        if response.status_code in RETRY_STATUSES:
            raise RetryableStatus(response)
        return response

    try:
        return with_retries(attempt, options)
    except RetryableStatus as exc:
        return exc.response
