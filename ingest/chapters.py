"""Chapters: from the feed's Podcasting 2.0 chapters file when it has one, else generated from topic segments.

`fetch_chapters` does the network (or reads a file:// URL) and returns parsed chapters; `save_chapters` writes.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from archive.db import write_transaction
from archive.errors import ChaptersError, PodarchiveError
from archive.records import Chapter, Passage
from archive.studio import producer_fields

from .chapter_titles import NounPhraseTitler
from .topics import TopicOptions, depth_scores, gap_similarities, keyphrases, phrase_title, topic_segments

log = logging.getLogger(__name__)


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


PACED, TOPICS = "paced", "topics"  # ChapterOptions.boundaries
NOUN_PHRASES, WORD_RUNS = "noun-phrases", "word-runs"  # ChapterOptions.titles


@dataclass
class ChapterOptions:
    """How chapters are generated for an episode without a chapters file.

    boundaries: "paced" (default) gives a chapter per `seconds_per_chapter` of talk, placed at the deepest topic
    shifts (`paced_boundaries`); "topics" is the earlier method, as many chapters as `topic_segments` finds valleys
    deep enough (about one per 6 min of an hour's interview). titles: "noun-phrases" (default; spaCy, see
    ingest/chapter_titles.py, falling back to word runs where spaCy cannot load) or "word-runs" (`keyphrases`).
    The figures behind the defaults: bench/chapters_quality.py, tuned on one half of DataTalks.Club's episodes.
    """
    boundaries: str = PACED
    titles: str = NOUN_PHRASES
    seconds_per_chapter: float = 180.0  # 3 min: 20 chapters in an hour, a place to jump to, not a table of minutes
    min_share: float = 0.5  # no chapter shorter than half of seconds_per_chapter
    window: int = 3  # passages each side of a gap (about 100 s of talk each side with 30-45 s passages)
    turn_bonus: float = 0.5  # a new speaker's turn, in standard deviations of depth
    question_bonus: float = 0.5  # ... and more when that turn asks a question (the host moving on)
    min_depth: float = 0.05  # a shallower valley is noise, whatever the count asks
    topics: TopicOptions = field(default_factory=TopicOptions)  # for boundaries="topics"


def paced_boundaries(vectors: np.ndarray, passages: list[Passage],
                     options: ChapterOptions | None = None) -> list[int]:
    """Indices of the passages that open a chapter (0 first): about one chapter per `seconds_per_chapter` of talk,
    at the gaps that score best, deepest first, each chapter at least `min_share` of that long.

    A gap's score is its TextTiling depth (`topics.depth_scores` over `window` passages each side) in standard
    deviations of the episode's depths, plus `turn_bonus` where a new speaker takes over and `question_bonus`
    where that speaker asks a question: in interviews the host's question opens the next topic. Transcripts
    without speakers get the depth alone. Gaps shallower than `min_depth` are never taken, so an episode on one
    topic gets fewer chapters than its length asks. Deterministic: ties go to the earlier gap.
    """
    options = options or ChapterOptions()
    n = len(passages)
    if n < 2:
        return [0] if n else []
    begin, end = passages[0].start, max(p.end for p in passages)
    wanted = max(0, round((end - begin) / options.seconds_per_chapter) - 1)
    shortest = options.min_share * options.seconds_per_chapter
    depths = depth_scores(gap_similarities(np.asarray(vectors, dtype=np.float64), options.window))
    scores = depths / (depths.std() or 1.0)
    for gap in range(len(depths)):
        before, after = passages[gap], passages[gap + 1]
        if after.speaker and after.speaker != before.speaker:
            scores[gap] += options.turn_bonus + (options.question_bonus if "?" in after.text else 0.0)
    chosen: list[float] = []
    opening: list[int] = []
    for gap in sorted(range(len(depths)), key=lambda g: (-scores[g], g)):
        if len(opening) >= wanted:
            break
        start = passages[gap + 1].start
        if depths[gap] < options.min_depth or start - begin < shortest or end - start < shortest:
            continue
        if all(abs(start - other) >= shortest for other in chosen):
            chosen.append(start)
            opening.append(gap + 1)
    return [0] + sorted(opening)


def chapter_segments(passages: list[Passage], vectors: np.ndarray,
                     options: ChapterOptions | None = None) -> list[tuple[int, int]]:
    """(first, last + 1) passage indices of each chapter, by the method `options.boundaries` names."""
    options = options or ChapterOptions()
    if options.boundaries == TOPICS:
        return topic_segments(vectors, [p.start for p in passages], [p.end for p in passages], options.topics)
    if options.boundaries != PACED:
        raise ChaptersError(f"unknown chapter boundaries method: {options.boundaries!r}")
    bounds = paced_boundaries(vectors, passages, options)
    return [(b, bounds[i + 1] if i + 1 < len(bounds) else len(passages)) for i, b in enumerate(bounds)]


_TITLER = NounPhraseTitler()  # loads spaCy on first use, once per process


def segment_titles(texts: list[list[str]], centroids: np.ndarray, embedder=None,
                   method: str = NOUN_PHRASES, titler: NounPhraseTitler | None = None) -> list[str]:
    """A title for each segment (given as its passages' texts; "" where no phrase qualifies): noun phrases with
    spaCy, or word runs (`keyphrases`) when so asked or when spaCy cannot load."""
    if method not in (NOUN_PHRASES, WORD_RUNS):
        raise ChaptersError(f"unknown chapter titles method: {method!r}")
    if method == NOUN_PHRASES:
        titles = (titler or _TITLER).titles(texts, embedder=embedder, centroids=centroids)
        if titles is not None:
            return titles
    return [phrase_title(words) for words in keyphrases(texts, embedder=embedder, centroids=centroids)]


def generate_chapters(passages: list[Passage], vectors: np.ndarray, duration: float | None = None,
                      embedder=None, options: ChapterOptions | None = None,
                      titler: NounPhraseTitler | None = None) -> list[Chapter]:
    """Chapters for an episode without a chapters file: boundaries and titles as `options` says (ChapterOptions).

    With `embedder`, title phrases are re-ranked by meaning (better titles, a second or two more work).
    Transcripts without times give no chapters: a chapter is a place to jump to.
    """
    if not passages or max(p.end for p in passages) <= 0:
        return []
    options = options or ChapterOptions()
    starts = [p.start for p in passages]
    ends = [p.end for p in passages]
    segments = chapter_segments(passages, vectors, options)
    texts = [[p.text for p in passages[a:b]] for a, b in segments]
    centroids = np.stack([np.asarray(vectors[a:b]).mean(axis=0) for a, b in segments])
    titles = segment_titles(texts, centroids, embedder, options.titles, titler)
    chapters = []
    for number, ((first, last), title) in enumerate(zip(segments, titles), start=1):
        chapters.append(Chapter(title=title or f"Part {number}", start=0.0 if number == 1 else starts[first],
                                end=ends[last - 1], source="generated"))
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
