"""Per-episode record of every pipeline stage: state, attempts, last error, when.

A stage is skipped when it is `done` for the same input hash; a `running` row left by a killed process is
simply run again.
"""

from __future__ import annotations

import sqlite_utils

from .db import utcnow, write_transaction

RUNNING, DONE, FAILED = "running", "done", "failed"


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
