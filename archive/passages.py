"""Passages: transcript segments grouped into 30-60 s pieces that end on a sentence boundary, saved and loaded.

A passage is the unit of search and of embeddings. The passages stage (ingest/passages.py) makes them after a
transcript; a producer's transcript correction (archive/corrections.py) makes them again at once. Rules, in order:

* Every segment is first cut into sentences; a segment cut this way shares its time span among its sentences in
  proportion to their length in characters (Whisper segments are short, so this only matters for long speaker
  turns such as human-edited transcripts).
* A passage closes after a sentence once it has lasted `target` seconds; it also closes at a change of speaker
  once it has lasted `min_seconds`, and before a sentence that would take it past `max_seconds` when it already
  ends a sentence. A passage never ends mid-sentence unless it has run to twice `max_seconds` with no sentence
  end in sight (unpunctuated machine transcripts).
* A final passage shorter than `min_seconds` is merged into the one before.
* The speaker of a passage is the speaker of all its text, or the speaker of at least 60% of it (by duration)
  when it mixes speakers, else None.

Transcripts without times (plain text: every start and end is 0) are grouped by length instead, counting
15 characters of text as one second of speech; their passages keep start = end = 0.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass

import sqlite_utils

from .db import write_transaction
from .records import Passage, Segment

CHARS_PER_SECOND = 15.0  # about 150 words a minute: used only to size passages of untimed transcripts
DOMINANT_SHARE = 0.6

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "eg", "ie", "inc", "ltd",
    "co", "corp", "no", "approx", "dept", "fig", "al", "u.s", "u.k", "a.m", "p.m", "mt",
}
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*$")
_BREAK = re.compile(r"(?<=[.!?…])[\"'”’)\]]*\s+")


def split_sentences(text: str) -> list[str]:
    """Split text into sentences at . ! ? followed by space, minding common abbreviations and initials."""
    text = re.sub(r"\s+", " ", text or "").strip()
    if not text:
        return []
    sentences: list[str] = []
    start = 0
    for match in _BREAK.finditer(text):
        candidate = text[start:match.end()].strip()
        last_word = candidate.rstrip("\"'”’)] ").split(" ")[-1].rstrip(".").lower()
        next_char = text[match.end():match.end() + 1]
        if last_word in _ABBREVIATIONS or re.fullmatch(r"[a-z]", last_word) or (next_char and next_char.islower()):
            continue  # "Dr. Smith", "J. Doe", "e.g. this": not a sentence end
        sentences.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences


def ends_sentence(text: str) -> bool:
    return bool(_SENTENCE_END.search(text.strip()))


@dataclass
class _Piece:
    start: float
    end: float
    text: str
    speaker: str | None
    length: float  # seconds, or estimated seconds for untimed transcripts
    closes_sentence: bool


def _is_timed(segments: list[Segment]) -> bool:
    return any((s.end or 0) > 0 or (s.start or 0) > 0 for s in segments)


def _pieces(segments: list[Segment], timed: bool) -> list[_Piece]:
    pieces = []
    for segment in segments:
        sentences = split_sentences(segment.text)
        if not sentences:
            continue
        start = float(segment.start or 0)
        end = max(float(segment.end or 0), start)
        total_chars = sum(len(s) for s in sentences)
        cursor = start
        for sentence in sentences:
            share = (end - start) * len(sentence) / total_chars if timed else 0.0
            length = share if timed else len(sentence) / CHARS_PER_SECOND
            pieces.append(_Piece(cursor, cursor + share, sentence, segment.speaker, length, ends_sentence(sentence)))
            cursor += share
    return pieces


def _span(pieces: list[_Piece]) -> float:
    return sum(p.length for p in pieces)


def _speaker(pieces: list[_Piece]) -> str | None:
    weights: Counter = Counter()
    for piece in pieces:
        weights[piece.speaker] += piece.length or len(piece.text)
    speaker, weight = weights.most_common(1)[0]
    total = sum(weights.values())
    if len(weights) == 1 or (total and weight / total >= DOMINANT_SHARE):
        return speaker
    return None


def _passage(pieces: list[_Piece], timed: bool) -> Passage:
    text = " ".join(p.text for p in pieces)
    start, end = (pieces[0].start, pieces[-1].end) if timed else (0.0, 0.0)
    return Passage(start=round(start, 3), end=round(end, 3), text=text, speaker=_speaker(pieces))


def _should_close(current: list[_Piece], following: _Piece | None, target: float, min_seconds: float,
                  max_seconds: float) -> bool:
    span = _span(current)
    last = current[-1]
    if following is None:
        return True
    if span >= 2 * max_seconds:
        return True  # no sentence end for far too long: cut at the segment boundary
    if not last.closes_sentence:
        return False
    if span >= target:
        return True
    if following.speaker != last.speaker and span >= min_seconds:
        return True
    return span + following.length > max_seconds and span >= min_seconds / 2


def make_passages(segments: list[Segment], target: float = 45, min_seconds: float = 30,
                  max_seconds: float = 60) -> list[Passage]:
    """Group transcript segments into passages of about `target` seconds (see the module doc for the rules)."""
    timed = _is_timed(segments)
    pieces = _pieces(segments, timed)
    groups: list[list[_Piece]] = []
    current: list[_Piece] = []
    for i, piece in enumerate(pieces):
        current.append(piece)
        following = pieces[i + 1] if i + 1 < len(pieces) else None
        if _should_close(current, following, target, min_seconds, max_seconds):
            groups.append(current)
            current = []
    if len(groups) > 1 and _span(groups[-1]) < min_seconds:
        tail = groups.pop()
        groups[-1].extend(tail)
    return [_passage(group, timed) for group in groups]


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def save_passages(db: sqlite_utils.Database, episode_id: int, passages: list[Passage]) -> list[dict]:
    """Replace the episode's passages in one transaction. Returns the rows written (with ids).

    Only what differs is written: a passage left as it was keeps its row (and id), a changed one is updated in
    place, so a transcript correction re-indexes (FTS5 triggers, search_versions) only the passages it touched,
    and making the same passages again writes nothing."""
    rows = [
        {"episode_id": episode_id, "idx": i, "start": p.start, "end": p.end, "speaker": p.speaker,
         "text": p.text, "content_hash": content_hash(p.text)}
        for i, p in enumerate(passages)
    ]
    columns = ("start", "end", "speaker", "text", "content_hash")
    with write_transaction(db):
        stored = {row["idx"]: row for row in load_passage_rows(db, episode_id)}
        for row in rows:
            before = stored.pop(row["idx"], None)
            if before is None:
                db["passages"].insert(row)
            elif any(before[name] != row[name] for name in columns):
                db.execute("UPDATE passages SET start = ?, end = ?, speaker = ?, text = ?, content_hash = ? "
                           "WHERE id = ?", [*(row[name] for name in columns), before["id"]])
        if stored:
            db.execute("DELETE FROM passages WHERE id IN (SELECT value FROM json_each(?))",
                       [json.dumps([row["id"] for row in stored.values()])])
    return load_passage_rows(db, episode_id)


def load_passage_rows(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    return list(db.query("SELECT * FROM passages WHERE episode_id = ? ORDER BY idx", [episode_id]))


def rows_to_passages(rows: list[dict]) -> list[Passage]:
    return [Passage(start=r["start"], end=r["end"], text=r["text"], speaker=r["speaker"]) for r in rows]
