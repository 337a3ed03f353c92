"""Small archives for the index and search tests: real DataTalks.Club transcripts, cut short, stored the way the
pipeline stores them (transcript -> segments -> passages), then embedded (archive/vectors.py) and put in FTS."""

from __future__ import annotations

import hashlib
import json

from conftest import SHARED

from archive.fts_tables import ensure_fts
from archive.passages import load_passage_rows, make_passages, save_passages
from archive.records import Segment, TranscriptSource
from archive.transcript_store import save_transcript
from archive.vectors import ensure_embeddings
from ingest.transcript_files import parse_transcript

DTC = SHARED / "corpus" / "datatalksclub_podcast"


def add_show(db, title: str, feed_url: str | None = None) -> int:
    return db["shows"].insert({"title": title, "feed_url": feed_url or f"https://example.com/{title}.xml"}).last_pk


def add_episode(db, show_id: int, guid: str, title: str, published: str | None = None, notes: str = "") -> int:
    return db["episodes"].insert({"show_id": show_id, "guid": guid, "title": title, "published": published,
                                  "notes_text": notes}).last_pk


def add_segments(db, episode_id: int, segments: list[Segment]) -> list[dict]:
    """Store a transcript and its passages (as the pipeline's passages stage does). Returns passage rows."""
    digest = hashlib.sha256(json.dumps([s.text for s in segments]).encode()).hexdigest()
    save_transcript(db, episode_id, segments, TranscriptSource(source="feed", format="json", content_hash=digest))
    save_passages(db, episode_id, make_passages(segments))
    return load_passage_rows(db, episode_id)


def dtc_segments(slug: str, until: float) -> list[Segment]:
    """A DataTalks.Club transcript up to `until` seconds."""
    data = (DTC / "transcripts" / f"{slug}.json").read_bytes()
    return [s for s in parse_transcript(data, "application/json") if s.start < until]


def add_person(db, episode_id: int, name: str, slug: str, role: str = "guest") -> int:
    from archive.people import normalise_name

    person_id = db["people"].insert({"name": name, "name_key": normalise_name(name), "slug": slug}).last_pk
    db["episode_people"].insert({"episode_id": episode_id, "person_id": person_id, "role": role, "source": "feed"})
    return person_id


def index_all(db, embedder) -> None:
    """Embeddings for every passage, then the FTS tables."""
    rows = list(db.query("SELECT * FROM passages ORDER BY id"))
    ensure_embeddings(db, rows, embedder)
    ensure_fts(db)
