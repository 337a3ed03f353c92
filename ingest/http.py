"""One HTTP client for the pipeline: timeouts, retries with backoff, a proper User-Agent, the trust rules.

httpx does the HTTP; tenacity does the retrying. Only transient failures are retried (connection errors,
timeouts, 429 and 5xx); a 404, a refused address or a response over its cap fails at once. Every connection
goes through `trust.GuardedTransport`, so each request is checked against the FetchPolicy it carries.
`fetch_bytes` is the bounded read for feeds, OPML, transcripts and chapters: streamed, capped on the decoded
size (gzip included), with an overall deadline besides the per-read timeout.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_exponential

from archive import __version__
from archive.errors import FetchDeadlineError, ResponseTooLargeError

from . import trust
from .trust import POLICY_EXTENSION, FetchPolicy, GuardedTransport, Resolver

USER_AGENT = f"podarchive/{__version__} (+https://github.com/podarchive/podarchive)"
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


@dataclass
class FetchRules:
    """The trust rules' settings: caps on what a feed makes podarchive read, and how far it may lead."""

    max_feed_bytes: int = 20_000_000  # a feed or an OPML list, decoded
    max_transcript_bytes: int = 10_000_000
    max_chapters_bytes: int = 2_000_000
    deadline_seconds: float = 120.0  # for one request, retries and redirects included (audio excepted)
    allow_private_addresses: bool = False  # let feeds lead to loopback, private and link-local addresses


@dataclass
class HttpOptions:
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    attempts: int = 3
    backoff_seconds: float = 1.0


class GuardedClient(httpx.Client):
    """An httpx client whose every connection is checked by the trust rules (see ingest.trust)."""

    def __init__(self, resolver: Resolver | None = None, **kwargs):
        transport = GuardedTransport(resolver)
        self.resolver = transport.resolver
        # trust_env=False: a proxy from the environment would resolve names itself, past the address check.
        super().__init__(transport=transport, trust_env=False, **kwargs)


def make_client(options: HttpOptions | None = None, resolver: Resolver | None = None) -> GuardedClient:
    options = options or HttpOptions()
    timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
    return GuardedClient(
        resolver=resolver,
        timeout=timeout,
        follow_redirects=True,
        max_redirects=10,
        headers={"User-Agent": USER_AGENT},
    )


def client_resolver(client) -> Resolver | None:
    """The resolver a client checks addresses with (None: the system's)."""
    return getattr(client, "resolver", None)


def feed_policy(feed_url: str, rules: FetchRules | None = None, client=None) -> FetchPolicy:
    """The policy for the URLs the feed at `feed_url` names (see ingest.trust); for a URL fetched with no
    policy given, the one it has as if the operator had named it."""
    return trust.policy_for_source(feed_url, allow_private=(rules or FetchRules()).allow_private_addresses,
                                   resolver=client_resolver(client))


def policy_extensions(policy: FetchPolicy | None) -> dict:
    return {POLICY_EXTENSION: policy} if policy is not None else {}


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


@dataclass
class Fetched:
    """A bounded GET's answer: the final status, URL and headers, and the whole (decoded) body."""

    status_code: int
    url: str
    headers: httpx.Headers
    content: bytes


DEFAULT_DEADLINE_SECONDS = 120.0


def fetch_bytes(client: httpx.Client, url: str, *, max_bytes: int, policy: FetchPolicy | None = None,
                headers: dict | None = None, deadline: float = DEFAULT_DEADLINE_SECONDS,
                options: HttpOptions | None = None, what: str = "response") -> Fetched:
    """GET `url` with retries on transient errors, reading at most `max_bytes` of decoded body within `deadline`
    seconds in all. Any status that is not transient is returned, with its body. `policy` is what the request
    may reach (default: the policy of the URL itself, as if the operator had named it).

    Raises ResponseTooLargeError past the cap (a gzip bomb stops there), FetchDeadlineError past the deadline,
    UntrustedURLError when a hop leads where `policy` does not allow, httpx errors for the network.
    """

    policy = policy or feed_policy(url, client=client)
    ends_at = time.monotonic() + deadline  # one deadline for the request, retries included

    def attempt() -> Fetched:
        fetched = _fetch_once(client, url, max_bytes, policy, headers, ends_at, deadline, what)
        if fetched.status_code in RETRY_STATUSES:
            raise RetryableStatus(fetched)
        return fetched

    try:
        return with_retries(attempt, options)
    except RetryableStatus as exc:
        return exc.response
    except httpx.TimeoutException as exc:
        if time.monotonic() >= ends_at:
            raise FetchDeadlineError(f"{what} {url} took longer than the deadline of {deadline:g} s") from exc
        raise


def _fetch_once(client, url, max_bytes, policy, headers, ends_at, deadline, what) -> Fetched:
    left = ends_at - time.monotonic()
    if left <= 0:
        raise FetchDeadlineError(f"{what} {url} took longer than the deadline of {deadline:g} s")
    with client.stream("GET", url, headers=headers or {}, timeout=_timeout_within(client.timeout, left),
                       extensions=policy_extensions(policy)) as response:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes and "content-encoding" not in response.headers:
            raise ResponseTooLargeError(f"{what} {url} is {int(declared)} bytes, over the limit of {max_bytes}")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLargeError(f"{what} {url} is over the limit of {max_bytes} bytes")
            if time.monotonic() > ends_at:
                raise FetchDeadlineError(f"{what} {url} took longer than the deadline of {deadline:g} s")
            chunks.append(chunk)
        return Fetched(response.status_code, str(response.url), response.headers, b"".join(chunks))


def _timeout_within(timeout: httpx.Timeout, deadline: float) -> httpx.Timeout:
    """The client's timeouts, none longer than the deadline: a server that sends nothing is cut in time."""
    def within(value):
        return deadline if value is None else min(value, deadline)

    return httpx.Timeout(connect=within(timeout.connect), read=within(timeout.read), write=within(timeout.write),
                         pool=within(timeout.pool))
