"""The index run (`podarchive index`, and the end of `podarchive ingest`): every stage after the transcript.

For each transcribed episode, in order: passages (ingest/passages.py) -> embeddings (ingest/passage_vectors.py) ->
understanding: chapters, takeaways, guests (ingest/understand.py), through `understand_episode`; then, once for the
archive, the search indexes (ingest/search_index.py). Everything is keyed so that a rerun does no work twice:
embeddings by (model, sha256 of the text), stages by their input hash.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable

import sqlite_utils

from archive import index_refresh
from archive.embeddings import Embedder, MemoEmbedder, default_embedder
from archive.errors import ModelLoadError, PodarchiveError
from archive.vectors import count_embeddings

from .passage_vectors import embed_passages
from .passages import PASSAGES, make_episode_passages
from .search_index import update_search_indexes
from .stages import EpisodeRun, EpisodeSummary
from .understand import UNDERSTANDING, UnderstandOptions, understand

log = logging.getLogger(__name__)

STAGES = (PASSAGES, *UNDERSTANDING)  # the rows in `stages` an episode's index run keeps


@dataclass
class IndexOptions:
    """How the index run goes. side_indexes: None builds the vector and keyword indexes beside the archive
    when it is large (archive.index_refresh.LARGE_ARCHIVE_PASSAGES or more passages), True always, False never."""

    episode_ids: list[int] | None = None  # only these episodes (default: every one with a transcript)
    side_indexes: bool | None = None
    understand: UnderstandOptions | None = None  # None = defaults


@dataclass
class IndexReport:
    episodes: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    passages: int = 0
    notes: int = 0  # documents of takeaways and episode notes (see archive/note_vectors.py)
    embeddings_computed: int = 0
    side_indexes: bool = False
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # (what, stage, error)


def understand_episode(db: sqlite_utils.Database, episode_id: int, embedder: Embedder, client=None,
                       options: UnderstandOptions | None = None) -> EpisodeSummary:
    """Bring one episode's passages, their vectors, and its chapters, takeaways and guests up to date.

    Returns a summary: counts, sources, which stages ran or were skipped, errors by stage. Raises NotFoundError
    for an unknown episode or one without transcript, StageError (after recording it) when a stage failed once
    all had their turn, and ModelLoadError at once.
    """
    options = options or UnderstandOptions()
    with EpisodeRun(db, episode_id, embedder, client, options.force) as run:
        ready = make_episode_passages(run, options.passage_target, options.passage_min, options.passage_max)
        ready = ready and embed_passages(run)
        understand(run, options, ready)
    run.raise_first_failure()
    return run.summary


def transcribed_episodes(db: sqlite_utils.Database, only: list[int] | None = None) -> list[dict]:
    sql = (
        "SELECT e.id, e.guid, e.title, s.title AS show FROM episodes e JOIN transcripts t ON t.episode_id = e.id "
        "JOIN shows s ON s.id = e.show_id ORDER BY e.show_id, e.published IS NULL, e.published, e.id"
    )
    rows = list(db.query(sql))
    if only is not None:
        wanted = set(only)
        rows = [row for row in rows if row["id"] in wanted]
    return rows


def _progress_callback(progress, total: int) -> tuple[Callable[[int, dict], None], Callable[[], None]]:
    """progress may be a callable (done, total, episode row) or a bool for a tqdm bar on stderr."""
    if callable(progress):
        return (lambda done, row: progress(done, total, row)), (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, desc="index", unit="episode", disable=not progress, dynamic_ncols=True)
    return (lambda done, row: bar.update(1)), bar.close


def build_index(db: sqlite_utils.Database, embedder: Embedder | None = None, options: IndexOptions | None = None,
                progress=None, client=None) -> IndexReport:
    """Run every stage after the transcript: each transcribed episode's, then the search indexes.

    One episode's failure is recorded (in `stages`, and in the report) and the others go on; an embedding model
    that cannot load stops the run (ModelLoadError), since nothing could be indexed.
    """
    options = options or IndexOptions()
    embedder = MemoEmbedder(embedder or default_embedder())  # key phrases recur from episode to episode
    episodes = transcribed_episodes(db, options.episode_ids)
    report = IndexReport(episodes=len(episodes))
    before = count_embeddings(db, embedder.name)
    step, close = _progress_callback(progress, len(episodes))
    try:
        for n, episode in enumerate(episodes, start=1):
            try:
                summary = understand_episode(db, episode["id"], embedder, client, options.understand)
            except ModelLoadError:
                raise
            except PodarchiveError as exc:
                report.failed += 1
                report.failures.append((f"{episode['show']} / {episode['guid']}", "index", str(exc)))
                log.warning("index: episode %s failed: %s", episode["id"], exc)
            else:
                if summary and summary.ran:
                    report.done += 1
                else:
                    report.skipped += 1
            step(n, episode)
    finally:
        close()
    searched = update_search_indexes(db, embedder, options.episode_ids, options.side_indexes)
    report.notes, report.side_indexes = searched.notes, searched.side_indexes
    report.passages = index_refresh.passage_count(db)
    report.embeddings_computed = count_embeddings(db, embedder.name) - before
    return report
