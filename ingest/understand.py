"""The understanding stage: chapters -> takeaways -> guests, over the passages and vectors of the stages before it.

Order of the stages: feed -> transcript -> passages -> embeddings -> understanding -> search indexes.
Understanding places chapters and takeaways by meaning, so it comes after the embeddings stage
(ingest/passage_vectors.py), which comes after the passages stage (ingest/passages.py); `understand` is its one
entry point, which the index run (ingest/index_run.py) calls after those two. It reads what they and the feed
wrote and writes `chapters`, `takeaways` and the episode's people only.

Each sub-stage is a row in `stages` with the hash of what it read (transcript key, notes, feed people, embedder
name, and ingest/stages.py's `VERSION`): a rerun on unchanged input does no work, and a changed transcript or new
notes redo exactly the sub-stages that read them. Chapters and takeaways need the passages and their vectors, so
they wait for a run in which those stages succeeded; guests read only the transcript and the notes. A sub-stage
that fails is recorded and the others still run (see ingest/stages.py). A chapters file the feed names but that
cannot be fetched is recorded under the `chapters_fetch` stage and the episode gets generated chapters instead.

A producer's corrections of the transcript (archive/corrections.py) are part of the input of the sub-stages that
read its text (generated chapters, takeaways, guests: the run's text key), so the next run after a correction
redoes them once, on the corrected text; chapters from the feed's file and the takeaways, chapters and guests a
producer set are kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from archive import stages
from archive.errors import PodarchiveError
from archive.passages import rows_to_passages

from .chapters import fetch_chapters, fill_ends, generate_chapters, save_chapters
from .guests import episode_hosts, feed_people_rows, find_guests, identify_host, save_guests
from .http import FetchRules, feed_policy
from .stages import EpisodeRun
from .notes_chapters import GAP_TO_FILL, fill_gaps, section_chapters, timestamped_chapters
from .notes_sections import takeaways_from_notes
from .takeaways import LLMOptions, TakeawayOptions, generate_takeaways, place_takeaways, save_takeaways

log = logging.getLogger(__name__)

CHAPTERS, CHAPTERS_FETCH, TAKEAWAYS, GUESTS = "chapters", "chapters_fetch", "takeaways", "guests"
UNDERSTANDING = (CHAPTERS, TAKEAWAYS, GUESTS)
# How chapters are made, in their stage's input: a new method makes every episode's chapters again once
CHAPTER_METHOD = "notes-first, paced boundaries, noun-phrase titles"
TAKEAWAY_METHOD = "sentence starts, guest statements per 45 s"


@dataclass
class UnderstandOptions:
    """How an episode is understood, and the sizes of the passages it reads (for the passages stage)."""

    passage_target: float = 45
    passage_min: float = 30
    passage_max: float = 60
    takeaways: TakeawayOptions = field(default_factory=lambda: TakeawayOptions(llm=LLMOptions.from_env()))
    force: bool = False  # redo every stage even when its input is unchanged
    fetch: FetchRules = field(default_factory=FetchRules)  # what a feed's chapters URL may make us read


def understand(run: EpisodeRun, options: UnderstandOptions, passages_ready: bool) -> None:
    """Bring the episode's chapters, takeaways and guests up to date, in that order. `passages_ready`: the
    passages and embeddings stages succeeded in this run (else chapters and takeaways wait for a run where they
    did). A failure is kept in the run (ingest/stages.py)."""
    episode = run.episode
    hosts = [p.name for p in episode_hosts(run.db, run.episode_id, episode["show_id"])]
    host_label = identify_host(run.segments, hosts)
    if passages_ready:
        # chapters from the feed's file do not read the transcript: a correction does not fetch them again
        _chapters_stage(run, options, run.transcript_key if episode["chapters_url"] else run.text_key)
        _takeaways_stage(run, options, run.text_key, host_label)
    _guests_stage(run, run.text_key)


def _chapters_stage(run: EpisodeRun, options: UnderstandOptions, transcript_key) -> None:
    episode = run.episode
    url = episode["chapters_url"]
    digest = run.digest(CHAPTERS, transcript_key, url, episode["duration"], run.embedder.name, _notes(episode),
                        CHAPTER_METHOD)
    if not run.needed(CHAPTERS, digest):
        return
    with run.stage(CHAPTERS, digest):
        chapters = None
        if url:
            try:
                chapters = fill_ends(_fetch_feed_chapters(run, options.fetch, url), episode["duration"])
                stages.mark_done(run.db, run.episode_id, CHAPTERS_FETCH, digest)
            except PodarchiveError as exc:  # a 404 or a broken file: generated chapters still serve
                stages.mark_failed(run.db, run.episode_id, CHAPTERS_FETCH, stages.describe(exc))
                run.summary.errors[CHAPTERS_FETCH] = stages.describe(exc)
                log.warning("episode %s: chapters file unusable, generating chapters: %s", run.episode_id, exc)
        if chapters is None:
            chapters = _chapters_from_transcript(run)
        save_chapters(run.db, run.episode_id, chapters)
        run.summary.chapters = len(chapters)
        run.summary.chapters_source = chapters[0].source if chapters else None


def _chapters_from_transcript(run: EpisodeRun) -> list:
    """The notes' own chapters (their timestamped lines, else their sections placed in the audio), with generated
    chapters filling only what they leave out; generated chapters alone when the notes have neither."""
    episode, duration = run.episode, run.episode["duration"]
    passages = rows_to_passages(run.passage_rows())
    from_notes = timestamped_chapters(_notes(episode), duration)
    if not from_notes and passages and (items := takeaways_from_notes(_notes(episode))):
        from_notes = section_chapters(_placed_notes_takeaways(run, items, passages), duration)
    if from_notes and from_notes[0].start < GAP_TO_FILL:
        return fill_gaps(from_notes, [], duration)  # nothing long enough for a generated chapter to fill
    generated = generate_chapters(passages, run.vectors, duration, embedder=run.embedder)
    return fill_gaps(from_notes, generated, duration)


def _fetch_feed_chapters(run: EpisodeRun, rules: FetchRules, url: str):
    """The chapters file the feed names, read under the trust rules of the feed it came from."""
    feed_url = run.db.execute("SELECT feed_url FROM shows WHERE id = ?", [run.episode["show_id"]]).fetchone()[0]
    policy = feed_policy(feed_url, rules, run.http())
    return fetch_chapters(url, run.http(), policy, max_bytes=rules.max_chapters_bytes,
                          deadline=rules.deadline_seconds)


def _notes(episode: dict) -> str:
    return episode["notes_html"] or episode["notes_text"] or ""


def _takeaways_stage(run: EpisodeRun, options: UnderstandOptions, transcript_key, host_label) -> None:
    episode = run.episode
    llm = options.takeaways.llm
    digest = run.digest(TAKEAWAYS, transcript_key, _notes(episode), run.embedder.name, host_label, TAKEAWAY_METHOD,
                        [llm.url, llm.model] if llm else None)
    if not run.needed(TAKEAWAYS, digest):
        return
    with run.stage(TAKEAWAYS, digest):
        passages = rows_to_passages(run.passage_rows())
        items = takeaways_from_notes(_notes(episode))
        if items:
            takeaways = _placed_notes_takeaways(run, items, passages)
        elif passages:
            takeaways = generate_takeaways(passages, run.vectors, run.embedder, host=host_label,
                                           options=options.takeaways, segments=run.segments)
        else:
            takeaways = []
        save_takeaways(run.db, run.episode_id, takeaways)
        run.summary.takeaways = len(takeaways)
        run.summary.takeaways_source = takeaways[0].source if takeaways else None


def _placed_notes_takeaways(run: EpisodeRun, items: list[tuple[str, str]], passages: list) -> list:
    """The notes' takeaways placed at the sentences that say them. The chapters stage (the notes' sections as
    chapters) and the takeaways stage both need them: placed once a run, as embedding every takeaway and finding
    its opening sentence costs a second or two of CPU per episode."""
    key = ("notes takeaways", tuple(items), len(passages))
    if key not in run.memo:
        vectors = run.vectors if passages else np.zeros((0, 1), dtype=np.float32)
        run.memo[key] = place_takeaways(items, passages, vectors, run.embedder, source="notes", segments=run.segments)
    return run.memo[key]


def _guests_stage(run: EpisodeRun, transcript_key) -> None:
    db, episode_id, episode = run.db, run.episode_id, run.episode
    feed_people = feed_people_rows(db, episode_id)
    hosts = episode_hosts(db, episode_id, episode["show_id"])
    digest = run.digest(GUESTS, transcript_key, episode["title"], _notes(episode), feed_people,
                        [(h.name, h.href, h.img) for h in hosts])
    if not run.needed(GUESTS, digest):
        return
    with run.stage(GUESTS, digest):
        guests = find_guests(episode["title"], _notes(episode), feed_people, run.segments,
                             host_names=[h.name for h in hosts])
        save_guests(db, episode_id, hosts + guests)
        run.summary.guests = [g.name for g in guests]
