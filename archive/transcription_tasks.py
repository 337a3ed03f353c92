"""Transcriptions done by Celery workers, on the record: the `transcription_tasks` table and the idempotent store.

`ingest --broker` (ingest/distributed.py) sends one task per episode to transcribe, with a deterministic id
(`task_id`: the same episode, audio and options always give the same id). The coordinator alone writes here, as it
alone writes the rest of the archive: it records each task when sent, when a worker starts it, and when its result
is stored (`store_result`, once per task id however often the result arrives) or it failed. `podarchive status`
reads the per-show counts and each worker's throughput from here. Reads and writes the store only: no Celery.
"""

from __future__ import annotations

import hashlib
import json

import sqlite_utils

from .db import utcnow, write_transaction
from .records import Segment, TranscriptSource, Word
from .stages import DONE, mark_done, mark_failed
from .transcript_store import save_transcript

QUEUED, RUNNING, FAILED = "queued", "running", "failed"
TRANSCRIBE_STAGE = "transcribe"


def task_id(feed_url: str, guid: str, audio_url: str, options: dict) -> str:
    """The task's id: the sha256 of the episode (its show's feed and its guid), its audio URL and the options
    (keys sorted). Deterministic, so a rerun finds the result of the task it sent before."""
    payload = json.dumps([feed_url, guid, audio_url, options], sort_keys=True, default=str)
    return "podarchive-transcribe-" + hashlib.sha256(payload.encode()).hexdigest()


def get_task(db: sqlite_utils.Database, tid: str) -> dict | None:
    rows = list(db.query("SELECT * FROM transcription_tasks WHERE task_id = ?", [tid]))
    return rows[0] if rows else None


def record_sent(db: sqlite_utils.Database, tid: str, episode_id: int, audio_url: str, options: dict) -> None:
    """The task was sent (again): queued, one more attempt; its last error is kept until it ends."""
    with write_transaction(db):
        row = get_task(db, tid)
        db["transcription_tasks"].upsert({
            "task_id": tid, "episode_id": episode_id, "audio_url": audio_url,
            "options": json.dumps(options, sort_keys=True), "state": QUEUED,
            "attempts": (row["attempts"] if row else 0) + 1, "queued_at": utcnow(), "started_at": None,
            "finished_at": None, "worker": None,
        }, pk="task_id")


def mark_running(db: sqlite_utils.Database, tid: str, worker: str | None) -> None:
    with write_transaction(db):
        db.execute("UPDATE transcription_tasks SET state = ?, worker = COALESCE(?, worker), "
                   "started_at = COALESCE(started_at, ?) WHERE task_id = ? AND state != ?",
                   [RUNNING, worker, utcnow(), tid, DONE])


def note_retry(db: sqlite_utils.Database, tid: str, error: str) -> None:
    with write_transaction(db):
        db.execute("UPDATE transcription_tasks SET error = ? WHERE task_id = ? AND state != ?",
                   [error[:2000], tid, DONE])


def is_stored(db: sqlite_utils.Database, tid: str) -> bool:
    row = get_task(db, tid)
    return bool(row and row["state"] == DONE)


def store_result(db: sqlite_utils.Database, tid: str, result: dict, stage_hash: str | None = None,
                 speakers=None) -> bool:
    """Store a worker's result as its episode's transcript, in one transaction with the task's row (done, worker,
    audio and work seconds) and the episode's transcribe stage (done). Idempotent: a result that arrives again for
    a task already stored changes nothing. Returns True when it stored, False when it was stored already.
    `speakers(db, episode_id, segments) -> segments`: names the lines' speakers first, in the same transaction
    (the coordinator passes ingest/speaker_names.py `name_and_record`)."""
    with write_transaction(db):
        row = get_task(db, tid)
        if row is None:
            raise KeyError(f"no transcription task {tid}")
        if row["state"] == DONE:
            return False
        segments = [segment_from_dict(item) for item in result["segments"]]
        if speakers is not None:
            segments = speakers(db, row["episode_id"], segments)
        source = TranscriptSource(**result["source"])
        save_transcript(db, row["episode_id"], segments, source)
        db.execute(
            """UPDATE transcription_tasks SET state = ?, worker = ?, finished_at = ?, audio_seconds = ?,
                      work_seconds = ?, error = NULL WHERE task_id = ?""",
            [DONE, result.get("worker"), utcnow(), result.get("audio_seconds"), result.get("work_seconds"), tid],
        )
        mark_done(db, row["episode_id"], TRANSCRIBE_STAGE, stage_hash if stage_hash is not None else tid)
    return True


def mark_task_failed(db: sqlite_utils.Database, tid: str, error: str, worker: str | None = None) -> None:
    """The task failed every try: the task's row and the episode's transcribe stage say why (`podarchive status`)."""
    with write_transaction(db):
        row = get_task(db, tid)
        if row is None or row["state"] == DONE:
            return
        worker = worker or row["worker"]
        db.execute("UPDATE transcription_tasks SET state = ?, worker = ?, finished_at = ?, error = ? "
                   "WHERE task_id = ?", [FAILED, worker, utcnow(), error[:2000], tid])
        where = f" on worker {worker}" if worker else ""
        mark_failed(db, row["episode_id"], TRANSCRIBE_STAGE, f"transcription task failed{where}: {error}")


def segment_to_dict(segment: Segment) -> dict:
    data = {"start": segment.start, "end": segment.end, "text": segment.text, "speaker": segment.speaker}
    if segment.words:
        data["words"] = [[w.word, w.start, w.end, w.probability] for w in segment.words]
    return data


def segment_from_dict(data: dict) -> Segment:
    words = [Word(*w) for w in data["words"]] if data.get("words") else None
    return Segment(data["start"], data["end"], data["text"], data.get("speaker"), words)


def show_task_counts(db: sqlite_utils.Database, show_id: int) -> dict:
    """A show's tasks: how many queued, running (and on which workers), done and failed."""
    counts = {state: 0 for state in (QUEUED, RUNNING, DONE, FAILED)}
    for state, n in db.execute(
        """SELECT t.state, COUNT(*) FROM transcription_tasks t JOIN episodes e ON e.id = t.episode_id
           WHERE e.show_id = ? GROUP BY t.state""", [show_id]):
        counts[state] = n
    running = [row[0] for row in db.execute(
        """SELECT COALESCE(t.worker, '?') FROM transcription_tasks t JOIN episodes e ON e.id = t.episode_id
           WHERE e.show_id = ? AND t.state = ? ORDER BY t.worker""", [show_id, RUNNING])]
    return {**counts, "running_on": running}


def worker_throughput(db: sqlite_utils.Database) -> list[dict]:
    """Each worker's tasks done, audio seconds, work seconds and audio seconds per second of its work."""
    rows = db.query(
        """SELECT worker, COUNT(*) AS tasks, SUM(audio_seconds) AS audio_seconds, SUM(work_seconds) AS work_seconds
           FROM transcription_tasks WHERE state = ? AND worker IS NOT NULL GROUP BY worker ORDER BY worker""", [DONE])
    return [{**row, "audio_per_second": round(row["audio_seconds"] / row["work_seconds"], 2)
             if row["work_seconds"] else None} for row in rows]
