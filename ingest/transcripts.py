"""Fetch an episode's transcript file, and store transcripts (from a feed file or from Whisper).

One transcript per episode: saving replaces the previous transcript and its segments in one transaction, so a
process killed mid-write leaves either the old transcript or the new one, never a mix.
"""

from __future__ import annotations

import json
import mimetypes
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable
from urllib.parse import urlparse
from urllib.request import url2pathname

import httpx
import sqlite_utils

from archive.db import utcnow
from archive.errors import TranscriptFetchError
from archive.records import Segment, TranscriptSource
from ingest import http

MAX_TRANSCRIPT_BYTES = 50_000_000


def fetch_transcript_file(url: str, client: httpx.Client, max_bytes: int = MAX_TRANSCRIPT_BYTES) -> tuple[bytes, str | None]:
    """Download a transcript file: (bytes, content type). file:// URLs are read from disk."""
    if urlparse(url).scheme == "file":
        return _read_local(url, max_bytes)
    try:
        response = http.get(client, url)
    except httpx.HTTPError as exc:
        raise TranscriptFetchError(f"could not download transcript {url}: {exc}") from exc
    if response.status_code >= 400:
        raise TranscriptFetchError(f"could not download transcript {url}: HTTP {response.status_code}")
    if len(response.content) > max_bytes:
        raise TranscriptFetchError(f"transcript {url} is larger than {max_bytes} bytes")
    return response.content, response.headers.get("content-type")


def _read_local(url: str, max_bytes: int) -> tuple[bytes, str | None]:
    path = Path(url2pathname(urlparse(url).path))
    try:
        if path.stat().st_size > max_bytes:
            raise TranscriptFetchError(f"transcript {path} is larger than {max_bytes} bytes")
        return path.read_bytes(), mimetypes.guess_type(path.name)[0]
    except OSError as exc:
        raise TranscriptFetchError(f"could not read transcript {path}: {exc.strerror or exc}") from exc


@contextmanager
def atomic(db: sqlite_utils.Database):
    """All or nothing. A savepoint: outside a transaction, its release commits; inside the caller's
    transaction, it nests and the caller commits."""
    conn = db.conn
    conn.execute("SAVEPOINT save_transcript")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK TO SAVEPOINT save_transcript")
        conn.execute("RELEASE SAVEPOINT save_transcript")
        raise
    conn.execute("RELEASE SAVEPOINT save_transcript")


def save_transcript(db: sqlite_utils.Database, episode_id: int, segments: Iterable[Segment],
                    source: TranscriptSource) -> int:
    """Store `segments` as the episode's transcript, replacing any previous one. Returns the transcript id."""
    with atomic(db) as conn:
        conn.execute(
            "DELETE FROM segments WHERE transcript_id IN (SELECT id FROM transcripts WHERE episode_id = ?)",
            [episode_id],
        )
        conn.execute("DELETE FROM transcripts WHERE episode_id = ?", [episode_id])
        transcript_id = conn.execute(
            """INSERT INTO transcripts (episode_id, source, source_url, format, model, options, language,
                                        content_hash, segment_count, created_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)""",
            [episode_id, source.source, source.source_url, source.format, source.model,
             json.dumps(source.options, sort_keys=True) if source.options is not None else None,
             source.language, source.content_hash, utcnow()],
        ).lastrowid
        count = 0
        for idx, segment in enumerate(segments):
            conn.execute(
                "INSERT INTO segments (transcript_id, idx, start, end, text, speaker, words) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [transcript_id, idx, float(segment.start), float(segment.end), segment.text, segment.speaker,
                 _words_json(segment)],
            )
            count += 1
        conn.execute("UPDATE transcripts SET segment_count = ? WHERE id = ?", [count, transcript_id])
    return transcript_id


def _words_json(segment: Segment) -> str | None:
    if not segment.words:
        return None
    return json.dumps(
        [{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability} for w in segment.words],
        ensure_ascii=False,
    )
