"""Pipeline work queued by the site: episodes a producer published with audio and no transcript.

The site only queues (a cheap row); the background worker (`ingest/worker.py`, started by `podarchive serve` or run
as `podarchive work`) takes the rows, runs the pipeline for them and removes them when done. A row keeps its
attempts and last error, so the studio can show progress and a failure, and a worker killed mid-task simply takes
the row again on its next round.
"""

from __future__ import annotations

import sqlite_utils

from .db import utcnow, write_transaction

MAX_ATTEMPTS = 3


def queue_episode(db: sqlite_utils.Database, episode_id: int) -> None:
    """Queue an episode for the worker (again: attempts start over)."""
    with write_transaction(db):
        db.execute(
            """INSERT INTO work_queue (episode_id, queued_at, attempts, started_at, last_error) VALUES (?, ?, 0, NULL, NULL)
               ON CONFLICT (episode_id) DO UPDATE SET queued_at = excluded.queued_at, attempts = 0,
                                                      started_at = NULL, last_error = NULL""",
            [episode_id, utcnow()],
        )


def dequeue_episode(db: sqlite_utils.Database, episode_id: int) -> None:
    with write_transaction(db):
        db.execute("DELETE FROM work_queue WHERE episode_id = ?", [episode_id])


def next_episodes(db: sqlite_utils.Database, limit: int = 10, max_attempts: int = MAX_ATTEMPTS) -> list[int]:
    """Queued episodes still worth a try, oldest first."""
    rows = db.execute(
        "SELECT episode_id FROM work_queue WHERE attempts < ? ORDER BY queued_at, episode_id LIMIT ?",
        [max_attempts, limit],
    ).fetchall()
    return [row[0] for row in rows]


def mark_started(db: sqlite_utils.Database, episode_id: int) -> None:
    with write_transaction(db):
        db.execute("UPDATE work_queue SET started_at = ?, attempts = attempts + 1 WHERE episode_id = ?",
                   [utcnow(), episode_id])


def mark_failed(db: sqlite_utils.Database, episode_id: int, error: str) -> None:
    with write_transaction(db):
        db.execute("UPDATE work_queue SET started_at = NULL, last_error = ? WHERE episode_id = ?",
                   [error[:2000], episode_id])


def queue_entry(db: sqlite_utils.Database, episode_id: int) -> dict | None:
    """The episode's row in the queue (queued_at, attempts, started_at, last_error), or None."""
    rows = list(db.query("SELECT * FROM work_queue WHERE episode_id = ?", [episode_id]))
    if not rows:
        return None
    row = rows[0]
    row["gave_up"] = row["attempts"] >= MAX_ATTEMPTS and row["started_at"] is None
    return row
