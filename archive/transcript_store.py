"""An episode's transcript in the store: `save_transcript` writes it, `load_segments` reads it back.

One transcript per episode (from the feed's file or from Whisper): saving replaces the previous transcript and its
segments in one transaction, so a process killed mid-write leaves either the old transcript or the new one, never
a mix. Producers' corrections of the old transcript are replayed on the new one in that transaction
(archive/corrections.py `carry_over`): those that find no place in it are kept, marked lapsed, never dropped
silently.

A segment is a row of `segments`; its word timings, when it has them, are one JSON column (`encode_words` and
`decode_words`: a list of {"word", "start", "end", "probability"}). The transcript's options are JSON too, keys
sorted. Reads and writes the store only: no Whisper, no torch.
"""

from __future__ import annotations

import json
from typing import Iterable

import sqlite_utils

from .corrections import carry_over
from .db import utcnow, write_transaction
from .records import Segment, TranscriptSource, Word


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
                 encode_words(segment.words)],
            )
            count += 1
        conn.execute("UPDATE transcripts SET segment_count = ? WHERE id = ?", [count, transcript_id])
        carry_over(db, episode_id, transcript_id)  # producers' corrections, replayed on the new lines
    return transcript_id


def segment_rows(db: sqlite_utils.Database, episode_id: int) -> list[tuple]:
    """The episode's stored lines in order, as (transcript id, start, end, text, speaker, words JSON)."""
    return db.execute(
        """SELECT s.transcript_id, s.start, s.end, s.text, s.speaker, s.words FROM segments s
           JOIN transcripts t ON t.id = s.transcript_id
           WHERE t.episode_id = ? ORDER BY s.idx""",
        [episode_id],
    ).fetchall()


def segments_from_rows(rows: list[tuple]) -> list[Segment]:
    return [Segment(start, end, text, speaker, decode_words(words)) for _, start, end, text, speaker, words in rows]


def load_segments(db: sqlite_utils.Database, episode_id: int) -> list[Segment]:
    """The episode's transcript segments in order; an empty list when it has no transcript."""
    return segments_from_rows(segment_rows(db, episode_id))


def encode_words(words: list[Word] | None) -> str | None:
    """A segment's words as `segments.words` holds them; None when it has none."""
    if not words:
        return None
    return json.dumps([{"word": w.word, "start": w.start, "end": w.end, "probability": w.probability}
                       for w in words], ensure_ascii=False)


def decode_words(value: str | None) -> list[Word] | None:
    """`segments.words` back as Word records; None when the segment has none."""
    if not value:
        return None
    return [Word(w["word"], w["start"], w["end"], w.get("probability")) for w in json.loads(value)]
