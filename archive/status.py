"""What `podarchive status` reports: each show's episodes by stage, its transcription tasks on Celery workers
(queued, running on which worker, done, failed), each worker's throughput, and every failure with its reason."""

from __future__ import annotations

from collections import defaultdict

import sqlite_utils

from .transcription_tasks import show_task_counts, worker_throughput


def archive_status(db: sqlite_utils.Database) -> dict:
    shows = []
    for show in db.query("SELECT * FROM shows ORDER BY title, id"):
        counts = db.execute(
            """SELECT COUNT(*),
                      SUM(t.id IS NOT NULL),
                      SUM(t.source = 'feed'),
                      SUM(t.source = 'whisper')
               FROM episodes e LEFT JOIN transcripts t ON t.episode_id = e.id WHERE e.show_id = ?""",
            [show["id"]],
        ).fetchone()
        by_stage: dict[str, dict[str, int]] = defaultdict(dict)
        for row in db.query(
            """SELECT s.stage, s.state, COUNT(*) AS n FROM stages s JOIN episodes e ON e.id = s.episode_id
               WHERE e.show_id = ? GROUP BY s.stage, s.state""",
            [show["id"]],
        ):
            by_stage[row["stage"]][row["state"]] = row["n"]
        shows.append({
            "id": show["id"],
            "title": show["title"],
            "feed_url": show["feed_url"],
            "fetched_at": show["fetched_at"],
            "episodes": counts[0] or 0,
            "transcripts": counts[1] or 0,
            "feed_transcripts": counts[2] or 0,
            "whisper_transcripts": counts[3] or 0,
            "stages": dict(by_stage),
            "last_error": show["last_error"],
            "last_error_at": show["last_error_at"],
            "tasks": show_task_counts(db, show["id"]),
            "artwork": artwork_counts(db, show["id"]),
        })
    failures = list(db.query(
        """SELECT sh.title AS show, e.guid, e.title AS episode_title, s.stage, s.attempts, s.last_error AS error,
                  s.updated_at
           FROM stages s JOIN episodes e ON e.id = s.episode_id JOIN shows sh ON sh.id = e.show_id
           WHERE s.state = 'failed' ORDER BY sh.title, e.guid, s.stage"""
    ))
    return {"shows": shows, "failures": failures, "workers": worker_throughput(db)}


def artwork_counts(db: sqlite_utils.Database, show_id: int) -> dict:
    """The show's and its episodes' artwork (ingest/artwork.py): how many images are stored, how many could not
    be, and the latest reason one could not."""
    urls = """SELECT image FROM shows WHERE id = :show UNION SELECT image FROM episodes WHERE show_id = :show"""
    stored, failed = db.execute(
        f"SELECT SUM(sha256 IS NOT NULL), SUM(sha256 IS NULL) FROM artwork WHERE url IN ({urls})",
        {"show": show_id}).fetchone()
    latest = db.execute(
        f"SELECT url, error FROM artwork WHERE sha256 IS NULL AND url IN ({urls}) ORDER BY fetched_at DESC LIMIT 1",
        {"show": show_id}).fetchone()
    return {"stored": stored or 0, "failed": failed or 0,
            "last_error": f"{latest[0]}: {latest[1]}" if latest else None}
