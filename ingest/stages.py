"""One episode's run through the stages after its transcript: what they share, and what became of each.

`EpisodeRun` holds, for one episode, what the passages, embeddings and understanding stages read (the episode and
its transcript's segments and keys, the embedder, an HTTP client), what they hand on (the passage rows, then their
vectors), and the summary of the run: the stages that ran, those skipped on unchanged input, those that failed and
why. A stage runs under the shared runner (`archive.stages.run_stage`); here its failure is kept in the summary
and the run goes on with the stages that do not need its output, except ModelLoadError, raised at once (no
episode can go on without the model). `raise_first_failure` ends the run as StageError when a stage failed.

Keys: every input hash of these stages starts with `VERSION`. The transcript's key is what the machine made;
the text key adds a digest of a producer's corrections (archive/corrections.py `corrections_key`) for the stages
that read the text, so the run after a correction redoes them once, and an uncorrected transcript keeps the key it
always had.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import sqlite_utils

from archive import stages
from archive.corrections import corrections_key
from archive.errors import ModelLoadError, NotFoundError, StageError
from archive.passages import load_passage_rows
from archive.transcript_store import load_segments

log = logging.getLogger(__name__)

VERSION = 1  # bump when a method after the transcript changes: every episode is then indexed again


@dataclass
class EpisodeSummary:
    """What one episode's run after its transcript did: the stages that ran, those skipped on unchanged input,
    errors by stage, and what the stages that ran made (None: that stage did not run)."""

    episode_id: int
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    passages: int | None = None
    chapters: int | None = None
    chapters_source: str | None = None
    takeaways: int | None = None
    takeaways_source: str | None = None
    guests: list[str] | None = None


def _one(db: sqlite_utils.Database, sql: str, episode_id: int, missing: str) -> dict:
    rows = list(db.query(sql, [episode_id]))
    if not rows:
        raise NotFoundError(missing)
    return rows[0]


class EpisodeRun:
    """One transcribed episode's run. Raises NotFoundError for an unknown episode or one without transcript."""

    def __init__(self, db: sqlite_utils.Database, episode_id: int, embedder, client=None, force: bool = False):
        self.db, self.episode_id, self.embedder, self.client = db, episode_id, embedder, client
        self.force = force  # redo every stage even when its input is unchanged
        self.episode = _one(db, "SELECT * FROM episodes WHERE id = ?", episode_id, f"no episode with id {episode_id}")
        transcript = _one(db, "SELECT * FROM transcripts WHERE episode_id = ?", episode_id,
                          f"episode {episode_id} has no transcript")
        self.transcript_key = [transcript["content_hash"], transcript["format"], transcript["model"],
                               transcript["segment_count"], transcript["created_at"]]
        corrected = corrections_key(db, episode_id)
        self.text_key = self.transcript_key + [corrected] if corrected else self.transcript_key
        self.segments = load_segments(db, episode_id)
        self.summary = EpisodeSummary(episode_id)
        self.failures: list[tuple[str, BaseException]] = []
        self.vectors: np.ndarray | None = None  # the passages' vectors, once the embeddings stage made them
        self._rows: list[dict] | None = None
        self._own_client = None
        self.memo: dict = {}  # what one stage of this run worked out and a later stage reuses (same inputs)

    def __enter__(self) -> EpisodeRun:
        return self

    def __exit__(self, *exc) -> None:
        if self._own_client is not None:
            self._own_client.close()

    def digest(self, *parts: object) -> str:
        """The input hash of a stage of this run."""
        return stages.input_hash(VERSION, *parts, sort_keys=True)

    def needed(self, stage: str, digest: str) -> bool:
        if not self.force and stages.is_done(self.db, self.episode_id, stage, digest):
            self.summary.skipped.append(stage)
            return False
        return True

    @contextmanager
    def stage(self, stage: str, digest: str) -> Iterator[None]:
        """Run a stage on the record (`run_stage`); its failure is kept (`fail`) and the code after the block
        goes on."""
        try:
            with stages.run_stage(self.db, self.episode_id, stage, digest, reraise=(ModelLoadError,)):
                yield
        except StageError as exc:
            self.fail(stage, exc.cause)
            return
        self.summary.ran.append(stage)

    def fail(self, stage: str, exc: BaseException) -> None:
        """Keep a stage's failure in the summary; the first one ends the run (`raise_first_failure`)."""
        self.summary.errors[stage] = stages.describe(exc)
        self.failures.append((stage, exc))
        log.warning("episode %s: %s failed: %s", self.episode_id, stage, stages.describe(exc))

    def raise_first_failure(self) -> None:
        if self.failures:
            stage, cause = self.failures[0]
            raise StageError(stage, cause) from cause

    def passage_rows(self) -> list[dict]:
        """The episode's passages: as the passages stage wrote them, or as stored when it had nothing to do."""
        if self._rows is None:
            self._rows = load_passage_rows(self.db, self.episode_id)
        return self._rows

    def set_passage_rows(self, rows: list[dict]) -> None:
        self._rows = rows

    def http(self):
        if self.client is None and self._own_client is None:
            from .http import make_client

            self._own_client = make_client()
        return self.client or self._own_client
