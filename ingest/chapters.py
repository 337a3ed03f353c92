"""Chapters: from the feed's Podcasting 2.0 chapters file when it has one, else generated from topic segments.

`fetch_chapters` does the network (or reads a file:// URL) and returns parsed chapters; `save_chapters` writes.
"""

from __future__ import annotations

import json
import math

import numpy as np
import sqlite_utils

from archive.db import write_transaction
from archive.errors import ChaptersError, PodarchiveError
from archive.records import Chapter, Passage
from archive.studio import producer_fields

from .topics import TopicOptions, keyphrases, phrase_title, topic_segments


def _seconds(value, field: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ChaptersError(f"chapter {field} is not a number: {value!r}") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ChaptersError(f"chapter {field} is out of range: {value!r}")
    return seconds


def _text(value) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def parse_chapters_json(data: bytes) -> list[Chapter]:
    """Parse a Podcasting 2.0 JSON chapters file (version 1.x).

    Silent chapters (`"toc": false`) are left out; chapters come back sorted by start time; a chapter without
    title is called "Chapter N"; a missing end is the next chapter's start (the last one's stays None until the
    episode's duration is known, see `fill_ends`).
    """
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ChaptersError(f"chapters file is not JSON: {exc}") from exc
    entries = document.get("chapters") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ChaptersError("chapters file has no 'chapters' list")
    chapters = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise ChaptersError(f"chapter is not an object: {entry!r}")
        if entry.get("toc") is False:
            continue
        if "startTime" not in entry:
            raise ChaptersError(f"chapter without startTime: {entry!r}")
        end = entry.get("endTime")
        chapters.append(Chapter(
            title=_text(entry.get("title")) or "",
            start=_seconds(entry["startTime"], "startTime"),
            end=_seconds(end, "endTime") if end is not None else None,
            url=_text(entry.get("url")),
            image=_text(entry.get("img")),
            source="feed",
        ))
    chapters.sort(key=lambda c: c.start)
    for number, chapter in enumerate(chapters, start=1):
        chapter.title = chapter.title or f"Chapter {number}"
    return fill_ends(chapters)


def fill_ends(chapters: list[Chapter], duration: float | None = None) -> list[Chapter]:
    """Give each chapter without an end the next chapter's start, and the last one the episode's end."""
    for current, following in zip(chapters, chapters[1:]):
        if current.end is None or current.end <= current.start:
            current.end = following.start
    if chapters and duration and (chapters[-1].end is None or chapters[-1].end <= chapters[-1].start):
        chapters[-1].end = max(duration, chapters[-1].start)
    return chapters


MAX_CHAPTERS_BYTES = 2_000_000


def fetch_chapters(url: str, client, policy=None, max_bytes: int = MAX_CHAPTERS_BYTES,
                   deadline: float | None = None) -> list[Chapter]:
    """Download (http/https) or read (a file: URL the policy allows) a chapters file and parse it.

    `policy` is what the feed that named the URL may reach (default: the policy of the URL itself, as if the
    operator had named it). Raises ChaptersError, with the trust rules' refusal as its cause.
    """
    import httpx

    from . import http, trust

    policy = policy or http.feed_policy(url, client=client)
    try:
        trust.check_url(url, policy)
        if trust.is_file_url(url):
            return parse_chapters_json(trust.read_local_file(url, policy, max_bytes, "chapters file"))
        if client is None:
            with http.make_client() as own_client:
                response = _download_chapters(url, own_client, policy, max_bytes, deadline)
        else:
            response = _download_chapters(url, client, policy, max_bytes, deadline)
    except httpx.HTTPError as exc:
        raise ChaptersError(f"cannot fetch chapters {url}: {exc}") from exc
    except ChaptersError:
        raise
    except PodarchiveError as exc:
        raise ChaptersError(str(exc)) from exc
    if response.status_code >= 400:
        raise ChaptersError(f"cannot fetch chapters {url}: HTTP {response.status_code}")
    return parse_chapters_json(response.content)


def _download_chapters(url, client, policy, max_bytes, deadline):
    from . import http

    return http.fetch_bytes(client, url, max_bytes=max_bytes, policy=policy, what="chapters file",
                            deadline=deadline or http.DEFAULT_DEADLINE_SECONDS,
                            headers={"Accept": "application/json+chapters, application/json"})


def generate_chapters(passages: list[Passage], vectors: np.ndarray, duration: float | None = None,
                      embedder=None, options: TopicOptions | None = None) -> list[Chapter]:
    """One chapter per topic segment, titled by its key phrases (see ingest/topics.py).

    With `embedder`, the phrases are re-ranked by meaning (better titles, a second or two more work).
    Transcripts without times give no chapters: a chapter is a place to jump to.
    """
    if not passages or max(p.end for p in passages) <= 0:
        return []
    starts = [p.start for p in passages]
    ends = [p.end for p in passages]
    segments = topic_segments(vectors, starts, ends, options)
    texts = [[p.text for p in passages[a:b]] for a, b in segments]
    centroids = np.stack([np.asarray(vectors[a:b]).mean(axis=0) for a, b in segments])
    phrases = keyphrases(texts, embedder=embedder, centroids=centroids)
    chapters = []
    for number, ((first, last), words) in enumerate(zip(segments, phrases), start=1):
        title = phrase_title(words) or f"Part {number}"
        chapters.append(Chapter(title=title, start=0.0 if number == 1 else starts[first], end=ends[last - 1],
                                source="generated"))
    for current, following in zip(chapters, chapters[1:]):
        current.end = following.start
    if duration and duration > chapters[-1].start:
        chapters[-1].end = duration
    return chapters


def save_chapters(db: sqlite_utils.Database, episode_id: int, chapters: list[Chapter]) -> None:
    """Replace the episode's chapters in one transaction; those a producer set (archive/studio.py) stay."""
    rows = [
        {"episode_id": episode_id, "idx": i, "title": c.title, "start": c.start, "end": c.end, "url": c.url,
         "image": c.image, "source": c.source}
        for i, c in enumerate(chapters)
    ]
    with write_transaction(db):
        if "chapters" in producer_fields(db, episode_id):
            return
        db.execute("DELETE FROM chapters WHERE episode_id = ?", [episode_id])
        if rows:
            db["chapters"].insert_all(rows)
