"""Understanding one episode: passages -> embeddings -> chapters -> takeaways -> guests.

Each step is a stage in `stages` with the hash of what it read (transcript content hash, notes, feed people,
embedder name, and `VERSION`): a rerun on unchanged input does no work, and a changed transcript or new notes
redo exactly the steps that read them. A step that fails is recorded (`mark_failed`) and the others still run
(chapters and takeaways need the passages); once all have had their turn, the first failure is raised as
`StageError`, except ModelLoadError, which is recorded and raised at once (no episode can be understood without
the embedding model). A chapters file the feed names but that cannot be fetched is recorded under the
`chapters_fetch` stage and the episode gets generated chapters instead.

A producer's corrections of the transcript (archive/corrections.py) are part of the input of the steps that read
its text: passages, generated chapters, takeaways and guests add `corrections_key` (a digest of the lines that
differ from the machine's) to the transcript's key, so the next run after a correction redoes them once, on the
corrected text (the passages a correction already rebuilt come out the same and are not written again; chapters
from the feed's file and the takeaways, chapters and guests a producer set are kept). An uncorrected transcript
keeps the key it always had.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import sqlite_utils

from archive import stages
from archive.corrections import corrections_key
from archive.errors import ModelLoadError, NotFoundError, PodarchiveError, StageError
from archive.transcript_formats import load_segments

from .chapters import fetch_chapters, fill_ends, generate_chapters, save_chapters
from .guests import episode_hosts, feed_people_rows, find_guests, identify_host, save_guests
from .http import FetchRules, feed_policy
from .passages import load_passage_rows, make_passages, rows_to_passages, save_passages
from .takeaways import LLMOptions, TakeawayOptions, generate_takeaways, place_takeaways, save_takeaways, \
    takeaways_from_notes

log = logging.getLogger(__name__)

VERSION = 1  # bump when a method here changes: every episode is then understood again
PASSAGES, CHAPTERS, CHAPTERS_FETCH, TAKEAWAYS, GUESTS = "passages", "chapters", "chapters_fetch", "takeaways", "guests"
STAGES = (PASSAGES, CHAPTERS, TAKEAWAYS, GUESTS)


@dataclass
class UnderstandOptions:
    passage_target: float = 45
    passage_min: float = 30
    passage_max: float = 60
    takeaways: TakeawayOptions = field(default_factory=lambda: TakeawayOptions(llm=LLMOptions.from_env()))
    force: bool = False  # redo every step even when its input is unchanged
    fetch: FetchRules = field(default_factory=FetchRules)  # what a feed's chapters URL may make us read


def input_hash(*parts: object) -> str:
    return hashlib.sha256(json.dumps([VERSION, *parts], default=str, sort_keys=True).encode()).hexdigest()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _episode(db: sqlite_utils.Database, episode_id: int) -> dict:
    rows = list(db.query("SELECT * FROM episodes WHERE id = ?", [episode_id]))
    if not rows:
        raise NotFoundError(f"no episode with id {episode_id}")
    return rows[0]


def _transcript(db: sqlite_utils.Database, episode_id: int) -> dict:
    rows = list(db.query("SELECT * FROM transcripts WHERE episode_id = ?", [episode_id]))
    if not rows:
        raise NotFoundError(f"episode {episode_id} has no transcript")
    return rows[0]


def _embed_rows(db: sqlite_utils.Database, rows: list[dict], embedder) -> np.ndarray:
    from .index import ensure_embeddings  # the index imports this module: import at call time

    return ensure_embeddings(db, rows, embedder) if rows else np.zeros((0, 1), dtype=np.float32)


class _Run:
    """One episode's run: stage bookkeeping, lazily computed passages and vectors, the summary."""

    def __init__(self, db, episode_id, embedder, client, options):
        self.db, self.episode_id, self.embedder = db, episode_id, embedder
        self.client, self.options = client, options
        self.summary: dict = {"episode_id": episode_id, "ran": [], "skipped": [], "errors": {}}
        self.failures: list[tuple[str, BaseException]] = []
        self._rows: list[dict] | None = None
        self._vectors: np.ndarray | None = None
        self._own_client = None

    def needed(self, stage: str, digest: str) -> bool:
        if not self.options.force and stages.is_done(self.db, self.episode_id, stage, digest):
            self.summary["skipped"].append(stage)
            return False
        return True

    @contextmanager
    def stage(self, stage: str, digest: str):
        stages.mark_running(self.db, self.episode_id, stage, digest)
        try:
            yield
        except ModelLoadError as exc:  # no step of any episode can work without the model: stop here
            stages.mark_failed(self.db, self.episode_id, stage, _describe(exc))
            raise
        except Exception as exc:  # one step's failure, whatever it is, must not lose the others
            stages.mark_failed(self.db, self.episode_id, stage, _describe(exc))
            self.summary["errors"][stage] = _describe(exc)
            self.failures.append((stage, exc))
            log.warning("episode %s: %s failed: %s", self.episode_id, stage, _describe(exc))
            return
        stages.mark_done(self.db, self.episode_id, stage, digest)
        self.summary["ran"].append(stage)

    def passage_rows(self) -> list[dict]:
        if self._rows is None:
            self._rows = load_passage_rows(self.db, self.episode_id)
        return self._rows

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            self._vectors = np.asarray(_embed_rows(self.db, self.passage_rows(), self.embedder))
        return self._vectors

    def http(self):
        if self.client is None and self._own_client is None:
            from .http import make_client

            self._own_client = make_client()
        return self.client or self._own_client

    def close(self) -> None:
        if self._own_client is not None:
            self._own_client.close()


def understand_episode(db: sqlite_utils.Database, episode_id: int, embedder, client=None,
                       options: UnderstandOptions | None = None) -> dict:
    """Build (or bring up to date) an episode's passages, embeddings, chapters, takeaways and guests.

    Returns a summary: counts, sources, which stages ran or were skipped, errors by stage. Raises NotFoundError
    for an unknown episode or one without transcript, and StageError (after recording it) when a step failed.
    """
    options = options or UnderstandOptions()
    episode = _episode(db, episode_id)
    transcript = _transcript(db, episode_id)
    transcript_key = [transcript["content_hash"], transcript["format"], transcript["model"],
                      transcript["segment_count"], transcript["created_at"]]
    corrected = corrections_key(db, episode_id)
    text_key = transcript_key + [corrected] if corrected else transcript_key  # what the producer made of it
    run = _Run(db, episode_id, embedder, client, options)
    segments = None
    try:
        segments = load_segments(db, episode_id)
        passages_ok = _passages_stage(run, segments, text_key)
        hosts = [p.name for p in episode_hosts(db, episode_id, episode["show_id"])]
        host_label = identify_host(segments, hosts)
        if passages_ok:
            # chapters from the feed's file do not read the transcript: a correction does not fetch them again
            _chapters_stage(run, episode, transcript_key if episode["chapters_url"] else text_key)
            _takeaways_stage(run, episode, text_key, host_label)
        _guests_stage(run, episode, segments, text_key)
    finally:
        run.close()
    if run.failures:
        stage, cause = run.failures[0]
        raise StageError(stage, cause) from cause
    return run.summary


def _passages_stage(run: _Run, segments, transcript_key) -> bool:
    options = run.options
    digest = input_hash(PASSAGES, transcript_key, options.passage_target, options.passage_min, options.passage_max)
    if not run.needed(PASSAGES, digest):
        run.summary["passages"] = len(run.passage_rows())
        return True
    with run.stage(PASSAGES, digest):
        passages = make_passages(segments, options.passage_target, options.passage_min, options.passage_max)
        run._rows = save_passages(run.db, run.episode_id, passages)
        run.summary["passages"] = len(passages)
        return True
    return False


def _chapters_stage(run: _Run, episode: dict, transcript_key) -> None:
    url = episode["chapters_url"]
    digest = input_hash(CHAPTERS, transcript_key, url, episode["duration"], run.embedder.name)
    if not run.needed(CHAPTERS, digest):
        return
    with run.stage(CHAPTERS, digest):
        chapters = None
        if url:
            try:
                chapters = fill_ends(_fetch_feed_chapters(run, episode, url), episode["duration"])
                stages.mark_done(run.db, run.episode_id, CHAPTERS_FETCH, digest)
            except PodarchiveError as exc:  # a 404 or a broken file: generated chapters still serve
                stages.mark_failed(run.db, run.episode_id, CHAPTERS_FETCH, _describe(exc))
                run.summary["errors"][CHAPTERS_FETCH] = _describe(exc)
                log.warning("episode %s: chapters file unusable, generating chapters: %s", run.episode_id, exc)
        if chapters is None:
            passages = rows_to_passages(run.passage_rows())
            chapters = generate_chapters(passages, run.vectors(), episode["duration"], embedder=run.embedder)
        save_chapters(run.db, run.episode_id, chapters)
        run.summary["chapters"] = len(chapters)
        run.summary["chapters_source"] = chapters[0].source if chapters else None


def _fetch_feed_chapters(run: _Run, episode: dict, url: str):
    """The chapters file the feed names, read under the trust rules of the feed it came from."""
    feed_url = run.db.execute("SELECT feed_url FROM shows WHERE id = ?", [episode["show_id"]]).fetchone()[0]
    rules = run.options.fetch
    policy = feed_policy(feed_url, rules, run.http())
    return fetch_chapters(url, run.http(), policy, max_bytes=rules.max_chapters_bytes,
                          deadline=rules.deadline_seconds)


def _notes(episode: dict) -> str:
    return episode["notes_html"] or episode["notes_text"] or ""


def _takeaways_stage(run: _Run, episode: dict, transcript_key, host_label) -> None:
    llm = run.options.takeaways.llm
    digest = input_hash(TAKEAWAYS, transcript_key, _notes(episode), run.embedder.name, host_label,
                        [llm.url, llm.model] if llm else None)
    if not run.needed(TAKEAWAYS, digest):
        return
    with run.stage(TAKEAWAYS, digest):
        passages = rows_to_passages(run.passage_rows())
        items = takeaways_from_notes(_notes(episode))
        if items:
            vectors = run.vectors() if passages else np.zeros((0, 1), dtype=np.float32)
            takeaways = place_takeaways(items, passages, vectors, run.embedder, source="notes")
        elif passages:
            takeaways = generate_takeaways(passages, run.vectors(), run.embedder, host=host_label,
                                           options=run.options.takeaways)
        else:
            takeaways = []
        save_takeaways(run.db, run.episode_id, takeaways)
        run.summary["takeaways"] = len(takeaways)
        run.summary["takeaways_source"] = takeaways[0].source if takeaways else None


def _guests_stage(run: _Run, episode: dict, segments, transcript_key) -> None:
    db, episode_id = run.db, run.episode_id
    feed_people = feed_people_rows(db, episode_id)
    hosts = episode_hosts(db, episode_id, episode["show_id"])
    digest = input_hash(GUESTS, transcript_key, episode["title"], _notes(episode), feed_people,
                        [(h.name, h.href, h.img) for h in hosts])
    if not run.needed(GUESTS, digest):
        return
    with run.stage(GUESTS, digest):
        guests = find_guests(episode["title"], _notes(episode), feed_people, segments,
                             host_names=[h.name for h in hosts])
        save_guests(db, episode_id, hosts + guests)
        run.summary["guests"] = [g.name for g in guests]
