"""Per-episode record of every pipeline stage: state, attempts, input hash, last error, when; and the one runner
that keeps it (`run_stage`), used by every stage of ingest/.

A stage is skipped when it is `done` for the same input hash; a `running` row left by a killed process is
simply run again.
"""

from __future__ import annotations

import hashlib
import json
from contextlib import contextmanager
from typing import Iterator

import sqlite_utils

from .db import utcnow, write_transaction
from .errors import PodarchiveError, StageError

RUNNING, DONE, FAILED = "running", "done", "failed"


def input_hash(*parts: object, sort_keys: bool = False) -> str:
    """What a stage ran on: the sha256 of its parts as JSON (a value JSON cannot hold as its str()).

    `sort_keys` orders the keys of dicts among the parts: the stages after the transcript hash theirs sorted, the
    transcript's stages in their own order, and each keeps the hashes archives already hold."""
    return hashlib.sha256(json.dumps(list(parts), default=str, sort_keys=sort_keys).encode()).hexdigest()


def describe(exc: BaseException) -> str:
    """A one-line reason for the record: named errors speak for themselves, others get their type."""
    if isinstance(exc, PodarchiveError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}"


@contextmanager
def run_stage(db: sqlite_utils.Database, episode_id: int, stage: str, digest: str | None,
              reraise: tuple[type[BaseException], ...] = ()) -> Iterator[None]:
    """Run one stage of one episode on the record: `running` (one more attempt) with its input hash, then `done`.

    Any failure is recorded (`failed`, with `describe`'s reason) and raised as StageError(stage, cause); one of
    the `reraise` kinds is raised as it is (a model that cannot load is no single episode's failure). A process
    killed meanwhile leaves `running`, which the next run simply runs again."""
    mark_running(db, episode_id, stage, digest)
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - hostile input may break a third-party parser in any way
        mark_failed(db, episode_id, stage, describe(exc))
        if isinstance(exc, reraise):
            raise
        raise StageError(stage, exc) from exc
    mark_done(db, episode_id, stage, digest)


def get_stage(db: sqlite_utils.Database, episode_id: int, stage: str) -> dict | None:
    rows = list(db.query("SELECT * FROM stages WHERE episode_id = ? AND stage = ?", [episode_id, stage]))
    return rows[0] if rows else None


def is_done(db: sqlite_utils.Database, episode_id: int, stage: str, input_hash: str | None) -> bool:
    row = get_stage(db, episode_id, stage)
    return bool(row and row["state"] == DONE and row["input_hash"] == input_hash)


def mark_running(db: sqlite_utils.Database, episode_id: int, stage: str, input_hash: str | None) -> None:
    with write_transaction(db):  # read and write in one transaction: the count stays right
        row = get_stage(db, episode_id, stage)
        attempts = (row["attempts"] if row else 0) + 1
        db["stages"].upsert(
            {
                "episode_id": episode_id,
                "stage": stage,
                "state": RUNNING,
                "attempts": attempts,
                "input_hash": input_hash,
                "last_error": row["last_error"] if row else None,
                "updated_at": utcnow(),
            },
            pk=("episode_id", "stage"),
        )


def mark_done(db: sqlite_utils.Database, episode_id: int, stage: str, input_hash: str | None) -> None:
    with write_transaction(db):
        db["stages"].upsert(
            {
                "episode_id": episode_id,
                "stage": stage,
                "state": DONE,
                "input_hash": input_hash,
                "last_error": None,
                "updated_at": utcnow(),
            },
            pk=("episode_id", "stage"),
        )


def mark_failed(db: sqlite_utils.Database, episode_id: int, stage: str, error: str) -> None:
    with write_transaction(db):
        db["stages"].upsert(
            {
                "episode_id": episode_id,
                "stage": stage,
                "state": FAILED,
                "last_error": error[:2000],
                "updated_at": utcnow(),
            },
            pk=("episode_id", "stage"),
        )


def reset_stages(db: sqlite_utils.Database, episode_id: int, stages: list[str]) -> None:
    """Forget stages so they run again (an episode's enclosure or notes changed)."""
    with write_transaction(db):
        for stage in stages:
            db.execute("DELETE FROM stages WHERE episode_id = ? AND stage = ?", [episode_id, stage])
