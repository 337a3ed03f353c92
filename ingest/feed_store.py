"""Saving feeds: upsert a parsed feed's show and episodes, record fetch errors, read the state a conditional
GET needs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import sqlite_utils

from archive.db import utcnow, write_transaction
from archive.errors import FeedError
from archive.studio import feed_kept_columns, parse_producer_fields
from ingest.feed_fetch import FetchedFeed
from ingest.feed_parse import EpisodeInfo, ParsedFeed, ShowInfo
from ingest.sources import canonical_feed_url


@dataclass
class SavedFeed:
    show_id: int
    new: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)


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
