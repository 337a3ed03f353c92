"""A show's episodes re-published as RSS 2.0 with the archive's transcripts, chapters and people
(Podcasting 2.0 namespace), so any podcast app can use what the archive made.

Built with xml.etree: every text and attribute is escaped by the serialiser; characters XML 1.0 cannot hold
(control characters) are dropped first, so no title breaks the feed. What the show's own feed said is re-published
only as the site shows it: descriptions and notes as sanitised HTML, links and images only when they are absolute
http(s) URLs, the enclosure as the feed gave it when it is one, else this site's copy of the audio.

A rendered feed is kept (FeedCache) until anything in the archive changes, and sent with an ETag, so a podcast
app polling a feed of a thousand episodes costs a lookup, or a 304.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import re
import sqlite3
import threading
import xml.etree.ElementTree as ET
from collections import OrderedDict

from flask import Blueprint, Flask, Response, current_app, request

from archive import queries
from archive.db import connect
from archive.sanitize import clean_notes, public_guid, public_url

from .db import get_db
from .filters import parse_iso, show_name
from .media import enclosure
from .urls import external_url, site_root

bp = Blueprint("show_feeds", __name__)

NAMESPACES = {
    "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
    "podcast": "https://podcastindex.org/namespace/1.0",
    "content": "http://purl.org/rss/1.0/modules/content/",
    "atom": "http://www.w3.org/2005/Atom",
}
NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
TRANSCRIPT_TYPES = (("vtt", "text/vtt", "captions"), ("srt", "application/x-subrip", "captions"),
                    ("json", "application/json", None), ("txt", "text/plain", None))


def xml_text(value) -> str:
    return NOT_XML.sub("", str(value))


def q(name: str) -> str:
    """'podcast:person' -> '{https://podcastindex.org/namespace/1.0}person'."""
    prefix, _, local = name.rpartition(":")
    return f"{{{NAMESPACES[prefix]}}}{local}" if prefix else name


def add(parent: ET.Element, name: str, text=None, **attributes) -> ET.Element:
    element = ET.SubElement(
        parent, q(name), {k: xml_text(v) for k, v in attributes.items() if v is not None}
    )
    if text is not None:
        element.text = xml_text(text)
    return element


def rfc822(value: str | None) -> str | None:
    parsed = parse_iso(value)
    return email.utils.format_datetime(parsed) if parsed else None


def add_person(parent: ET.Element, person: dict) -> None:
    """podcast:person; a person with no link of their own links to their page on this site."""
    href = public_url(person.get("href")) or (
        external_url("pages.guest", slug=person["slug"]) if person.get("slug") else None
    )
    add(parent, "podcast:person", person["name"], role=person.get("role") or None,
        group=person.get("person_group") or person.get("group") or None, href=href, img=public_url(person.get("img")))


def channel_people(show: dict) -> list[dict]:
    try:
        people = json.loads(show.get("people") or "[]")
    except ValueError:
        return []
    return [p for p in people if isinstance(p, dict) and p.get("name")]


def build_feed(db, show: dict, limit: int) -> ET.Element:
    for prefix, uri in NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    rss = ET.Element("rss", {"version": "2.0"})
    channel = add(rss, "channel")
    add(channel, "title", show_name(show))
    add(channel, "link", external_url("pages.show", show_id=show["id"]))
    add(channel, "description", clean_notes(show["description"]))
    add(channel, "atom:link", href=external_url("show_feeds.show_feed", show_id=show["id"]), rel="self",
        type="application/rss+xml")
    if show["language"]:
        add(channel, "language", show["language"])
    add(channel, "generator", "podarchive")
    if show["author"]:
        add(channel, "itunes:author", show["author"])
    if public_url(show["image"]):
        add(channel, "itunes:image", href=public_url(show["image"]))
    if show["podcast_guid"]:
        add(channel, "podcast:guid", show["podcast_guid"])
    for person in channel_people(show):
        add_person(channel, person)
    episodes = queries.list_episodes(db, show_id=show["id"], limit=limit)
    extras = item_extras(db, show["id"])
    people = queries.people_by_episode(db, [row["id"] for row in episodes])
    for row in episodes:
        add_item(channel, row, people[row["id"]], extras.get(row["id"], {}))
    return rss


def item_extras(db, show_id: int) -> dict[int, dict]:
    """Per episode of the show: notes, the enclosure's length, the stored audio, whether it has chapters, its
    transcript's language."""
    rows = db.query(
        "SELECT episodes.id, episodes.notes_html, episodes.enclosure_length, transcripts.language AS "
        "transcript_language, EXISTS (SELECT 1 FROM chapters WHERE chapters.episode_id = episodes.id) AS has_chapters, "
        "audio.path AS audio_path, audio.content_type AS audio_content_type, audio.bytes AS audio_bytes "
        "FROM episodes LEFT JOIN transcripts ON transcripts.episode_id = episodes.id "
        "LEFT JOIN audio ON audio.episode_id = episodes.id WHERE episodes.show_id = ?",
        [show_id],
    )
    return {row["id"]: row for row in rows}


def add_item(channel: ET.Element, row: dict, people: list[dict], extras: dict):
    item = add(channel, "item")
    guid = public_guid(row["guid"])
    add(item, "title", row["title"] or guid)
    add(item, "link", external_url("pages.episode", episode_id=row["id"]))
    add(item, "guid", guid, isPermaLink="false")
    published = rfc822(row["published"])
    if published:
        add(item, "pubDate", published)
    if row["description"]:
        add(item, "description", clean_notes(row["description"]))
    notes = clean_notes(extras.get("notes_html"))
    if notes:
        add(item, "content:encoded", notes)
    audio = {"path": extras["audio_path"], "content_type": extras["audio_content_type"],
             "bytes": extras["audio_bytes"]} if extras.get("audio_path") else None
    audio_file = enclosure({**row, "enclosure_length": extras.get("enclosure_length")}, audio)
    if audio_file:
        add(item, "enclosure", url=audio_file.url, type=audio_file.type, length=audio_file.length)
    if row["duration"]:
        add(item, "itunes:duration", int(round(row["duration"])))
    for field, tag in (("season", "itunes:season"), ("episode_number", "itunes:episode"),
                       ("episode_type", "itunes:episodeType")):
        if row[field] is not None:
            add(item, tag, row[field])
    if public_url(row["image"]):
        add(item, "itunes:image", href=public_url(row["image"]))
    if row["has_transcript"]:
        for fmt, mime, rel in TRANSCRIPT_TYPES:
            add(item, "podcast:transcript",
                url=external_url("exports.transcript", episode_id=row["id"], fmt=fmt), type=mime,
                language=extras.get("transcript_language"), rel=rel)
    if extras.get("has_chapters"):
        add(item, "podcast:chapters", url=external_url("exports.chapters", episode_id=row["id"]),
            type="application/json+chapters")
    for person in people:
        add_person(item, person)
    return item


class FeedCache:
    """Rendered feeds, each good while the archive is unchanged. The archive's version is SQLite's data_version,
    read on a connection kept for that alone: it moves whenever any other connection (an ingest, the CLI, another
    process) commits, so a write to any table a feed shows (or to any other) makes every kept feed stale. The
    version is read before a feed is rendered: a write during the render makes that feed stale, never a stale
    feed current. At most `size` feeds are kept, the least recently asked for go first."""

    def __init__(self, database: str, size: int = 32):
        self.database, self.size = database, size
        self.lock = threading.Lock()
        self.conn: sqlite3.Connection | None = None
        self.feeds: OrderedDict[tuple, tuple[int, str, bytes]] = OrderedDict()

    def version(self) -> int:
        with self.lock:
            if self.conn is None:
                self.conn = connect(self.database, readonly=True).conn
            return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def get(self, key: tuple, version: int) -> tuple[str, bytes] | None:
        with self.lock:
            kept = self.feeds.get(key)
            if kept is None or kept[0] != version:
                return None
            self.feeds.move_to_end(key)
            return kept[1], kept[2]

    def put(self, key: tuple, version: int, etag: str, body: bytes) -> None:
        with self.lock:
            self.feeds[key] = (version, etag, body)
            self.feeds.move_to_end(key)
            while len(self.feeds) > self.size:
                self.feeds.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.feeds.clear()


_CACHE_KEY = "podarchive.show_feeds"


def feed_cache(app: Flask) -> FeedCache:
    from . import app_extension

    return app_extension(app, _CACHE_KEY, lambda: FeedCache(app.config["DATABASE"]))


def forget_feeds(app: Flask) -> None:
    """Drop every kept feed (the benchmark's uncached figure)."""
    feed_cache(app).clear()


@bp.get("/shows/<int:show_id>/feed.xml")
def show_feed(show_id: int):
    app = current_app._get_current_object()
    cache = feed_cache(app)
    version = cache.version()
    limit = app.config["FEED_LIMIT"]
    key = (show_id, site_root(), limit)  # absolute URLs differ by the site's address
    kept = cache.get(key, version)
    if kept is None:
        db = get_db()
        body = ET.tostring(build_feed(db, queries.get_show(db, show_id), limit), encoding="utf-8",
                           xml_declaration=True)
        kept = (hashlib.sha256(body).hexdigest()[:32], body)
        cache.put(key, version, *kept)
    etag, body = kept
    response = Response(body, content_type="application/rss+xml; charset=utf-8")
    response.set_etag(etag)
    return response.make_conditional(request)
