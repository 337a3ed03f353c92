"""Getting a feed's bytes: a local file, or a URL with a conditional GET, within the trust rules and caps."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from archive.errors import FeedFetchError, PodarchiveError
from ingest import http, trust
from ingest.sources import canonical_feed_url, is_url


@dataclass
class FetchedFeed:
    url: str  # natural key of the show: the URL as given, or the file:// URI of a local file
    content: bytes | None  # None when the server answered 304 Not Modified
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    base_url: str | None = None  # final URL after redirects: relative links resolve against it

    @property
    def base(self) -> str:
        return self.base_url or self.url


def fetch_feed(source: str, client: httpx.Client, etag: str | None = None,
               last_modified: str | None = None, http_options: http.HttpOptions | None = None,
               policy: trust.FetchPolicy | None = None, rules: http.FetchRules | None = None) -> FetchedFeed:
    """The feed's bytes. For URLs a conditional GET: a 304 gives `not_modified=True` and no content.

    `policy` is what the fetch may reach (default: the policy of the SOURCE itself); at most
    `rules.max_feed_bytes` are read, within `rules.deadline_seconds`.
    """
    rules = rules or http.FetchRules()
    policy = policy or http.feed_policy(source, rules, client)
    if is_url(source):
        return _fetch_url(source, client, etag, last_modified, http_options, policy, rules)
    try:
        content = trust.read_local_file(trust.local_path(source).absolute().as_uri(), policy, rules.max_feed_bytes,
                                        "feed")
    except PodarchiveError as exc:
        raise FeedFetchError(f"{source}: cannot read feed file ({exc})") from exc
    return FetchedFeed(url=canonical_feed_url(source), content=content)


def _fetch_url(url: str, client: httpx.Client, etag: str | None, last_modified: str | None,
               options: http.HttpOptions | None, policy: trust.FetchPolicy, rules: http.FetchRules) -> FetchedFeed:
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    response = download(url, client, rules, policy, headers=headers, allow_not_modified=True, options=options)
    if response.status_code == 304:
        return FetchedFeed(
            url=url,
            content=None,
            etag=response.headers.get("etag") or etag,
            last_modified=response.headers.get("last-modified") or last_modified,
            not_modified=True,
            base_url=response.url,
        )
    return FetchedFeed(
        url=url,
        content=response.content,
        etag=response.headers.get("etag"),
        last_modified=response.headers.get("last-modified"),
        base_url=response.url,
    )


def download(url: str, client: httpx.Client, rules: http.FetchRules, policy: trust.FetchPolicy,
             headers: dict | None = None, allow_not_modified: bool = False,
             options: http.HttpOptions | None = None, what: str = "feed") -> http.Fetched:
    """A feed's (or an OPML list's) response; any failure, refusal or non-2xx status is a FeedFetchError.
    A 304 passes when `allow_not_modified`."""
    try:
        response = http.fetch_bytes(client, url, max_bytes=rules.max_feed_bytes, policy=policy, headers=headers,
                                    deadline=rules.deadline_seconds, options=options, what=what)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise FeedFetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
    except PodarchiveError as exc:  # refused by the trust rules, over the cap or the deadline
        raise FeedFetchError(f"{url}: {exc}") from exc
    if response.status_code == 304 and allow_not_modified:
        return response
    if not 200 <= response.status_code < 300:
        raise FeedFetchError(f"{url}: HTTP {response.status_code}", status=response.status_code)
    return response
