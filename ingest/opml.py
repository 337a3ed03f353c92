"""The SOURCEs given -> the feeds to ingest: OPML lists (files or URLs) expanded, duplicates dropped.

The feeds an OPML list names obey the list's own trust policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx

from archive.errors import PodarchiveError, SourceError
from ingest import http, trust
from ingest.feed_fetch import download
from ingest.feed_xml import parse_xml, split_tag
from ingest.sources import is_url


@dataclass
class FeedSource:
    """A feed to ingest. `policy` is what its fetch may reach when an OPML list named it (None: the operator
    named it, and it gets the policy of its own location); `refused` says why it will not be fetched."""

    url: str
    policy: trust.FetchPolicy | None = None
    refused: str | None = None


def expand_sources(sources: list[str], client: httpx.Client, rules: http.FetchRules | None = None) -> list[FeedSource]:
    """Feed sources for the SOURCEs given, OPML lists expanded, duplicates dropped.

    A URL counts as OPML when its path ends in `.opml` (telling otherwise would cost a download per feed);
    a local file when its name ends in `.opml` or its root element is `<opml>`. The feeds an OPML list names
    obey the list's own policy: a remote list's `file:` feeds are refused, a local list's must sit in its folder.
    """
    rules = rules or http.FetchRules()
    expanded: list[FeedSource] = []
    for source in sources:
        if is_url(source):
            if source.split("#")[0].split("?")[0].lower().endswith(".opml"):
                policy = http.feed_policy(source, rules, client)
                data = download(source, client, rules, policy, what="OPML list").content
                expanded.extend(_listed_feeds(data, source, policy))
            else:
                expanded.append(FeedSource(source))
            continue
        path = trust.local_path(source)
        data = _read_source_file(path, source, rules.max_feed_bytes)
        if path.suffix.lower() == ".opml" or _root_name(data) == "opml":
            expanded.extend(_listed_feeds(data, path.resolve().as_uri(), http.feed_policy(source, rules, client)))
        else:
            expanded.append(FeedSource(source))
    return _without_duplicates(expanded)


def _listed_feeds(data: bytes, opml_url: str, policy: trust.FetchPolicy) -> list[FeedSource]:
    listed = []
    for url in opml_feed_urls(data, opml_url):
        try:
            trust.check_url(url, policy)
        except PodarchiveError as exc:
            listed.append(FeedSource(url, policy, refused=str(exc)))
            continue
        listed.append(FeedSource(_file_uri_to_path(url), policy))
    return listed


def _read_source_file(path: Path, source: str, max_bytes: int) -> bytes:
    if not path.exists():
        raise SourceError(f"{source}: no such file, and not an http(s) URL")
    if not path.is_file():
        raise SourceError(f"{source}: not a file")
    try:
        return trust.read_local_file(path.resolve().as_uri(), trust.policy_for_source(source), max_bytes, "source")
    except PodarchiveError as exc:
        raise SourceError(f"{source}: {exc}") from exc


def _file_uri_to_path(source: str) -> str:
    return str(trust.local_path(source)) if source.lower().startswith("file:") else source


def _without_duplicates(sources: list[FeedSource]) -> list[FeedSource]:
    first: dict[str, FeedSource] = {}
    for source in sources:
        first.setdefault(source.url, source)
    return list(first.values())


def _root_name(data: bytes) -> str | None:
    root = parse_xml(data)
    return None if root is None else split_tag(root.tag)[1].lower()


def opml_feed_urls(data: bytes, opml_url: str) -> list[str]:
    """Every `outline[@xmlUrl]` of an OPML document (nested outlines included), resolved against its URL."""
    root = parse_xml(data)
    if root is None or split_tag(root.tag)[1].lower() != "opml":
        raise SourceError(f"{opml_url}: not an OPML document")
    urls = []
    for element in root.iter():
        if split_tag(element.tag)[1] != "outline":
            continue
        xml_url = next((v for k, v in element.attrib.items() if k.lower() == "xmlurl" and v.strip()), None)
        if xml_url:
            urls.append(urljoin(opml_url, xml_url.strip()))
    return urls
