"""A show's episodes re-published as RSS 2.0 with the archive's transcripts, chapters and people
(Podcasting 2.0 namespace), so any podcast app can use what the archive made.

Built with xml.etree: every text and attribute is escaped by the serialiser; characters XML 1.0 cannot hold
(control characters) are dropped first, so no title breaks the feed.
"""

from __future__ import annotations

import email.utils
import json
import re
import xml.etree.ElementTree as ET

from flask import Blueprint, Response, current_app, url_for

from archive import queries
from archive.sanitize import clean_notes

from .db import get_db
from .filters import parse_iso

bp = Blueprint("feeds", __name__)

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
    href = person.get("href") or (
        url_for("pages.guest", slug=person["slug"], _external=True) if person.get("slug") else None
    )
    add(parent, "podcast:person", person["name"], role=person.get("role") or None,
        group=person.get("person_group") or person.get("group") or None, href=href, img=person.get("img") or None)


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
    add(channel, "title", show["title"] or show["feed_url"])
    add(channel, "link", url_for("pages.show", show_id=show["id"], _external=True))
    add(channel, "description", show["description"] or "")
    add(channel, "atom:link", href=url_for("feeds.show_feed", show_id=show["id"], _external=True), rel="self",
        type="application/rss+xml")
    if show["language"]:
        add(channel, "language", show["language"])
    add(channel, "generator", "podarchive")
    if show["author"]:
        add(channel, "itunes:author", show["author"])
    if show["image"]:
        add(channel, "itunes:image", href=show["image"])
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
    """Per episode of the show: notes, whether it has chapters, its transcript's language."""
    rows = db.query(
        "SELECT episodes.id, episodes.notes_html, transcripts.language AS transcript_language, "
        "EXISTS (SELECT 1 FROM chapters WHERE chapters.episode_id = episodes.id) AS has_chapters "
        "FROM episodes LEFT JOIN transcripts ON transcripts.episode_id = episodes.id WHERE episodes.show_id = ?",
        [show_id],
    )
    return {row["id"]: row for row in rows}


def add_item(channel: ET.Element, row: dict, people: list[dict], extras: dict):
    item = add(channel, "item")
    add(item, "title", row["title"] or row["guid"])
    add(item, "link", url_for("pages.episode", episode_id=row["id"], _external=True))
    add(item, "guid", row["guid"], isPermaLink="false")
    published = rfc822(row["published"])
    if published:
        add(item, "pubDate", published)
    if row["description"]:
        add(item, "description", row["description"])
    notes = clean_notes(extras.get("notes_html"))
    if notes:
        add(item, "content:encoded", notes)
    if row["enclosure_url"]:
        add(item, "enclosure", url=row["enclosure_url"], type=row["enclosure_type"] or "audio/mpeg", length="0")
    if row["duration"]:
        add(item, "itunes:duration", int(round(row["duration"])))
    for field, tag in (("season", "itunes:season"), ("episode_number", "itunes:episode"),
                       ("episode_type", "itunes:episodeType")):
        if row[field] is not None:
            add(item, tag, row[field])
    if row["image"]:
        add(item, "itunes:image", href=row["image"])
    if row["has_transcript"]:
        for fmt, mime, rel in TRANSCRIPT_TYPES:
            add(item, "podcast:transcript",
                url=url_for("exports.transcript", episode_id=row["id"], fmt=fmt, _external=True), type=mime,
                language=extras.get("transcript_language"), rel=rel)
    if extras.get("has_chapters"):
        add(item, "podcast:chapters", url=url_for("exports.chapters", episode_id=row["id"], _external=True),
            type="application/json+chapters")
    for person in people:
        add_person(item, person)
    return item


@bp.get("/shows/<int:show_id>/feed.xml")
def show_feed(show_id: int):
    db = get_db()
    show = queries.get_show(db, show_id)
    rss = build_feed(db, show, current_app.config["FEED_LIMIT"])
    body = ET.tostring(rss, encoding="utf-8", xml_declaration=True)
    return Response(body, content_type="application/rss+xml; charset=utf-8")
