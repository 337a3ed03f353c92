"""The studio: episodes producers write or correct in podarchive, kept as drafts until they are published.

A producer edits the fields of `EpisodeFields` (title, numbers, date, guests, audio, notes in Markdown,
takeaways, chapters). Every write is validated first (`ValidationError` names the field), records which fields the
producer set (`episodes.producer_fields`: a feed read again, or the pipeline, leaves them alone from then on) and
a revision holding every editable field after the change, so `history` shows who changed what and `restore`
brings an old version back (as a new revision).

Only `state = 'published'` episodes are shown by the site, the API, the feeds, search and the CLI (see
archive/queries.py and archive/search.py). `publish` makes an episode visible now or schedules it
(`publish_due` publishes the scheduled ones whose time came); `unpublish` makes it a draft again.

No Flask here, and no model: `publish` takes the embedder the caller has (see `publish`).
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from .db import utcnow, write_transaction
from .episode_fields import (EDITABLE, MAX_NAME_CHARS, VALIDATORS, Chapter, EpisodeFields, Takeaway, check_notes,
                             check_title, check_text, to_utc_iso, validate_changes)
from .episode_indexing import index_for_search, index_if_published
from .errors import NotFoundError, ValidationError
from . import work_queue
from .people import upsert_person
from .sanitize import notes_plain_text, public_url, render_markdown

__all__ = [
    "EDITABLE", "EpisodeFields", "Takeaway", "Chapter", "create_show", "create_episode", "update_episode",
    "studio_episode", "list_studio_episodes", "publish", "unpublish", "publish_due", "history",
    "restore", "producer_fields", "parse_producer_fields", "feed_kept_columns", "list_studio_shows",
]

DRAFT, SCHEDULED, PUBLISHED = "draft", "scheduled", "published"
TRANSCRIBING, FAILED = "transcribing", "failed"  # what `list_studio_episodes` says of an episode the pipeline has
PRODUCER, FEED = "producer", "feed"  # where a field's value comes from (FEED: the feed, or what the pipeline made)

# Editable field -> the episodes columns it writes: once a producer set the field, the feed leaves them alone.
# guests, takeaways and chapters are rows of their own tables (source 'producer').
FIELD_COLUMNS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "episode_number": ("episode_number",),
    "season": ("season",),
    "published": ("published",),
    "audio_url": ("enclosure_url", "enclosure_type", "enclosure_length"),
    "notes_markdown": ("notes_markdown", "notes_html", "notes_text"),
}
TRANSCRIPT_STAGES = ("transcript", "audio", "transcribe")  # the pipeline's stages that make a transcript


# -- reading ------------------------------------------------------------------------------------------------

def _episode_row(db: sqlite_utils.Database, episode_id: int) -> dict:
    rows = list(db.query(
        "SELECT episodes.*, shows.title AS show_title, shows.hosted AS show_hosted FROM episodes "
        "JOIN shows ON shows.id = episodes.show_id WHERE episodes.id = ?", [episode_id]))
    if not rows:
        raise NotFoundError(f"no episode with id {episode_id}")
    return rows[0]


def parse_producer_fields(value: str | None) -> list[str]:
    try:
        names = json.loads(value or "[]")
    except ValueError:
        return []
    return [name for name in names if name in EDITABLE] if isinstance(names, list) else []


def producer_fields(db: sqlite_utils.Database, episode_id: int) -> set[str]:
    """The editable fields a producer set on this episode (the feed and the pipeline leave them alone)."""
    row = db.execute("SELECT producer_fields FROM episodes WHERE id = ?", [episode_id]).fetchone()
    return set(parse_producer_fields(row[0])) if row else set()


def feed_kept_columns(fields: set[str] | list[str]) -> set[str]:
    """The episodes columns a feed must not write once a producer set these fields."""
    return {column for name in fields for column in FIELD_COLUMNS.get(name, ())}


def _current(db: sqlite_utils.Database, row: dict) -> dict:
    """Every editable field of an episode as stored, with state, publish_at and producer_fields: a snapshot."""
    episode_id = row["id"]
    guests = [r[0] for r in db.execute(
        "SELECT people.name FROM episode_people JOIN people ON people.id = episode_people.person_id "
        "WHERE episode_people.episode_id = ? AND episode_people.role = 'guest' ORDER BY people.name COLLATE NOCASE",
        [episode_id])]
    takeaways = [{"title": r[0], "text": r[1], "start": r[2]} for r in db.execute(
        "SELECT title, text, start FROM takeaways WHERE episode_id = ? ORDER BY idx", [episode_id])]
    chapters = [{"title": r[0], "start": r[1]} for r in db.execute(
        "SELECT title, start FROM chapters WHERE episode_id = ? ORDER BY start, idx", [episode_id])]
    return {
        "title": row["title"],
        "episode_number": row["episode_number"],
        "season": row["season"],
        "published": row["published"],
        "guests": guests,
        "audio_url": row["enclosure_url"],
        "notes_markdown": row["notes_markdown"],
        "takeaways": takeaways,
        "chapters": chapters,
        "notes_html": row["notes_html"],  # what a restore brings back when there was no Markdown (a feed's notes)
        "notes_text": row["notes_text"],
        "state": row["state"],
        "publish_at": row["publish_at"],
        "producer_fields": parse_producer_fields(row["producer_fields"]),
    }


def _last_change(db: sqlite_utils.Database, episode_id: int) -> dict | None:
    rows = list(db.query(
        "SELECT id, at, action, producer_id, producer_name, changed FROM episode_revisions WHERE episode_id = ? "
        "ORDER BY id DESC LIMIT 1", [episode_id]))
    return _change_summary(rows[0]) if rows else None


def _change_summary(row: dict) -> dict:
    return {"revision_id": row["id"], "at": row["at"], "action": row["action"], "producer_id": row["producer_id"],
            "producer_name": row["producer_name"], "changed": json.loads(row["changed"] or "[]")}


def studio_episode(db: sqlite_utils.Database, episode_id: int) -> dict:
    """One episode as the studio edits it, drafts included; NotFoundError when absent. A dict: id, show_id,
    show_title, hosted, guid; fields (every editable field: title, episode_number, season, published, guests
    [names], audio_url, notes_markdown, takeaways [{title, text, start}], chapters [{title, start}]); sources
    ({field: "producer" | "feed"}, "feed" meaning the feed or what the pipeline made); producer_fields; state
    (draft, scheduled, published); publish_at; notes_html (raw: sanitise on display); description; duration;
    has_transcript; pipeline ({status: "transcribing" | "failed" | None, errors: {stage: last error}});
    last_change ({revision_id, at, action, producer_id, producer_name, changed} or None); updated_at."""
    row = _episode_row(db, episode_id)
    current = _current(db, row)
    mine = set(current["producer_fields"])
    return {
        "id": row["id"],
        "show_id": row["show_id"],
        "show_title": row["show_title"],
        "hosted": bool(row["show_hosted"]),
        "guid": row["guid"],
        "fields": {name: current[name] for name in EDITABLE},
        "sources": {name: PRODUCER if name in mine else FEED for name in EDITABLE},
        "producer_fields": current["producer_fields"],
        "state": row["state"],
        "publish_at": row["publish_at"],
        "notes_html": row["notes_html"],  # sanitised on display (clean_notes): a feed's notes are raw
        "description": row["description"],
        "duration": row["duration"],
        "has_transcript": _has_transcript(db, episode_id),
        "pipeline": _pipeline_state(db, [episode_id]).get(episode_id, {"status": None, "errors": {}}),
        "last_change": _last_change(db, episode_id),
        "updated_at": row["updated_at"],
    }


def _has_transcript(db, episode_id: int) -> bool:
    return db.execute("SELECT 1 FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone() is not None


def _pipeline_state(db, episode_ids: list[int] | None) -> dict[int, dict]:
    """Per episode: status TRANSCRIBING (a transcript stage is running, or the site queued the episode for the
    worker) or FAILED (a transcript stage failed), else None; and the last error of every failed stage."""
    where, params = "", []
    if episode_ids is not None:
        where, params = " AND episode_id IN (SELECT value FROM json_each(?))", [json.dumps(episode_ids)]
    found: dict[int, dict] = {}
    for episode_id, stage, state, error in db.execute(
            f"SELECT episode_id, stage, state, last_error FROM stages WHERE state IN ('running', 'failed'){where}",
            params):
        entry = found.setdefault(episode_id, {"status": None, "errors": {}})
        if state == "failed":
            entry["errors"][stage] = error
            if stage in TRANSCRIPT_STAGES:
                entry["status"] = FAILED
        elif stage in TRANSCRIPT_STAGES and entry["status"] is None:
            entry["status"] = TRANSCRIBING
    # archive/work_queue.py: published with audio, waiting for the worker
    for (episode_id,) in db.execute(f"SELECT episode_id FROM work_queue WHERE 1{where}", params):
        entry = found.setdefault(episode_id, {"status": None, "errors": {}})
        entry["status"] = entry["status"] or TRANSCRIBING
    return found


def list_studio_episodes(db: sqlite_utils.Database, show_ids: list[int] | None = None) -> list[dict]:
    """The episodes of these shows (every show: None), drafts first, then scheduled (soonest first), then
    published (newest first). Each a dict: id, show_id, show_title, guid, title, state (stored: draft,
    scheduled, published), status (the state, or "transcribing" / "failed" when the pipeline's transcript
    stages say so), errors ({stage: last error}), publish_at, published, has_transcript, producer_fields,
    last_change (as in `studio_episode`), updated_at."""
    where, params = "", []
    if show_ids is not None:
        where, params = " WHERE e.show_id IN (SELECT value FROM json_each(?))", [json.dumps(list(show_ids))]
    rows = list(db.query(
        "SELECT e.id, e.show_id, s.title AS show_title, e.guid, e.title, e.state, e.publish_at, e.published, "
        "e.updated_at, e.producer_fields, EXISTS (SELECT 1 FROM transcripts t WHERE t.episode_id = e.id) AS "
        "has_transcript, r.id AS revision_id, r.at AS revision_at, r.action AS revision_action, "
        "r.producer_id AS revision_producer_id, r.producer_name AS revision_producer_name, "
        "r.changed AS revision_changed FROM episodes e JOIN shows s ON s.id = e.show_id "
        "LEFT JOIN episode_revisions r ON r.id = (SELECT max(id) FROM episode_revisions WHERE episode_id = e.id)"
        f"{where} ORDER BY e.state != 'draft', e.state != 'scheduled', "
        "CASE WHEN e.state = 'scheduled' THEN e.publish_at END, e.published IS NULL, e.published DESC, e.id DESC",
        params))
    pipeline = _pipeline_state(db, None if show_ids is None else [row["id"] for row in rows])
    episodes = []
    for row in rows:
        state = pipeline.get(row["id"], {"status": None, "errors": {}})
        last = None
        if row["revision_id"] is not None:
            last = _change_summary({"id": row["revision_id"], "at": row["revision_at"],
                                    "action": row["revision_action"], "producer_id": row["revision_producer_id"],
                                    "producer_name": row["revision_producer_name"],
                                    "changed": row["revision_changed"]})
        episodes.append({
            "id": row["id"], "show_id": row["show_id"], "show_title": row["show_title"], "guid": row["guid"],
            "title": row["title"], "state": row["state"], "status": state["status"] or row["state"],
            "errors": state["errors"], "publish_at": row["publish_at"], "published": row["published"],
            "has_transcript": bool(row["has_transcript"]),
            "producer_fields": parse_producer_fields(row["producer_fields"]),
            "last_change": last, "updated_at": row["updated_at"],
        })
    return episodes


def list_studio_shows(db: sqlite_utils.Database, show_ids: list[int] | None = None) -> list[dict]:
    """These shows (every show: None), by title, drafts and hosted shows with no published episode included.
    Each a dict: id, title, hosted, feed_url (None for a hosted show), episodes, drafts, scheduled, published
    (counts of its episodes)."""
    where, params = "", []
    if show_ids is not None:
        where, params = " WHERE s.id IN (SELECT value FROM json_each(?))", [json.dumps(list(show_ids))]
    rows = list(db.query(
        "SELECT s.id, s.title, s.hosted, s.feed_url, COUNT(e.id) AS episodes, "
        "COALESCE(SUM(e.state = 'draft'), 0) AS drafts, COALESCE(SUM(e.state = 'scheduled'), 0) AS scheduled, "
        "COALESCE(SUM(e.state = 'published'), 0) AS published FROM shows s "
        f"LEFT JOIN episodes e ON e.show_id = s.id{where} GROUP BY s.id ORDER BY s.title COLLATE NOCASE, s.id",
        params))
    for row in rows:
        row["hosted"] = bool(row["hosted"])
        if row["hosted"]:
            row["feed_url"] = None
    return rows


# -- writing ------------------------------------------------------------------------------------------------

def _who(producer) -> tuple[int | None, str | None]:
    return getattr(producer, "id", None), getattr(producer, "name", None)


def _revision(db, episode_id: int, producer, action: str, changed: list[str], snapshot: dict,
              restored_from: int | None = None) -> int:
    producer_id, producer_name = _who(producer)
    return db["episode_revisions"].insert({
        "episode_id": episode_id, "producer_id": producer_id, "producer_name": producer_name, "at": utcnow(),
        "action": action, "restored_from": restored_from, "changed": json.dumps(changed),
        "snapshot": json.dumps(snapshot, ensure_ascii=False),
    }).last_pk


def _write(db, row: dict, values: dict[str, Any], feed_notes: tuple[str | None, str | None] | None = None) -> None:
    """Store validated values (an episode's fields) in the episode's row and tables. `feed_notes` (html, text):
    the notes a restore brings back where there was no Markdown."""
    episode_id, now = row["id"], utcnow()
    columns: dict[str, Any] = {}
    for name in ("title", "episode_number", "season", "published"):
        if name in values:
            columns[name] = values[name]
    if "notes_markdown" in values:
        notes = values["notes_markdown"]
        notes_html = render_markdown(notes) if notes else ""
        columns.update(notes_markdown=notes, notes_html=notes_html or None,
                       notes_text=notes_plain_text(notes_html) or None)
        if not notes and feed_notes:
            columns.update(notes_html=feed_notes[0], notes_text=feed_notes[1])
    if "audio_url" in values:
        columns.update(_audio_columns(db, episode_id, values["audio_url"]))
    if columns:
        columns["updated_at"] = now
        db["episodes"].update(episode_id, columns)
    if "guests" in values:
        _write_guests(db, episode_id, values["guests"])
    if "takeaways" in values:
        _write_takeaways(db, episode_id, values["takeaways"])
    if "chapters" in values:
        _write_chapters(db, episode_id, values["chapters"], row["duration"])


def _audio_columns(db, episode_id: int, url: str | None) -> dict:
    """enclosure_* for the audio; a stored upload also becomes the episode's `audio` row (the site serves it)."""
    previous = db.execute("SELECT url, path FROM audio WHERE episode_id = ?", [episode_id]).fetchone()
    if previous and previous[0] == previous[1]:  # the last upload: no longer the episode's audio
        db.execute("DELETE FROM audio WHERE episode_id = ?", [episode_id])
    if url is None:
        return {"enclosure_url": None, "enclosure_type": None, "enclosure_length": None}
    kind = mimetypes.guess_type(url.split("?", 1)[0])[0]
    kind = kind if kind and kind.startswith(("audio/", "video/")) else None
    if public_url(url):
        return {"enclosure_url": url, "enclosure_type": kind or "audio/mpeg", "enclosure_length": None}
    path = Path(url)
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    db["audio"].upsert({"episode_id": episode_id, "url": url, "path": url, "content_type": kind or "audio/mpeg",
                        "bytes": size, "sha256": digest.hexdigest(), "downloaded_at": utcnow()}, pk="episode_id")
    return {"enclosure_url": url, "enclosure_type": kind or "audio/mpeg", "enclosure_length": size}


def _write_guests(db, episode_id: int, names: list[str]) -> None:
    db.execute("DELETE FROM episode_people WHERE episode_id = ? AND role = 'guest'", [episode_id])
    for name in names:
        person_id = upsert_person(db, name)
        db["episode_people"].insert({"episode_id": episode_id, "person_id": person_id, "role": "guest",
                                     "person_group": None, "source": PRODUCER},
                                    pk=("episode_id", "person_id", "role"), replace=True)


def _write_takeaways(db, episode_id: int, takeaways: list[dict]) -> None:
    """Replace the takeaways; one the producer left as it was keeps its source and end, the others are theirs."""
    before = {(r["title"], r["text"], r["start"]): r for r in db.query(
        "SELECT title, text, start, end, source FROM takeaways WHERE episode_id = ?", [episode_id])}
    rows = []
    for i, item in enumerate(takeaways):
        kept = before.get((item["title"], item["text"], item["start"]))
        rows.append({"episode_id": episode_id, "idx": i, "title": item["title"], "text": item["text"],
                     "start": item["start"], "end": kept["end"] if kept else None,
                     "source": kept["source"] if kept else PRODUCER})
    db.execute("DELETE FROM takeaways WHERE episode_id = ?", [episode_id])
    if rows:
        db["takeaways"].insert_all(rows)


def _write_chapters(db, episode_id: int, chapters: list[dict], duration: float | None) -> None:
    """Replace the chapters, each ending where the next begins; one left as it was keeps its source, link and
    picture."""
    before = {(r["title"], r["start"]): r for r in db.query(
        "SELECT title, start, url, image, source FROM chapters WHERE episode_id = ?", [episode_id])}
    rows = []
    for i, item in enumerate(chapters):
        kept = before.get((item["title"], item["start"]))
        end = chapters[i + 1]["start"] if i + 1 < len(chapters) else duration
        rows.append({"episode_id": episode_id, "idx": i, "title": item["title"], "start": item["start"],
                     "end": end if end is not None and end > item["start"] else None,
                     "url": kept["url"] if kept else None, "image": kept["image"] if kept else None,
                     "source": kept["source"] if kept else PRODUCER})
    db.execute("DELETE FROM chapters WHERE episode_id = ?", [episode_id])
    if rows:
        db["chapters"].insert_all(rows)


def _changed(current: dict, values: dict) -> list[str]:
    return [name for name in EDITABLE if name in values and values[name] != current[name]]


def _edit(db, episode_id: int, values: dict, producer, action: str, restored_from: int | None = None,
          feed_notes: tuple[str | None, str | None] | None = None, owned: set[str] | None = None) -> None:
    """Apply validated values as the producer's edit, inside the caller's transaction: the fields it changes
    become the producer's (or, with `owned`, exactly those fields are)."""
    row = _episode_row(db, episode_id)
    current = _current(db, row)
    changed = _changed(current, values)
    if feed_notes and "notes_markdown" not in changed and feed_notes != (row["notes_html"], row["notes_text"]):
        changed = [name for name in EDITABLE if name in changed or name == "notes_markdown"]
    if owned is None:
        owned = set(current["producer_fields"]) | set(changed)
    mine = [name for name in EDITABLE if name in owned]
    if not changed and mine == current["producer_fields"]:
        return
    if db.execute("SELECT 1 FROM episode_revisions WHERE episode_id = ?", [episode_id]).fetchone() is None:
        _revision(db, episode_id, None, "feed", [], current)  # the episode as it was: history's first diff
    _write(db, row, {name: values[name] for name in changed}, feed_notes)
    db["episodes"].update(episode_id, {"producer_fields": json.dumps(mine)})
    _revision(db, episode_id, producer, action, changed, _current(db, _episode_row(db, episode_id)),
              restored_from)


def update_episode(db: sqlite_utils.Database, episode_id: int, changes: dict[str, Any], producer,
                   embedder=None) -> dict:
    """Change some of an episode's editable fields (a dict: field name -> new value; None clears). Fields whose
    value does not change are ignored; the others become the producer's (the feed no longer writes them) and
    make one revision. A published episode's new notes and takeaways are embedded with `embedder` when one is
    given (`index_for_search`), so search by meaning finds them at once. Returns `studio_episode`. Raises
    NotFoundError, NotEditableError, ValidationError."""
    values = validate_changes(changes)
    with write_transaction(db):
        _edit(db, episode_id, values, producer, "edit")
    index_if_published(db, episode_id, embedder)
    return studio_episode(db, episode_id)


def create_show(db: sqlite_utils.Database, title: str, description: str | None = None, *,
                language: str | None = None, author: str | None = None, link: str | None = None,
                image: str | None = None) -> int:
    """A show made in podarchive (`hosted`), with no source feed: its feed_url is `podarchive:show/<uuid>`.
    Its page and re-published feed appear once it has a published episode. Returns its id."""
    title = check_title(title, "title")
    description = check_notes(description, "description")
    for name, value in (("link", link), ("image", image)):
        if value not in (None, "") and public_url(value) is None:
            raise ValidationError(name, "must be an http or https URL")
    now = utcnow()
    with write_transaction(db):
        return db["shows"].insert({
            "feed_url": f"podarchive:show/{uuid.uuid4()}", "title": title, "description": description,
            "language": check_text(language, "language", 35),
            "author": check_text(author, "author", MAX_NAME_CHARS),
            "link": public_url(link), "image": public_url(image), "hosted": 1, "created_at": now,
            "updated_at": now,
        }).last_pk


def create_episode(db: sqlite_utils.Database, show_id: int, fields: EpisodeFields | dict, producer) -> int:
    """A new draft in a show (hosted or not), with a guid of its own (`podarchive:<uuid>`); the fields given
    (not None, not empty) are the producer's. Returns its id. Raises NotFoundError, ValidationError."""
    given = asdict(fields) if isinstance(fields, EpisodeFields) else dict(fields or {})
    values = {name: value for name, value in validate_changes(given).items() if value is not None and value != []}
    if "title" not in values:
        raise ValidationError("title", "is required")
    now = utcnow()
    with write_transaction(db):
        if db.execute("SELECT 1 FROM shows WHERE id = ?", [show_id]).fetchone() is None:
            raise NotFoundError(f"no show with id {show_id}")
        episode_id = db["episodes"].insert({
            "show_id": show_id, "guid": f"podarchive:{uuid.uuid4()}", "title": values["title"], "state": DRAFT,
            "producer_fields": "[]", "created_at": now, "updated_at": now,
        }).last_pk
        row = _episode_row(db, episode_id)
        _write(db, row, values)
        mine = [name for name in EDITABLE if name in values]
        db["episodes"].update(episode_id, {"producer_fields": json.dumps(mine)})
        _revision(db, episode_id, producer, "create", mine, _current(db, _episode_row(db, episode_id)))
    return episode_id


# -- publishing ---------------------------------------------------------------------------------------------

def _now(now=None) -> str:
    return to_utc_iso(now, "now") if now is not None else utcnow()


def publish(db: sqlite_utils.Database, episode_id: int, producer, at=None, embedder=None) -> dict:
    """Publish an episode now, or schedule it when `at` (a datetime, date or ISO text; naive = UTC) is in the
    future (`publish_due` publishes it then). An episode without a date gets the time it is published.

    Published now, it is searchable at once: its notes and takeaways are in the FTS5 tables already (triggers
    keep them as rows are written), the side indexes of a large archive hold drafts too and every search leaves
    out what is not published, and with `embedder` (archive.embeddings.Embedder) its takeaways and notes are
    embedded for search by meaning, with any passage that has no vector yet (none, unless the pipeline was
    interrupted). Returns a dict: episode_id, state, publish_at, published, needs_transcript (published with
    audio and no transcript: the caller may queue it), search (`index_for_search`, when published now) and
    seconds (the time it all took)."""
    started = time.perf_counter()
    when = to_utc_iso(at, "at") if at is not None else None
    with write_transaction(db):
        row = _episode_row(db, episode_id)
        if when is not None and when > utcnow():
            _set_state(db, row, SCHEDULED, when, producer, "schedule")
        else:
            _set_state(db, row, PUBLISHED, None, producer, "publish", dated=utcnow())
    result = _published_result(db, episode_id)
    if result["state"] == PUBLISHED:
        result["search"] = index_for_search(db, episode_id, embedder)
    _queue_if_untranscribed(db, result)
    result["seconds"] = round(time.perf_counter() - started, 4)
    return result


def _queue_if_untranscribed(db, result: dict) -> None:
    """A published episode with audio and no transcript goes to the background worker (ingest/worker.py)."""
    if result["needs_transcript"]:
        work_queue.queue_episode(db, result["episode_id"])


def _set_state(db, row: dict, state: str, publish_at: str | None, producer, action: str,
               dated: str | None = None) -> None:
    """Move an episode to `state`, with a revision when anything changed; `dated`: its date if it has none."""
    columns: dict[str, Any] = {"state": state, "publish_at": publish_at, "updated_at": utcnow()}
    if dated and not row["published"]:
        columns["published"] = dated
    before = _current(db, row)
    db["episodes"].update(row["id"], columns)
    after = _current(db, _episode_row(db, row["id"]))
    changed = [name for name in ("state", "publish_at", "published") if before[name] != after[name]]
    if changed:
        _revision(db, row["id"], producer, action, changed, after)


def _published_result(db, episode_id: int) -> dict:
    row = _episode_row(db, episode_id)
    has_audio = bool(row["enclosure_url"]) or db.execute(
        "SELECT 1 FROM audio WHERE episode_id = ?", [episode_id]).fetchone() is not None
    return {"episode_id": episode_id, "state": row["state"], "publish_at": row["publish_at"],
            "published": row["published"],
            "needs_transcript": row["state"] == PUBLISHED and has_audio and not _has_transcript(db, episode_id)}


def unpublish(db: sqlite_utils.Database, episode_id: int, producer) -> dict:
    """Make an episode (published or scheduled) a draft again: gone from the site, feeds and search at once.
    Returns the dict of `publish`, without search and seconds."""
    with write_transaction(db):
        _set_state(db, _episode_row(db, episode_id), DRAFT, None, producer, "unpublish")
    work_queue.dequeue_episode(db, episode_id)
    return _published_result(db, episode_id)


@dataclass(frozen=True)
class _Schedule:
    """Who a revision names when `publish_due` publishes a scheduled episode."""

    id: int | None = None
    name: str = "schedule"


def publish_due(db: sqlite_utils.Database, now=None, embedder=None) -> list[int]:
    """Publish every scheduled episode whose time came (`now`: default the present). Each gets its scheduled
    time as its date when it had none. Returns their ids."""
    when = _now(now)
    due = [r[0] for r in db.execute(
        "SELECT id FROM episodes WHERE state = 'scheduled' AND publish_at <= ? ORDER BY publish_at, id", [when])]
    published = []
    for episode_id in due:
        with write_transaction(db):
            row = _episode_row(db, episode_id)
            if row["state"] != SCHEDULED or not row["publish_at"] or row["publish_at"] > when:
                continue  # unpublished or moved meanwhile
            _set_state(db, row, PUBLISHED, None, _Schedule(), "publish", dated=row["publish_at"])
        index_for_search(db, episode_id, embedder)
        _queue_if_untranscribed(db, _published_result(db, episode_id))
        published.append(episode_id)
    return published


# -- history ------------------------------------------------------------------------------------------------

def history(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    """Every revision of an episode, newest first. Each a dict: revision_id, at, action (feed: the episode as it
    was before its first edit; create, edit, restore, schedule, publish, unpublish), producer_id, producer_name,
    changed (field names), restored_from (a restore's revision), diff ({field: {before, after}} against the
    revision before it) and snapshot (every editable field after it, with state, publish_at,
    producer_fields)."""
    _episode_row(db, episode_id)
    rows = list(db.query("SELECT * FROM episode_revisions WHERE episode_id = ? ORDER BY id", [episode_id]))
    revisions, previous = [], None
    for row in rows:
        snapshot = json.loads(row["snapshot"])
        changed = json.loads(row["changed"] or "[]")
        diff = {name: {"before": previous.get(name) if previous else None, "after": snapshot.get(name)}
                for name in changed}
        revisions.append({**_change_summary(row), "restored_from": row["restored_from"], "diff": diff,
                          "snapshot": snapshot})
        previous = snapshot
    return revisions[::-1]


def restore(db: sqlite_utils.Database, episode_id: int, revision_id: int, producer, embedder=None) -> dict:
    """Bring an episode back to a revision, as a new revision: the fields the producer had set then get the
    values they had (and stay the producer's); the fields the producer set since go back to what the feed (or
    the pipeline) had given then, and to the feed's and the pipeline's care. The other fields, and the
    publication state, are left as they are; a published episode is embedded again as by `update_episode`.
    Returns `studio_episode`. NotFoundError for a revision of another episode."""
    with write_transaction(db):
        row = db.execute("SELECT snapshot FROM episode_revisions WHERE id = ? AND episode_id = ?",
                         [revision_id, episode_id]).fetchone()
        if row is None:
            raise NotFoundError(f"episode {episode_id} has no revision {revision_id}")
        snapshot = json.loads(row[0])
        owned = set(parse_producer_fields(json.dumps(snapshot.get("producer_fields") or [])))
        restored = owned | producer_fields(db, episode_id)
        values = {}
        for name in EDITABLE:
            if name not in snapshot or name not in restored:
                continue
            try:
                values[name] = VALIDATORS[name](snapshot[name], name)
            except ValidationError:
                if name == "audio_url":
                    continue  # an upload that is gone: the episode keeps the audio it has
                values[name] = snapshot[name]  # as the feed had it (an untitled episode, a long takeaway)
        feed_notes = None
        if "notes_markdown" in values and not snapshot.get("notes_markdown") and snapshot.get("notes_html"):
            feed_notes = (snapshot["notes_html"], snapshot.get("notes_text"))
        _edit(db, episode_id, values, producer, "restore", restored_from=revision_id, feed_notes=feed_notes,
              owned=owned)
    index_if_published(db, episode_id, embedder)
    return studio_episode(db, episode_id)
