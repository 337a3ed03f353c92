"""The raw pass over a feed's XML that reads the Podcasting 2.0 namespace (transcripts, chapters, people,
soundbites), which feedparser reads only in part.

Real feeds are not always well-formed XML: this pass recovers what it can and is allowed to find nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archive.records import PersonRef, TranscriptLink
from ingest.feed_values import parse_seconds, resolve_url, web_url
from ingest.feed_xml import parse_xml, split_tag

PODCAST_NAMESPACES = {
    "https://podcastindex.org/namespace/1.0",
    "https://github.com/Podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
    "https://github.com/podcastindex-org/podcast-namespace/blob/main/docs/1.0.md",
}
RSS1_NAMESPACE = "http://purl.org/rss/1.0/"
ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"


@dataclass
class Soundbite:
    start: float
    duration: float | None = None
    title: str | None = None


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
    root = parse_xml(content)
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
    local = split_tag(root.tag)[1]
    if local == "rss":
        channel = next((child for child in root if split_tag(child.tag)[1] == "channel"), None)
        return channel, _elements(root, "item", {None})
    if local == "RDF":  # RSS 1.0: items are siblings of the channel
        channel = next((child for child in root if split_tag(child.tag)[1] == "channel"), None)
        return channel, _elements(root, "item", {RSS1_NAMESPACE})
    if local == "feed":
        return root, _elements(root, "entry", {ATOM_NAMESPACE})
    return None, []


def _elements(root, name: str, namespaces: set) -> list:
    return [el for el in root.iter() if split_tag(el.tag) in {(ns, name) for ns in namespaces}]


def _is_podcast(element, name: str) -> bool:
    namespace, local = split_tag(element.tag)
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
                 if split_tag(c.tag)[1] in ("guid", "id") and not _is_podcast(c, "guid") and _text(c)), None)
    raw = RawItem(guid=guid, people=_people(item, base_url),
                  season=_first_text(item, "season"), episode=_first_text(item, "episode"))
    for element in _podcast_children(item, "transcript"):
        url = resolve_url(base_url, _attr(element, "url"))
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
            href=web_url(base_url, _attr(element, "href")),
            img=web_url(base_url, _attr(element, "img")),
            source="feed",
        ))
    return people
