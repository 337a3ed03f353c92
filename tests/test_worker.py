"""The background worker: what producers publish gets transcribed and indexed outside the web request, scheduled
episodes go out on time, a `kill -9` mid-task resumes, and `serve` starts and stops its worker."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from archive import studio, work_queue
from archive.db import open_db
from archive.lock import archive_lock
from conftest import SHARED
from fakes import FakeEmbedder, FakeTranscriber
from ingest.http import make_client
from ingest.pipeline import IngestOptions
from ingest.worker import WorkerModels, WorkerOptions, work_round

PODARCHIVE = [sys.executable, "-m", "archive.cli"]
JFK = SHARED / "audio" / "jfk" / "jfk.mp3"
DATACAST_CLIP = SHARED / "datacast" / "episode-070-short.mp3"


@dataclass
class Producer:
    id: int = 1
    name: str = "alice"


def published_with_upload(db, media: Path, audio: Path, title="Uploaded talk") -> int:
    """A hosted show's episode whose audio a producer uploaded, published: queued for the worker."""
    (media / "uploads").mkdir(parents=True, exist_ok=True)
    stored = media / "uploads" / f"upload-{audio.stem}.mp3"
    shutil.copyfile(audio, stored)
    show_id = studio.create_show(db, "Hosted")
    episode_id = studio.create_episode(db, show_id, {"title": title, "notes_markdown": "Notes.",
                                                     "audio_url": str(stored)}, Producer())
    result = studio.publish(db, episode_id, Producer())
    assert result["needs_transcript"]
    return episode_id


@pytest.fixture
def media(tmp_path, monkeypatch):
    folder = tmp_path / "media"
    monkeypatch.setenv("PODARCHIVE_MEDIA_DIR", str(folder))
    return folder


def worker_options(media: Path) -> WorkerOptions:
    return WorkerOptions(ingest=IngestOptions(media_dir=media), poll_seconds=0.1)


@pytest.mark.slow
def test_a_published_upload_is_transcribed_and_indexed_by_the_worker(tmp_path, media):
    db_path = tmp_path / "a.db"
    db = open_db(db_path)
    episode_id = published_with_upload(db, media, JFK)
    assert work_queue.queue_entry(db, episode_id) is not None
    report = work_round(str(db_path), worker_options(media))
    assert report.done == [episode_id] and not report.failed, report
    text = " ".join(r[0] for r in db.execute("SELECT text FROM segments")).lower()
    assert "ask not what your country can do for you" in text
    assert db.execute("SELECT COUNT(*) FROM passages WHERE episode_id = ?", [episode_id]).fetchone()[0] > 0
    assert work_queue.queue_entry(db, episode_id) is None
    from archive.search import search

    hits = search(db, "what your country can do", mode="keyword")
    assert hits and hits[0].episode_id == episode_id


def test_scheduled_episodes_go_out_when_their_time_comes(tmp_path, media):
    db_path = tmp_path / "a.db"
    db = open_db(db_path)
    show_id = studio.create_show(db, "Hosted")
    episode_id = studio.create_episode(db, show_id, {"title": "Later", "notes_markdown": "Soon."}, Producer())
    at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=1)
    assert studio.publish(db, episode_id, Producer(), at=at)["state"] == "scheduled"
    assert work_round(str(db_path), worker_options(media)).published == []
    time.sleep(1.2)
    assert work_round(str(db_path), worker_options(media)).published == [episode_id]
    assert db.execute("SELECT state FROM episodes WHERE id = ?", [episode_id]).fetchone()[0] == "published"


def test_a_round_waits_while_another_writer_holds_the_archive(tmp_path, media):
    db_path = tmp_path / "a.db"
    open_db(db_path).conn.close()
    with archive_lock(db_path, timeout=0, command="ingest"):
        assert work_round(str(db_path), worker_options(media)).locked


def test_an_episode_that_cannot_be_transcribed_fails_with_its_reason(tmp_path, media):
    db_path = tmp_path / "a.db"
    db = open_db(db_path)
    (media / "uploads").mkdir(parents=True)
    broken = media / "uploads" / "broken.mp3"
    broken.write_bytes(b"ID3" + b"\0" * 5000)  # sniffs as MP3, decodes to nothing
    show_id = studio.create_show(db, "Hosted")
    episode_id = studio.create_episode(db, show_id, {"title": "Broken", "notes_markdown": "x",
                                                     "audio_url": str(broken)}, Producer())
    studio.publish(db, episode_id, Producer())
    models = WorkerModels(make_client(), FakeTranscriber(), FakeEmbedder())
    report = work_round(str(db_path), worker_options(media), models)
    assert episode_id in report.failed and "transcribe" in report.failed[episode_id]
    entry = work_queue.queue_entry(db, episode_id)
    assert entry["attempts"] == 1 and entry["last_error"]
    for _ in range(work_queue.MAX_ATTEMPTS):
        work_round(str(db_path), worker_options(media), models)
    assert work_queue.queue_entry(db, episode_id)["gave_up"]  # tried MAX_ATTEMPTS times, then left alone


@pytest.mark.slow
def test_a_worker_killed_mid_transcription_resumes(tmp_path, media):
    db_path = tmp_path / "a.db"
    db = open_db(db_path)
    episode_id = published_with_upload(db, media, DATACAST_CLIP, title="Datacast clip")
    db.conn.close()
    env = dict(os.environ, PODARCHIVE_MEDIA_DIR=str(media))
    worker = subprocess.Popen([*PODARCHIVE, "work", "--db", str(db_path), "--once"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and worker.poll() is None:
        try:
            with sqlite3.connect(db_path, timeout=1) as conn:
                row = conn.execute("SELECT state FROM stages WHERE stage = 'transcribe'").fetchone()
        except sqlite3.Error:
            row = None
        if row and row[0] == "running":
            worker.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    worker.wait()
    assert worker.returncode == -signal.SIGKILL, "the worker finished before it could be killed"
    done = subprocess.run([*PODARCHIVE, "work", "--db", str(db_path), "--once"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "transcribed 1" in done.stdout, done.stdout + done.stderr
    db = open_db(db_path)
    assert db.execute("SELECT COUNT(*) FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone()[0] == 1
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_processes(db_path: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", f"archive.cli work --db {db_path}"], capture_output=True, text=True)
    return [int(pid) for pid in found.stdout.split()]


@pytest.mark.slow
def test_serve_starts_its_worker_and_takes_it_down(tmp_path, media):
    db_path = (tmp_path / "a.db").resolve()
    db = open_db(db_path)
    episode_id = published_with_upload(db, media, JFK)
    env = dict(os.environ, PODARCHIVE_MEDIA_DIR=str(media))
    # Ctrl+C must reach it as it does from a terminal, even when pytest runs in the background (a shell starts
    # background jobs with SIGINT ignored, and the child would inherit that)
    server = subprocess.Popen([*PODARCHIVE, "serve", "--db", str(db_path), "--workers", "1", "--port",
                               str(free_port())], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if db.execute("SELECT 1 FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone():
                break
            time.sleep(0.5)
        else:
            pytest.fail("the worker started by serve did not transcribe the episode")
        assert worker_processes(db_path)
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=30)  # serve gives its worker 10 s after SIGTERM, then kills it
    deadline = time.monotonic() + 15
    while worker_processes(db_path) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not worker_processes(db_path)
