"""The feeds stage: SOURCE -> feed bytes -> shows and episodes.

Four steps, kept apart so each is tested alone (fetch apart from save):
`expand_sources()` turns feed URLs, feed files and OPML lists into feed sources; `fetch_feed()` gets the bytes
(conditional GET for URLs); `parse_feed()` turns bytes into typed records; `save_feed()` upserts them.

feedparser reads the main fields. It keeps only the last `podcast:transcript` of an item, drops the text of
`podcast:person` and `podcast:soundbite` and lowercases attribute names, so a second, raw XML pass over the same
bytes reads the Podcasting 2.0 namespace. Real feeds are not always well-formed XML: that pass uses lxml in
recover mode and is allowed to find nothing.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
import io
import json
import math
import posixpath
import re
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import feedparser
import httpx
import sqlite_utils
from lxml import etree

from archive.db import utcnow, write_transaction
from archive.errors import FeedError, FeedFetchError, FeedParseError, PodarchiveError, SourceError
from archive.records import PersonRef, TranscriptLink
from archive.studio import feed_kept_columns, parse_producer_fields
from ingest import http, trust

PODCAST_NAMESPACES = {
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
    "https://github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
}
RSS1_NAMESPACE = "http://purl.org/rss/1.0/"
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
EPISODE_TYPES = {"full", "trailer", "bonus"}


# --- records ---------------------------------------------------------------------------------------------------


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


@dataclass
class Soundbite:
    start: float
    duration: float | None = None
    title: str | None = None


@dataclass
class ShowInfo:
    title: str | None = None
    link: str | None = None
    description: str | None = None
    language: str | None = None
    author: str | None = None
    image: str | None = None
    podcast_guid: str | None = None
    people: list[PersonRef] = field(default_factory=list)


@dataclass
class EpisodeInfo:
    guid: str
    title: str | None = None
    link: str | None = None
    published: str | None = None  # ISO 8601, UTC
    season: int | None = None
    episode_number: int | None = None
    episode_type: str | None = None
    duration: float | None = None  # seconds
    description: str | None = None
    notes_html: str | None = None
    notes_text: str | None = None
    enclosure_url: str | None = None
    enclosure_type: str | None = None
    enclosure_length: int | None = None
    image: str | None = None
    chapters_url: str | None = None
    chapters_type: str | None = None
    transcripts: list[TranscriptLink] = field(default_factory=list)
    people: list[PersonRef] = field(default_factory=list)
    soundbites: list[Soundbite] = field(default_factory=list)

    def content_hash(self) -> str:
        """Hash of everything parsed from the item: a change here re-runs the stages that depend on it."""
        payload = json.dumps(asdict(self), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class ParsedFeed:
    show: ShowInfo
    episodes: list[EpisodeInfo]
    item_errors: list[str] = field(default_factory=list)


@dataclass
class SavedFeed:
    show_id: int
    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


# --- sources ---------------------------------------------------------------------------------------------------


@dataclass
class FeedSource:
    """A feed to ingest. `policy` is what its fetch may reach when an OPML list named it (None: the operator
    named it, and it gets the policy of its own location); `refused` says why it will not be fetched."""

    url: str
    policy: trust.FetchPolicy | None = None
    refused: str | None = None


def is_url(source: str) -> bool:
    return source.split(":", 1)[0].lower() in ("http", "https") and "://" in source


def canonical_feed_url(source: str) -> str:
    """The show's natural key for a SOURCE: an http(s) URL as given, a local file as the file:// URI of its path."""
    return source if is_url(source) else _local_path(source).resolve().as_uri()


def _local_path(source: str) -> Path:
    return trust.local_path(source)


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
                data = _download(source, client, rules, policy, what="OPML list").content
                expanded.extend(_listed_feeds(data, source, policy))
            else:
                expanded.append(FeedSource(source))
            continue
        path = _local_path(source)
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
    return str(_local_path(source)) if source.lower().startswith("file:") else source


def _without_duplicates(sources: list[FeedSource]) -> list[FeedSource]:
    first: dict[str, FeedSource] = {}
    for source in sources:
        first.setdefault(source.url, source)
    return list(first.values())


def _xml_parser() -> etree.XMLParser:
    # recover: real feeds are not always well-formed. No entities, DTDs or network: feeds are untrusted input.
    return etree.XMLParser(recover=True, resolve_entities=False, no_network=True, load_dtd=False)


def _without_leading_whitespace(data: bytes) -> bytes:
    """Whitespace before the XML declaration makes a document ill-formed (and feedparser slow): drop it.

    Only when markup follows: in UTF-16 without a byte order mark, a space is followed by a NUL byte.
    """
    stripped = data.lstrip()
    return stripped if stripped[:1] == b"<" else data


def _parse_xml(data: bytes):
    """The root element of possibly broken XML, or None when nothing can be recovered."""
    try:
        return etree.fromstring(_without_leading_whitespace(data), _xml_parser())
    except (etree.XMLSyntaxError, ValueError):
        return None


def _split_tag(tag) -> tuple[str | None, str]:
    """(namespace URI or undeclared prefix, local name) of an element tag."""
    if not isinstance(tag, str):
        return None, ""  # comments, processing instructions
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    if ":" in tag:  # a prefix the document never declared (lxml recover mode keeps it in the name)
        prefix, _, local = tag.partition(":")
        return prefix, local
    return None, tag


def _root_name(data: bytes) -> str | None:
    root = _parse_xml(data)
    return None if root is None else _split_tag(root.tag)[1].lower()


def opml_feed_urls(data: bytes, opml_url: str) -> list[str]:
    """Every `outline[@xmlUrl]` of an OPML document (nested outlines included), resolved against its URL."""
    root = _parse_xml(data)
    if root is None or _split_tag(root.tag)[1].lower() != "opml":
        raise SourceError(f"{opml_url}: not an OPML document")
    urls = []
    for element in root.iter():
        if _split_tag(element.tag)[1] != "outline":
            continue
        xml_url = next((v for k, v in element.attrib.items() if k.lower() == "xmlurl" and v.strip()), None)
        if xml_url:
            urls.append(urljoin(opml_url, xml_url.strip()))
    return urls


# --- fetch -----------------------------------------------------------------------------------------------------


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
        content = trust.read_local_file(_local_path(source).absolute().as_uri(), policy, rules.max_feed_bytes, "feed")
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
    response = _download(url, client, rules, policy, headers=headers, allow_not_modified=True, options=options)
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


def _download(url: str, client: httpx.Client, rules: http.FetchRules, policy: trust.FetchPolicy,
              headers: dict | None = None, allow_not_modified: bool = False,
              options: http.HttpOptions | None = None, what: str = "feed") -> http.Fetched:
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


# --- parse -----------------------------------------------------------------------------------------------------


def parse_feed(content: bytes, base_url: str) -> ParsedFeed:
    """Typed show and episodes from feed bytes. Relative URLs resolve against `base_url`.

    Raises FeedParseError when the bytes are not a feed at all. A bad item is skipped and reported in
    `item_errors`; the rest of the feed is kept.
    """
    content = _without_leading_whitespace(content)
    try:
        parsed = feedparser.parse(
            io.BytesIO(content),
            # No content-location: feedparser would resolve plain guids against it ("ep-1" -> "http://host/ep-1").
            # application/xml: honour the document's own encoding declaration, as for a local file.
            response_headers={"content-type": "application/xml"},
            sanitize_html=False,  # notes are stored raw and sanitised on display
        )
    except Exception as exc:  # feedparser is meant never to raise; a bug there is still a parse failure
        raise FeedParseError(f"{base_url}: {type(exc).__name__}: {exc}") from exc
    _check_is_feed(parsed, base_url)

    errors: list[str] = []
    try:
        raw = read_podcast_namespace(content, base_url)
    except Exception as exc:  # the extra pass must never cost the feed: feedparser's fields still stand
        raw = RawFeed()
        errors.append(f"Podcasting 2.0 elements not read: {type(exc).__name__}: {exc}")
    raw_items = _match_raw_items(parsed.entries, raw.items)
    episodes: list[EpisodeInfo] = []
    seen_guids: set[str] = set()
    for position, (entry, raw_item) in enumerate(zip(parsed.entries, raw_items), start=1):
        try:
            episode = _episode(entry, raw_item or RawItem(), base_url)
        except Exception as exc:  # one bad item must not take the feed down
            title = entry.get("title") if hasattr(entry, "get") else None
            errors.append(f"item {position} ({title!r}) skipped: {type(exc).__name__}: {exc}")
            continue
        if episode.guid in seen_guids:
            errors.append(f"item {position} ({episode.title!r}) skipped: duplicate guid {episode.guid!r}")
            continue
        seen_guids.add(episode.guid)
        episodes.append(episode)
    errors.extend(raw.errors)
    return ParsedFeed(show=_show(parsed.feed, raw, base_url), episodes=episodes, item_errors=errors)


def _check_is_feed(parsed, base_url: str) -> None:
    if parsed.entries:
        return
    if not parsed.get("version"):
        raise FeedParseError(f"{base_url}: not an RSS or Atom feed{_bozo_reason(parsed)}")
    if _broken_xml(parsed) and not parsed.feed:
        raise FeedParseError(f"{base_url}: broken feed with nothing readable{_bozo_reason(parsed)}")


def _broken_xml(parsed) -> bool:
    # feedparser also sets bozo for mere warnings (a wrong encoding declaration it worked around).
    warnings = (feedparser.CharacterEncodingOverride, feedparser.NonXMLContentType)
    return bool(parsed.bozo) and not isinstance(parsed.get("bozo_exception"), warnings)


def _bozo_reason(parsed) -> str:
    exc = parsed.get("bozo_exception")
    return f" ({exc})" if exc else ""


def _show(feed, raw: RawFeed, base_url: str) -> ShowInfo:
    image = (feed.get("image") or {}).get("href")
    return ShowInfo(
        title=_clean(feed.get("title")),
        link=_web_url(base_url, _channel_link(feed)),
        description=_clean(feed.get("subtitle") or feed.get("summary")),
        language=_clean(feed.get("language")),
        author=_clean((feed.get("author_detail") or {}).get("name") or feed.get("author")),
        image=_web_url(base_url, image),
        podcast_guid=raw.podcast_guid,
        people=raw.people,
    )


def _channel_link(feed) -> str | None:
    # feedparser lets a podcast:liveItem's <link> overwrite the channel's: the first alternate link is the show's.
    for link in feed.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return link["href"]
    return feed.get("link")


def _episode(entry, raw: RawItem, base_url: str) -> EpisodeInfo:
    enclosure = _enclosure(entry, base_url)
    title = _clean(entry.get("title"))
    if not title and enclosure.url:
        title = _url_basename(enclosure.url)
    published = _iso_date(entry.get("published_parsed") or entry.get("updated_parsed"))
    notes_html = _notes_html(entry)
    chapters = raw.chapters or _feedparser_chapters(entry)
    return EpisodeInfo(
        guid=_guid(entry, enclosure.url, title, published),
        title=title,
        link=_web_url(base_url, entry.get("link")),
        published=published,
        season=_first_positive_int(entry.get("itunes_season"), raw.season),
        episode_number=_first_positive_int(entry.get("itunes_episode"), raw.episode),
        episode_type=_episode_type(entry.get("itunes_episodetype")),
        duration=parse_duration(entry.get("itunes_duration")),
        description=_clean(entry.get("summary")),
        notes_html=notes_html,
        notes_text=html_to_text(notes_html) if notes_html else None,
        enclosure_url=enclosure.url,
        enclosure_type=enclosure.type,
        enclosure_length=enclosure.length,
        image=_web_url(base_url, _episode_image(entry)),
        chapters_url=_resolve(base_url, chapters[0]) if chapters else None,
        chapters_type=chapters[1] if chapters else None,
        transcripts=raw.transcripts or _feedparser_transcripts(entry, base_url),
        people=raw.people,
        soundbites=raw.soundbites,
    )


def _guid(entry, enclosure_url: str | None, title: str | None, published: str | None) -> str:
    guid = _clean(entry.get("id"))
    if guid:
        return guid
    if enclosure_url:
        return enclosure_url
    if title:
        digest = hashlib.sha256(f"{title}\n{published or ''}".encode("utf-8")).hexdigest()
        return f"sha256:{digest[:32]}"
    raise ValueError("no guid, enclosure URL or title to identify the item")


@dataclass
class _Enclosure:
    url: str | None = None
    type: str | None = None
    length: int | None = None


def _enclosure(entry, base_url: str) -> _Enclosure:
    """The item's media file: the first audio or video enclosure, else the first that is not an image."""
    candidates = [
        _Enclosure(_resolve(base_url, e.get("href")), _clean(e.get("type")), _length(e.get("length")))
        for e in entry.get("enclosures") or []
    ] + [
        _Enclosure(_resolve(base_url, m.get("url")), _clean(m.get("type")), _length(m.get("filesize")))
        for m in entry.get("media_content") or []
    ]
    candidates = [c for c in candidates if c.url]
    for wanted in (_is_media, lambda c: not (c.type or "").startswith("image/")):
        chosen = next((c for c in candidates if wanted(c)), None)
        if chosen:
            return chosen
    return _Enclosure()


def _is_media(enclosure: _Enclosure) -> bool:
    return (enclosure.type or "").split("/")[0] in ("audio", "video")


def _length(value) -> int | None:
    number = parse_int(value)
    return number if number and number > 0 else None  # feeds write length="0" for "unknown"


def _episode_image(entry) -> str | None:
    image = (entry.get("image") or {}).get("href")
    if image:
        return image
    thumbnails = entry.get("media_thumbnail") or []
    return thumbnails[0].get("url") if thumbnails else None


def _notes_html(entry) -> str | None:
    """content:encoded when the item has it, else its description."""
    for content in entry.get("content") or []:
        value = (content.get("value") or "").strip()
        if value:
            return value
    return (entry.get("summary") or "").strip() or None


def _episode_type(value) -> str | None:
    value = (value or "").strip().lower()
    return value if value in EPISODE_TYPES else None


def _feedparser_chapters(entry) -> tuple[str, str | None] | None:
    # Only reached when the raw pass found nothing (XML beyond repair): feedparser's copy is then the best left.
    chapters = entry.get("podcast_chapters") or {}
    return (chapters["url"], chapters.get("type")) if chapters.get("url") else None


def _feedparser_transcripts(entry, base_url: str) -> list[TranscriptLink]:
    transcript = entry.get("podcast_transcript") or {}
    if not transcript.get("url"):
        return []
    return [TranscriptLink(url=_resolve(base_url, transcript["url"]), type=transcript.get("type"),
                           language=transcript.get("language"), rel=transcript.get("rel"))]


# --- the raw pass over the Podcasting 2.0 namespace --------------------------------------------------------------


@dataclass
class RawItem:
    guid: str | None = None
    season: str | None = None  # podcast:season / podcast:episode: numbers when itunes: gives none
    episode: str | None = None
    transcripts: list[TranscriptLink] = field(default_factory=list)
    chapters: tuple[str, str | None] | None = None
    people: list[PersonRef] = field(default_factory=list)
    soundbites: list[Soundbite] = field(default_factory=list)


@dataclass
class RawFeed:
    podcast_guid: str | None = None
    people: list[PersonRef] = field(default_factory=list)
    items: list[RawItem] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def read_podcast_namespace(content: bytes, base_url: str) -> RawFeed:
    """Podcasting 2.0 elements of the channel and of each item, in document order.

    Broken XML gives what libxml2 can recover, possibly nothing.
    """
    root = _parse_xml(content)
    if root is None:
        return RawFeed()
    channel, items = _channel_and_items(root)
    raw = RawFeed()
    raw.items = [_raw_item(item, base_url, raw.errors) for item in items]
    if channel is not None:
        raw.podcast_guid = _first_text(channel, "guid")
        raw.people = _people(channel, base_url)
    return raw


def _channel_and_items(root):
    """The channel element and the items, in document order.

    Items are looked for anywhere: recovering from broken XML (an unclosed tag) can nest one item inside another.
    """
    local = _split_tag(root.tag)[1]
    if local == "rss":
        channel = next((child for child in root if _split_tag(child.tag)[1] == "channel"), None)
        return channel, _elements(root, "item", {None})
    if local == "RDF":  # RSS 1.0: items are siblings of the channel
        channel = next((child for child in root if _split_tag(child.tag)[1] == "channel"), None)
        return channel, _elements(root, "item", {RSS1_NAMESPACE})
    if local == "feed":
        return root, _elements(root, "entry", {ATOM_NAMESPACE})
    return None, []


def _elements(root, name: str, namespaces: set) -> list:
    return [el for el in root.iter() if _split_tag(el.tag) in {(ns, name) for ns in namespaces}]


def _is_podcast(element, name: str) -> bool:
    namespace, local = _split_tag(element.tag)
    return local == name and (namespace in PODCAST_NAMESPACES or namespace == "podcast")


def _podcast_children(parent, name: str) -> list:
    return [child for child in parent if _is_podcast(child, name)]


def _text(element) -> str | None:
    text = "".join(element.itertext()).strip()
    return text or None


def _first_text(parent, name: str) -> str | None:
    return next((_text(el) for el in _podcast_children(parent, name) if _text(el)), None)


def _attr(element, name: str) -> str | None:
    value = element.get(name)
    if value is None:  # some publishers write podcast attributes in lower case
        value = next((v for k, v in element.attrib.items() if k.lower() == name.lower()), None)
    value = (value or "").strip()
    return value or None


def _raw_item(item, base_url: str, errors: list[str]) -> RawItem:
    guid = next((_text(c) for c in item
                 if _split_tag(c.tag)[1] in ("guid", "id") and not _is_podcast(c, "guid") and _text(c)), None)
    raw = RawItem(guid=guid, people=_people(item, base_url),
                  season=_first_text(item, "season"), episode=_first_text(item, "episode"))
    for element in _podcast_children(item, "transcript"):
        url = _resolve(base_url, _attr(element, "url"))
        if url and url not in {t.url for t in raw.transcripts}:
            raw.transcripts.append(TranscriptLink(url=url, type=_attr(element, "type"),
                                                  language=_attr(element, "language"), rel=_attr(element, "rel")))
    chapters = next((c for c in _podcast_children(item, "chapters") if _attr(c, "url")), None)
    if chapters is not None:
        raw.chapters = (_attr(chapters, "url"), _attr(chapters, "type"))
    for element in _podcast_children(item, "soundbite"):
        start = parse_seconds(_attr(element, "startTime"))
        if start is None:
            errors.append(f"item {guid!r}: soundbite without a valid startTime ignored")
            continue
        raw.soundbites.append(Soundbite(start=start, duration=parse_seconds(_attr(element, "duration")),
                                        title=_text(element)))
    return raw


def _people(parent, base_url: str) -> list[PersonRef]:
    people = []
    for element in _podcast_children(parent, "person"):
        name = _text(element)
        if not name:
            continue
        people.append(PersonRef(
            name=" ".join(name.split()),
            role=(_attr(element, "role") or "host").lower(),
            group=(_attr(element, "group") or "cast").lower(),
            href=_web_url(base_url, _attr(element, "href")),
            img=_web_url(base_url, _attr(element, "img")),
            source="feed",
        ))
    return people


def _match_raw_items(entries, raw_items: list[RawItem]) -> list[RawItem | None]:
    """Pair feedparser's entries with the raw pass's items: by position when both saw the same number, else by guid."""
    if len(entries) == len(raw_items):
        return list(raw_items)
    by_guid: dict[str, RawItem] = {}
    for item in raw_items:
        if item.guid:
            by_guid.setdefault(item.guid, item)
    return [by_guid.get(_clean(entry.get("id")) or "") for entry in entries]


# --- small value parsers ------------------------------------------------------------------------------------------


_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_ISO_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$",
                           re.IGNORECASE)


def parse_duration(value) -> float | None:
    """Seconds from an itunes:duration: "3723", "1234.5", "MM:SS", "HH:MM:SS(.f)" or ISO 8601 "PT1H2M3S".

    Junk, negative and empty values give None.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    iso = _ISO_DURATION.match(text)
    if iso and text.upper() not in ("P", "PT"):
        days, hours, minutes, seconds = (float(part or 0) for part in iso.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    return parse_seconds(text)


def parse_seconds(value) -> float | None:
    """A non-negative, finite number of seconds, or None."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _first_positive_int(*values) -> int | None:
    """The first value that is a positive integer: itunes:season and itunes:episode are "non-zero integers"."""
    return next((number for number in map(parse_int, values) if number is not None and number > 0), None)


def _iso_date(parsed_time) -> str | None:
    if not parsed_time:
        return None
    try:
        timestamp = calendar.timegm(parsed_time)
        return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()
    except (OverflowError, ValueError, OSError):
        return None


def _clean(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _resolve(base_url: str, url) -> str | None:
    url = _clean(url)
    if not url:
        return None
    try:
        return urljoin(base_url, url)
    except ValueError:  # e.g. a malformed IPv6 host: keep what the feed says
        return url


def _web_url(base_url: str, url) -> str | None:
    """A link or image the site may show: kept only when it resolves to an http(s) URL (never fetched)."""
    resolved = _resolve(base_url, url)
    return resolved if resolved and trust.is_http_url(resolved) else None


def _url_basename(url: str) -> str | None:
    name = posixpath.basename(unquote(urlsplit(url).path))
    return posixpath.splitext(name)[0] or None


_BLOCK_TAGS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "blockquote", "pre",
               "section", "article", "header", "footer", "figure", "hr"}
_LINE_TAGS = {"br", "li", "tr", "dt", "dd"}
_SKIP_TAGS = {"script", "style", "head", "title"}
_LOOKS_LIKE_HTML = re.compile(r"<[a-z][a-z0-9]*(?:\s[^>]*)?/?>|</[a-z][a-z0-9]*>|&[a-z#0-9]+;", re.IGNORECASE)


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        self._break(tag)
        if tag in _SKIP_TAGS:
            self.skipping += 1

    def handle_startendtag(self, tag, attrs):
        self._break(tag)

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS and self.skipping:
            self.skipping -= 1
        if tag in _BLOCK_TAGS:  # a line tag (li, br, ...) breaks before itself only
            self._break(tag)

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))

    def _break(self, tag):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS:
            self.parts.append("\n")


def html_to_text(html: str) -> str:
    """Plain text of show notes: tags stripped, entities decoded, paragraphs and lines kept as newlines."""
    if not _LOOKS_LIKE_HTML.search(html):
        return _tidy_lines(html)
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return _tidy_lines("".join(extractor.parts))


def _tidy_lines(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


# --- save ------------------------------------------------------------------------------------------------------


def feed_state(db: sqlite_utils.Database, feed_url: str) -> tuple[str | None, str | None, str | None] | None:
    """(etag, last_modified, content_hash) stored for a feed, for a conditional GET; None if never seen.

    `feed_url` may be any SOURCE form (URL, path, file:// URI).
    """
    row = _show_row(db, canonical_feed_url(feed_url))
    return (row["etag"], row["last_modified"], row["content_hash"]) if row else None


def save_feed(db: sqlite_utils.Database, fetched: FetchedFeed, parsed: ParsedFeed | None) -> SavedFeed:
    """Upsert the show and its episodes in one transaction; report which episodes are new, changed, unchanged.

    Episodes that vanished from the feed stay in the archive. A 304 writes nothing (beyond clearing an old
    error); byte-identical feed content only refreshes the fetch bookkeeping.
    """
    if fetched.not_modified:
        return _save_not_modified(db, fetched)
    if parsed is None or fetched.content is None:
        raise FeedError(f"{fetched.url}: nothing to save (no content or no parsed feed)")
    content_hash = hashlib.sha256(fetched.content).hexdigest()
    with write_transaction(db):
        previous = _show_row(db, fetched.url)
        show_id = _upsert_show(db, fetched, parsed.show, content_hash, previous)
        if previous and previous["content_hash"] == content_hash:
            ids = _episode_ids(db, show_id, [episode.guid for episode in parsed.episodes])
            return SavedFeed(show_id=show_id, unchanged=ids)
        saved = SavedFeed(show_id=show_id)
        for episode in parsed.episodes:
            episode_id, state = _upsert_episode(db, show_id, episode)
            getattr(saved, state).append(episode_id)
    return saved


def _save_not_modified(db: sqlite_utils.Database, fetched: FetchedFeed) -> SavedFeed:
    row = _show_row(db, fetched.url)
    if row is None:
        raise FeedError(f"{fetched.url}: server says not modified, but the feed is not in the archive")
    if row["last_error"]:
        with write_transaction(db):
            db["shows"].update(row["id"], {"last_error": None, "last_error_at": None})
    ids = [r["id"] for r in db.query("SELECT id FROM episodes WHERE show_id = ? ORDER BY id", [row["id"]])]
    return SavedFeed(show_id=row["id"], unchanged=ids)


def record_feed_error(db: sqlite_utils.Database, feed_url: str, message: str) -> int:
    """Store a fetch or parse failure on the show row (made if needed) so `status` can show it. Returns show id.

    `feed_url` may be any SOURCE form: a local path is keyed by its file:// URI, as `fetch_feed` does.
    """
    feed_url = canonical_feed_url(feed_url)
    now = utcnow()
    with write_transaction(db):
        row = _show_row(db, feed_url)
        if row:
            db["shows"].update(row["id"], {"last_error": message, "last_error_at": now, "updated_at": now})
            return row["id"]
        return db["shows"].insert({"feed_url": feed_url, "last_error": message, "last_error_at": now,
                                   "created_at": now, "updated_at": now}).last_pk


def _show_row(db: sqlite_utils.Database, feed_url: str) -> dict | None:
    rows = list(db.query("SELECT * FROM shows WHERE feed_url = ?", [feed_url]))
    return rows[0] if rows else None


def _upsert_show(db, fetched: FetchedFeed, show: ShowInfo, content_hash: str, previous: dict | None) -> int:
    now = utcnow()
    values = {
        "title": show.title,
        "link": show.link,
        "description": show.description,
        "language": show.language,
        "author": show.author,
        "image": show.image,
        "podcast_guid": show.podcast_guid,
        "people": json.dumps([asdict(person) for person in show.people], ensure_ascii=False),
        "etag": fetched.etag,
        "last_modified": fetched.last_modified,
        "content_hash": content_hash,
        "fetched_at": now,
        "last_error": None,
        "last_error_at": None,
        "updated_at": now,
    }
    if previous:
        db["shows"].update(previous["id"], values)
        return previous["id"]
    return db["shows"].insert({"feed_url": fetched.url, "created_at": now, **values}).last_pk


def _episode_ids(db, show_id: int, guids: list[str]) -> list[int]:
    ids = {row["guid"]: row["id"] for row in db.query("SELECT id, guid FROM episodes WHERE show_id = ?", [show_id])}
    return [ids[guid] for guid in guids if guid in ids]


_EPISODE_COLUMNS = ("title", "link", "published", "season", "episode_number", "episode_type", "duration",
                    "description", "notes_html", "notes_text", "enclosure_url", "enclosure_type",
                    "enclosure_length", "image", "chapters_url", "chapters_type")


def _upsert_episode(db, show_id: int, episode: EpisodeInfo) -> tuple[int, str]:
    """Insert or update one episode; returns (id, "new" | "changed" | "unchanged"). The columns of fields a
    producer set in the studio (archive/studio.py) are left as they are."""
    content_hash = episode.content_hash()
    rows = list(db.query("SELECT id, content_hash, producer_fields FROM episodes WHERE show_id = ? AND guid = ?",
                         [show_id, episode.guid]))
    if rows and rows[0]["content_hash"] == content_hash:
        return rows[0]["id"], "unchanged"
    now = utcnow()
    kept = feed_kept_columns(parse_producer_fields(rows[0]["producer_fields"])) if rows else set()
    values = {column: getattr(episode, column) for column in _EPISODE_COLUMNS if column not in kept}
    values.update(content_hash=content_hash, updated_at=now)
    if rows:
        episode_id, state = rows[0]["id"], "changed"
        db["episodes"].update(episode_id, values)
    else:
        episode_id = db["episodes"].insert({"show_id": show_id, "guid": episode.guid, "created_at": now,
                                            **values}).last_pk
        state = "new"
    _replace_episode_extras(db, episode_id, episode)
    return episode_id, state


def _replace_episode_extras(db, episode_id: int, episode: EpisodeInfo) -> None:
    for table in ("feed_transcripts", "soundbites", "feed_people"):
        db.execute(f"DELETE FROM {table} WHERE episode_id = ?", [episode_id])
    db["feed_transcripts"].insert_all(
        {"episode_id": episode_id, **asdict(t)} for t in _first_of_each(episode.transcripts, lambda t: t.url))
    db["soundbites"].insert_all(
        {"episode_id": episode_id, "start": s.start, "duration": s.duration, "title": s.title}
        for s in _first_of_each(episode.soundbites, lambda s: s.start))
    db["feed_people"].insert_all(
        {"episode_id": episode_id, "name": p.name, "role": p.role, "person_group": p.group, "href": p.href,
         "img": p.img}
        for p in _first_of_each(episode.people, lambda p: (p.name, p.role)))


def _first_of_each(items, key) -> list:
    """Items in order, keeping the first of those that share a key (the table's primary key)."""
    seen = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())
