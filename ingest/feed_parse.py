"""Feed bytes -> typed show and episodes (ParsedFeed), with feedparser for the main fields.

feedparser keeps only the last `podcast:transcript` of an item, drops the text of `podcast:person` and
`podcast:soundbite` and lowercases attribute names, so a second, raw XML pass over the same bytes
(ingest/podcast_namespace.py) reads the Podcasting 2.0 namespace; this module joins the two.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import asdict, dataclass, field

import feedparser

from archive.errors import FeedParseError
from archive.records import PersonRef, TranscriptLink
from ingest.feed_values import (
    fetchable_url,
    first_positive_int,
    html_to_text,
    iso_date,
    parse_duration,
    parse_int,
    resolve_url,
    tidy_feed_text,
    url_basename,
    web_url,
)
from ingest.feed_xml import without_leading_whitespace
from ingest.podcast_namespace import RawFeed, RawItem, Soundbite, read_podcast_namespace

EPISODE_TYPES = {"full", "trailer", "bonus"}


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


def parse_feed(content: bytes, base_url: str) -> ParsedFeed:
    """Typed show and episodes from feed bytes. Relative URLs resolve against `base_url`.

    Raises FeedParseError when the bytes are not a feed at all. A bad item is skipped and reported in
    `item_errors`; the rest of the feed is kept.
    """
    content = without_leading_whitespace(content)
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


def _match_raw_items(entries, raw_items: list[RawItem]) -> list[RawItem | None]:
    """Pair feedparser's entries with the raw pass's items: by position when both saw the same number, else by guid."""
    if len(entries) == len(raw_items):
        return list(raw_items)
    by_guid: dict[str, RawItem] = {}
    for item in raw_items:
        if item.guid:
            by_guid.setdefault(item.guid, item)
    return [by_guid.get(tidy_feed_text(entry.get("id")) or "") for entry in entries]


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
        title=tidy_feed_text(feed.get("title")),
        link=web_url(base_url, _channel_link(feed)),
        description=tidy_feed_text(feed.get("subtitle") or feed.get("summary")),
        language=tidy_feed_text(feed.get("language")),
        author=tidy_feed_text((feed.get("author_detail") or {}).get("name") or feed.get("author")),
        image=fetchable_url(base_url, image),
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
    title = tidy_feed_text(entry.get("title"))
    if not title and enclosure.url:
        title = url_basename(enclosure.url)
    published = iso_date(entry.get("published_parsed") or entry.get("updated_parsed"))
    notes_html = _notes_html(entry)
    chapters = raw.chapters or _feedparser_chapters(entry)
    return EpisodeInfo(
        guid=_guid(entry, enclosure.url, title, published),
        title=title,
        link=web_url(base_url, entry.get("link")),
        published=published,
        season=first_positive_int(entry.get("itunes_season"), raw.season),
        episode_number=first_positive_int(entry.get("itunes_episode"), raw.episode),
        episode_type=_episode_type(entry.get("itunes_episodetype")),
        duration=parse_duration(entry.get("itunes_duration")),
        description=tidy_feed_text(entry.get("summary")),
        notes_html=notes_html,
        notes_text=html_to_text(notes_html) if notes_html else None,
        enclosure_url=enclosure.url,
        enclosure_type=enclosure.type,
        enclosure_length=enclosure.length,
        image=fetchable_url(base_url, _episode_image(entry)),
        chapters_url=resolve_url(base_url, chapters[0]) if chapters else None,
        chapters_type=chapters[1] if chapters else None,
        transcripts=raw.transcripts or _feedparser_transcripts(entry, base_url),
        people=raw.people,
        soundbites=raw.soundbites,
    )


def _guid(entry, enclosure_url: str | None, title: str | None, published: str | None) -> str:
    guid = tidy_feed_text(entry.get("id"))
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
        _Enclosure(resolve_url(base_url, e.get("href")), tidy_feed_text(e.get("type")), _length(e.get("length")))
        for e in entry.get("enclosures") or []
    ] + [
        _Enclosure(resolve_url(base_url, m.get("url")), tidy_feed_text(m.get("type")), _length(m.get("filesize")))
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
    return [TranscriptLink(url=resolve_url(base_url, transcript["url"]), type=transcript.get("type"),
                           language=transcript.get("language"), rel=transcript.get("rel"))]
