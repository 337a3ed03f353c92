"""Transcription on Celery workers (ingest/distributed.py): a real Redis on loopback, real `podarchive worker`
processes, the real bundled model with beam size 1 on short clips. The store's idempotence and the task id are
unit-tested without Redis."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from archive import transcription_tasks as tasks_table
from archive.cli import cli
from archive.db import open_db
from archive.records import Segment, TranscriptSource, Word
from archive.transcript_store import decode_words
from conftest import SHARED
from ingest.pipeline import IngestOptions, ingest_sources
from ingest.transcribe import TranscriptionOptions

PODARCHIVE = [sys.executable, "-m", "archive.cli"]
DATACAST = SHARED / "datacast"
AUDIO = SHARED / "audio"


# -- unit: the task id and the idempotent store ---------------------------------------------------------------


def test_task_id_is_deterministic_and_changes_with_each_input():
    options = {"model": None, "beam_size": 1, "language": "en"}
    one = tasks_table.task_id("http://a/feed.xml", "ep-1", "http://a/1.mp3", options)
    assert one == tasks_table.task_id("http://a/feed.xml", "ep-1", "http://a/1.mp3", dict(reversed(options.items())))
    others = {
        tasks_table.task_id("http://b/feed.xml", "ep-1", "http://a/1.mp3", options),
        tasks_table.task_id("http://a/feed.xml", "ep-2", "http://a/1.mp3", options),
        tasks_table.task_id("http://a/feed.xml", "ep-1", "http://a/2.mp3", options),
        tasks_table.task_id("http://a/feed.xml", "ep-1", "http://a/1.mp3", {**options, "beam_size": 5}),
    }
    assert one not in others and len(others) == 4


def _episode(db) -> int:
    db["shows"].insert({"feed_url": "http://a/feed.xml", "title": "A"})
    show_id = db.execute("SELECT id FROM shows").fetchone()[0]
    db["episodes"].insert({"show_id": show_id, "guid": "ep-1", "title": "One", "enclosure_url": "http://a/1.mp3"})
    return db.execute("SELECT id FROM episodes").fetchone()[0]


def _result(text="Hello there.") -> dict:
    segments = [Segment(0.0, 1.5, text, words=[Word("Hello", 0.0, 0.5, 0.9), Word("there.", 0.6, 1.5, 0.8)]),
                Segment(1.5, 3.0, "Second line.")]
    source = TranscriptSource(source="whisper", source_url="http://a/1.mp3", format="whisper", model="tiny.en",
                              options={"beam_size": 1}, language="en", content_hash="ab" * 32)
    from dataclasses import asdict

    return {"segments": [tasks_table.segment_to_dict(s) for s in segments], "source": asdict(source),
            "worker": "w1@host", "audio_seconds": 3.0, "work_seconds": 1.5}


def test_a_result_that_arrives_twice_is_stored_once(db):
    episode_id = _episode(db)
    tid = tasks_table.task_id("http://a/feed.xml", "ep-1", "http://a/1.mp3", {})
    tasks_table.record_sent(db, tid, episode_id, "http://a/1.mp3", {"beam_size": 1})
    assert tasks_table.store_result(db, tid, _result()) is True
    first = db.execute("SELECT id FROM transcripts").fetchall()
    assert tasks_table.store_result(db, tid, _result("Something else.")) is False
    assert db.execute("SELECT id FROM transcripts").fetchall() == first
    assert [r[0] for r in db.execute("SELECT text FROM segments ORDER BY idx")] == ["Hello there.", "Second line."]
    words = db.execute("SELECT words FROM segments WHERE idx = 0").fetchone()[0]
    assert decode_words(words)[1].word == "there."
    row = tasks_table.get_task(db, tid)
    assert (row["state"], row["worker"], row["audio_seconds"], row["attempts"]) == ("done", "w1@host", 3.0, 1)
    stage = db.execute("SELECT state, input_hash FROM stages WHERE stage = 'transcribe'").fetchone()
    assert stage == ("done", tid)
    # a failure reported after the result was stored changes nothing
    tasks_table.mark_task_failed(db, tid, "late duplicate failed")
    assert tasks_table.get_task(db, tid)["state"] == "done"
    assert tasks_table.worker_throughput(db)[0]["audio_per_second"] == 2.0


def test_a_task_that_failed_is_on_the_episode(db):
    episode_id = _episode(db)
    tasks_table.record_sent(db, "t1", episode_id, "http://a/1.mp3", {})
    tasks_table.mark_running(db, "t1", "w2@host")
    assert tasks_table.show_task_counts(db, 1)["running_on"] == ["w2@host"]
    tasks_table.mark_task_failed(db, "t1", "audio http://a/1.mp3 is text/html, not audio")
    stage = db.execute("SELECT state, last_error FROM stages WHERE stage = 'transcribe'").fetchone()
    assert stage[0] == "failed" and "not audio" in stage[1] and "w2@host" in stage[1]
    assert tasks_table.show_task_counts(db, 1)["failed"] == 1


# -- Redis and real workers -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def redis_url(tmp_path):
    """A redis-server of our own on a free loopback port, without persistence; stopped after the test."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (`make test` installs the Debian package redis-server)")
    port = _free_port()
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Workers:
    def __init__(self, broker: str, folder: Path):
        self.broker, self.folder, self.procs = broker, folder, {}

    def start(self, name: str, *extra: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        proc = subprocess.Popen([*PODARCHIVE, "worker", "--broker", self.broker, "--concurrency", "1", "--name", name,
                                 *extra], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = proc
        return proc

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name in self.procs:
            while b"ready." not in (self.folder / f"{name}.log").read_bytes():
                assert self.procs[name].poll() is None, self.log(name)
                assert time.monotonic() < deadline, f"worker {name} not ready:\n{self.log(name)}"
                time.sleep(0.1)

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(errors="replace")[-3000:]

    def kill(self, name: str) -> None:
        """SIGKILL the worker and its pool processes: the machine is gone."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                    proc.wait(timeout=15)
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


@pytest.fixture
def workers(redis_url, tmp_path):
    started = Workers(redis_url, tmp_path)
    yield started
    started.stop()


def segments_by_guid(db) -> dict[str, list[tuple]]:
    found: dict[str, list[tuple]] = {}
    for guid, start, end, text in db.execute(
            """SELECT e.guid, s.start, s.end, s.text FROM segments s JOIN transcripts t ON t.id = s.transcript_id
               JOIN episodes e ON e.id = t.episode_id ORDER BY e.guid, s.idx"""):
        found.setdefault(guid, []).append((start, end, text))
    return found


@pytest.mark.redis
@pytest.mark.slow
def test_two_workers_make_the_segments_of_a_single_machine_run(workers, serve, tmp_path):
    base = serve(DATACAST)
    workers.start("w1")
    workers.start("w2")
    workers.wait_ready()
    feed = f"{base}/feed-short.xml"
    result = CliRunner().invoke(cli, ["ingest", feed, "--broker", workers.broker, "--beam-size", "1", "--no-index",
                                      "--db", str(tmp_path / "remote.db"), "--media-dir", str(tmp_path / "m1")])
    assert result.exit_code == 0, result.output
    remote = open_db(tmp_path / "remote.db")

    local = open_db(tmp_path / "local.db")
    report = ingest_sources(local, [feed], IngestOptions(media_dir=tmp_path / "m2", index=False,
                                                         transcription=TranscriptionOptions(beam_size=1)))
    assert report.ok, report.failures
    assert segments_by_guid(remote) == segments_by_guid(local) and segments_by_guid(remote)["datacast-070-short"]
    task = remote.execute("SELECT state, worker, audio_seconds, work_seconds FROM transcription_tasks").fetchall()
    assert len(task) == 1 and task[0][0] == "done" and task[0][1].split("@")[0] in ("w1", "w2")
    assert 50 < task[0][2] < 60 and task[0][3] > 0
    made = remote.execute("SELECT model, options FROM transcripts").fetchone()
    assert made[0] == "tiny.en" and '"beam_size": 1' in made[1]

    status = CliRunner().invoke(cli, ["status", "--db", str(tmp_path / "remote.db")])
    assert "transcription tasks: 0 queued, 0 running, 1 done" in status.output
    assert "audio seconds per second" in status.output

    # a rerun sends nothing: the task is stored
    again = CliRunner().invoke(cli, ["ingest", feed, "--broker", workers.broker, "--beam-size", "1", "--no-index",
                                     "--db", str(tmp_path / "remote.db")])
    assert again.exit_code == 0 and "0 made, 1 already done" in again.output
    assert remote.execute("SELECT attempts FROM transcription_tasks").fetchone()[0] == 1


def _clips_feed(folder: Path) -> list[str]:
    """A feed of four short real clips and one file that is not audio; returns the good episodes' guids."""
    clips = {"datacast": DATACAST / "episode-070-short.mp3", "jfk": AUDIO / "jfk" / "jfk.mp3",
             "sonnet": AUDIO / "librivox_sonnets" / "sonnet_p001.mp3", "lj": AUDIO / "ljspeech" / "LJ001-0001.mp3"}
    items = []
    for guid, path in clips.items():
        shutil.copy(path, folder / f"{guid}.mp3")
        items.append((guid, f"{guid}.mp3"))
    (folder / "broken.mp3").write_text("this is not audio at all " * 50)
    items.append(("broken", "broken.mp3"))
    body = "".join(f"<item><title>{g}</title><guid>{g}</guid><enclosure url=\"{f}\" type=\"audio/mpeg\"/></item>"
                   for g, f in items)
    (folder / "feed.xml").write_text(f'<?xml version="1.0"?><rss version="2.0"><channel><title>Clips</title>'
                                     f"{body}</channel></rss>")
    return list(clips)


@pytest.mark.redis
@pytest.mark.slow
def test_a_worker_killed_mid_task_loses_and_duplicates_nothing(workers, serve, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    good = _clips_feed(site)
    base = serve(site)
    for name in ("w1", "w2"):
        workers.start(name, "--time-limit", "120", "--visibility-timeout", "8")
    workers.wait_ready()
    db_path = tmp_path / "kill.db"
    coordinator = subprocess.Popen([*PODARCHIVE, "ingest", f"{base}/feed.xml", "--broker", workers.broker,
                                    "--beam-size", "1", "--no-index", "--db", str(db_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    killed = None
    deadline = time.monotonic() + 60
    while killed is None and time.monotonic() < deadline and coordinator.poll() is None:
        try:
            with sqlite3.connect(db_path, timeout=1) as conn:
                row = conn.execute(  # one of the two longest clips (50 s of audio): seconds of work left
                    "SELECT t.worker, t.task_id FROM transcription_tasks t JOIN episodes e ON e.id = t.episode_id "
                    "WHERE t.state = 'running' AND t.worker IS NOT NULL AND e.guid IN ('datacast', 'sonnet') "
                    "LIMIT 1").fetchone()
        except sqlite3.Error:
            row = None
        if row:
            killed, lost_task = row[0].split("@")[0], row[1]
            workers.kill(killed)
        time.sleep(0.05)
    assert killed, "no task was seen running"
    output = coordinator.communicate(timeout=180)[0].decode()
    assert coordinator.returncode == 1, output  # the broken file failed; everything else was done
    db = open_db(db_path)
    transcribed = db.execute("SELECT e.guid, COUNT(*) FROM transcripts t JOIN episodes e ON e.id = t.episode_id "
                             "GROUP BY e.guid").fetchall()
    assert sorted(transcribed) == sorted((guid, 1) for guid in good), output
    tasks = db.execute("SELECT e.guid, t.state, t.worker, t.error FROM transcription_tasks t "
                       "JOIN episodes e ON e.id = t.episode_id").fetchall()
    assert len(tasks) == 5 and len({t[0] for t in tasks}) == 5
    states = {t[0]: t[1] for t in tasks}
    assert states == {**{guid: "done" for guid in good}, "broken": "failed"}
    survivor = "w2" if killed == "w1" else "w1"
    assert {t[2].split("@")[0] for t in tasks if t[1] == "done"} <= {killed, survivor}
    # the task the killed worker was running was run again, by the survivor, and stored once
    assert db.execute("SELECT state, worker FROM transcription_tasks WHERE task_id = ?",
                      [lost_task]).fetchone()[1].split("@")[0] == survivor
    failure = db.execute("SELECT s.state, s.last_error FROM stages s JOIN episodes e ON e.id = s.episode_id "
                         "WHERE e.guid = 'broken' AND stage = 'transcribe'").fetchone()
    assert failure[0] == "failed" and f"{base}/broken.mp3 is not readable audio" in failure[1], failure
    assert "on worker " in failure[1]
    status = subprocess.run([*PODARCHIVE, "status", "--db", str(db_path)], capture_output=True, text=True)
    assert "broken" in status.stdout and "1 failed" in status.stdout


@pytest.mark.redis
def test_an_unreachable_broker_fails_at_once_and_writes_nothing(tmp_path):
    db_path = tmp_path / "none.db"
    began = time.monotonic()
    result = subprocess.run([*PODARCHIVE, "ingest", str(DATACAST / "feed-short.xml"), "--broker",
                             f"redis://127.0.0.1:{_free_port()}/0", "--db", str(db_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert time.monotonic() - began < 15
    assert "cannot reach the broker" in result.stderr
    assert not db_path.exists() or open_db(db_path).execute("SELECT COUNT(*) FROM episodes").fetchone()[0] == 0


def test_the_embedded_default_imports_no_celery():
    code = ("import sys, archive.cli, ingest.pipeline, ingest.worker, archive.web; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu', 'redis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.redis
@pytest.mark.slow
def test_a_coordinator_killed_mid_run_sends_nothing_again_on_rerun(workers, serve, tmp_path):
    from ingest.distributed import make_app

    base = serve(DATACAST)
    db_path = tmp_path / "coord.db"
    command = [*PODARCHIVE, "ingest", f"{base}/feed-short.xml", "--broker", workers.broker, "--beam-size", "1",
               "--no-index", "--db", str(db_path)]
    # no worker yet: the task waits in the queue; the coordinator is killed while it waits
    coordinator = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    tid = None
    while tid is None and time.monotonic() < deadline:
        try:
            with sqlite3.connect(db_path, timeout=1) as conn:
                row = conn.execute("SELECT task_id FROM transcription_tasks").fetchone()
                tid = row and row[0]
        except sqlite3.Error:
            pass
        time.sleep(0.05)
    assert tid, "no task was sent"
    time.sleep(0.5)
    coordinator.kill()
    coordinator.wait()
    # a rerun while the task still waits in the queue finds it there and sends nothing
    from ingest.distributed import DistributedPipeline
    from ingest.pipeline import IngestOptions
    from ingest.transcribe import WhisperTranscriber

    app = make_app(workers.broker)
    db = open_db(db_path)
    pipeline = DistributedPipeline(db, IngestOptions(index=False), transcriber=WhisperTranscriber(
        TranscriptionOptions(beam_size=1)), app=app)
    assert pipeline.queued_task_ids() == {tid}
    assert list(pipeline.send([dict(db["episodes"].get(1))])) == [tid]
    assert db.execute("SELECT attempts, state FROM transcription_tasks").fetchall() == [(1, "queued")]
    db.conn.close()
    # a worker does the task while no coordinator runs: its result waits in Redis
    workers.start("w1")
    deadline = time.monotonic() + 90
    while app.AsyncResult(tid).state != "SUCCESS":
        assert time.monotonic() < deadline, workers.log("w1")
        time.sleep(0.1)
    # the rerun stores the waiting result: nothing sent again, nothing transcribed twice
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "1 made" in rerun.stdout
    db = open_db(db_path)
    assert db.execute("SELECT attempts, state FROM transcription_tasks").fetchall() == [(1, "done")]
    assert db.execute("SELECT COUNT(*) FROM transcripts").fetchone()[0] == 1
    assert app.AsyncResult(tid).state == "PENDING"  # forgotten once stored
    assert workers.log("w1").count("succeeded in") == 1


@pytest.mark.redis
@pytest.mark.slow
def test_the_background_worker_sends_published_audio_to_the_broker(workers, serve, tmp_path):
    from archive import studio, work_queue
    from ingest.distributed import make_app
    from ingest.http import FetchRules, make_client
    from ingest.transcribe import WhisperTranscriber
    from ingest.worker import WorkerModels, WorkerOptions, work_round
    from fakes import FakeEmbedder

    class Producer:
        id, name = 1, "alice"

    base = serve(DATACAST)
    workers.start("w1")
    workers.wait_ready()
    db_path = tmp_path / "site.db"
    db = open_db(db_path)
    show_id = studio.create_show(db, "Hosted")
    episode_id = studio.create_episode(db, show_id, {"title": "Remote talk", "notes_markdown": "Notes.",
                                                     "audio_url": f"{base}/episode-070-short.mp3"}, Producer())
    assert studio.publish(db, episode_id, Producer())["needs_transcript"]
    options = WorkerOptions(broker=workers.broker, ingest=IngestOptions(
        media_dir=tmp_path / "media", transcription=TranscriptionOptions(beam_size=1),
        fetch=FetchRules(allow_private_addresses=True)))  # the audio is on loopback
    models = WorkerModels(make_client(), WhisperTranscriber(options.ingest.transcription), FakeEmbedder(),
                          make_app(workers.broker))
    report = work_round(str(db_path), options, models)
    assert report.done == [episode_id] and not report.failed, report
    row = db.execute("SELECT state, worker FROM transcription_tasks WHERE episode_id = ?", [episode_id]).fetchone()
    assert row[0] == "done" and row[1].startswith("w1@")
    assert db.execute("SELECT COUNT(*) FROM passages WHERE episode_id = ?", [episode_id]).fetchone()[0] > 0
    assert work_queue.queue_entry(db, episode_id) is None
