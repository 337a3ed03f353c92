"""The background worker: pipeline work that outlives a web request.

`podarchive serve` starts one in a child process at low priority; `podarchive work` runs it on its own. Each round
it publishes the scheduled episodes whose time came, then takes the episodes the site queued
(`archive.work_queue`: published with audio and no transcript) and runs the transcript stages and the index for
each. A round holds the archive's one-writer lock (`archive.lock`), so a `podarchive ingest` running meanwhile makes
it wait for a later round instead of interleaving. Every stage records its progress in `stages`, so a worker
killed at any moment (kill -9 included) resumes where it stopped on its next start. With a broker configured
(`--broker`, PODARCHIVE_BROKER), Whisper runs on Celery workers (ingest/distributed.py) and this process stores
what they return.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from archive import work_queue
from archive.db import open_db
from archive.lock import ArchiveLockedError, archive_lock

from .pipeline import IngestOptions, IngestReport, Pipeline

if TYPE_CHECKING:
    from archive.embeddings import Embedder

    from .transcribe import Transcriber

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    ingest: IngestOptions = field(default_factory=IngestOptions)
    poll_seconds: float = 5.0  # between rounds that found nothing to do
    batch: int = 5  # episodes taken per round: the lock is let go between rounds
    niceness: int = 10  # lower priority than the site it runs beside
    broker: str | None = None  # a Celery broker: Whisper runs on `podarchive worker` processes (ingest/distributed.py)
    task_time_limit: float = 3600.0  # with a broker: the most one transcription task may take


@dataclass
class RoundReport:
    locked: bool = False  # another writer held the archive: nothing was tried
    published: list[int] = field(default_factory=list)
    done: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)

    @property
    def worked(self) -> bool:
        return bool(self.published or self.done or self.failed)


@dataclass
class WorkerModels:
    """What every round of one worker shares: the HTTP client, the transcriber and the embedder (each loads its
    model on first use), so a busy worker does not load a model again each round."""

    client: object
    transcriber: Transcriber
    embedder: Embedder
    app: object | None = None  # the Celery app, when the worker sends Whisper to a broker

    @classmethod
    def for_options(cls, options: WorkerOptions) -> WorkerModels:
        """The real models, made from the worker's settings (`podarchive work`'s options)."""
        from archive.embeddings import SentenceTransformerEmbedder

        from .http import make_client
        from .transcribe import WhisperTranscriber

        app = None
        if options.broker:
            from .distributed import AppSettings, make_app

            app = make_app(AppSettings(options.broker, time_limit=options.task_time_limit))
        return cls(make_client(), WhisperTranscriber(options.ingest.transcription),
                   SentenceTransformerEmbedder(options.ingest.embedding_model), app)


def work_round(db_path: str, options: WorkerOptions | None = None,
               models: WorkerModels | None = None) -> RoundReport:
    """One round: scheduled publishing, then up to `options.batch` queued episodes. Never raises for one episode.
    models: None makes the real ones from the options."""
    options = options or WorkerOptions()
    models = models or WorkerModels.for_options(options)
    try:
        with archive_lock(db_path, timeout=0, command="work"):
            db = open_db(db_path)
            try:
                return _round(db, options, models)
            finally:
                db.conn.close()
    except ArchiveLockedError:
        return RoundReport(locked=True)


def _round(db, options: WorkerOptions, models: WorkerModels) -> RoundReport:
    from archive.studio import publish_due

    if models.app is not None:
        from .distributed import DistributedPipeline

        pipeline = DistributedPipeline(db, options.ingest, models.client, models.transcriber, models.embedder,
                                       app=models.app)
    else:
        pipeline = Pipeline(db, options.ingest, models.client, models.transcriber, models.embedder)
    report = RoundReport(published=publish_due(db, embedder=models.embedder))
    for episode_id in work_queue.next_episodes(db, options.batch):
        error = _work_on(pipeline, episode_id)
        if error is None:
            work_queue.dequeue_episode(db, episode_id)
            report.done.append(episode_id)
        else:
            work_queue.mark_failed(db, episode_id, error)
            report.failed[episode_id] = error
    return report


def _work_on(pipeline: Pipeline, episode_id: int) -> str | None:
    """Transcribe and index one queued episode; the reason it failed, or None."""
    from .index_run import IndexOptions, build_index
    from .understand import UnderstandOptions

    db = pipeline.db
    if db.execute("SELECT 1 FROM episodes WHERE id = ?", [episode_id]).fetchone() is None:
        return None  # deleted meanwhile: nothing left to do
    work_queue.mark_started(db, episode_id)
    pipeline.report = IngestReport()
    pipeline.process_episodes([episode_id])
    if pipeline.report.failures:
        return "; ".join(f"{f.stage}: {f.error}" for f in pipeline.report.failures)
    if db.execute("SELECT 1 FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone() is None:
        return "no transcript: the episode has neither audio nor a transcript file"
    options = IndexOptions(episode_ids=[episode_id], understand=UnderstandOptions(fetch=pipeline.options.fetch))
    index = build_index(db, pipeline.embedder, options, client=pipeline.client)
    if index.failures:
        return "; ".join(str(failure[-1]) for failure in index.failures)
    return None


def run_worker(db_path: str, options: WorkerOptions | None = None, stop: threading.Event | None = None,
               once: bool = False) -> RoundReport:
    """Work rounds until `stop` is set (or one round when `once`); returns the last round's report."""
    options = options or WorkerOptions()
    stop = stop or threading.Event()
    _lower_priority(options.niceness)
    models = WorkerModels.for_options(options)
    while True:
        report = work_round(db_path, options, models)
        if report.worked:
            log.info("worker: published %s, done %s, failed %s", report.published, report.done,
                     sorted(report.failed))
        if once or stop.is_set():
            return report
        if not report.worked:
            stop.wait(options.poll_seconds)
            if stop.is_set():
                return report


def _lower_priority(niceness: int) -> None:
    try:
        os.nice(niceness)
    except (AttributeError, OSError):  # not on this platform, or not allowed: run as we are
        pass
