"""Fetch an episode's transcript file, and store transcripts (from a feed file or from Whisper).

One transcript per episode: saving replaces the previous transcript and its segments in one transaction, so a
process killed mid-write leaves either the old transcript or the new one, never a mix. Producers' corrections of
the old transcript are replayed on the new one in that transaction (archive/corrections.py `carry_over`): those
that find no place in it are kept, marked lapsed, never dropped silently.
"""

from __future__ import annotations

import json
import mimetypes
from typing import Iterable

import httpx
import sqlite_utils

from archive.corrections import carry_over
from archive.db import utcnow, write_transaction
from archive.errors import PodarchiveError, TranscriptFetchError
from archive.records import Segment, TranscriptSource
from ingest import http, trust

MAX_TRANSCRIPT_BYTES = 10_000_000


def fetch_transcript_file(url: str, client: httpx.Client, max_bytes: int = MAX_TRANSCRIPT_BYTES,
                          policy: trust.FetchPolicy | None = None,
                          deadline: float = http.DEFAULT_DEADLINE_SECONDS) -> tuple[bytes, str | None]:
    """Download a transcript file: (bytes, content type). file:// URLs are read from disk when `policy` allows.

    `policy` is what the feed that named the URL may reach (default: the policy of the URL itself, as if the
    operator had named it). Raises TranscriptFetchError, with the trust rules' refusal as its cause.
    """
    policy = policy or http.feed_policy(url, client=client)
    try:
        trust.check_url(url, policy)
        if trust.is_file_url(url):
            path = trust.local_file(url, policy)
            return trust.read_local_file(url, policy, max_bytes, "transcript"), mimetypes.guess_type(path.name)[0]
        response = http.fetch_bytes(client, url, max_bytes=max_bytes, policy=policy, deadline=deadline,
                                    what="transcript")
    except httpx.HTTPError as exc:
        raise TranscriptFetchError(f"could not download transcript {url}: {exc}") from exc
    except PodarchiveError as exc:
        raise TranscriptFetchError(str(exc)) from exc
    if response.status_code >= 400:
        raise TranscriptFetchError(f"could not download transcript {url}: HTTP {response.status_code}")
    return response.content, response.headers.get("content-type")


def save_transcript(db: sqlite_utils.Database, episode_id: int, segments: Iterable[Segment],
                    source: TranscriptSource) -> int:
    """Store `segments` as the episode's transcript, replacing any previous one, all or nothing (inside the
    caller's transaction, the caller commits). Returns the transcript id."""
    conn = db.conn
    with write_transaction(db):
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
        carry_over(db, episode_id, transcript_id)  # producers' corrections, replayed on the new lines
    return transcript_id


def _words_json(segment: Segment) -> str | None:
    if not segment.words:
        return None
    return json.dumps(
        [{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability} for w in segment.words],
        ensure_ascii=False,
    )
