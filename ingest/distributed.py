"""Transcription spread over many machines: a Celery app with a Redis broker, its one task, the worker, and the
coordinator (`podarchive ingest --broker URL`).

The single-machine default never comes here: nothing imports Celery at module level, and this module imports it
only inside the functions that make the app.

- The task (`transcribe_audio`, registered as `podarchive.transcribe`) takes small arguments: the audio URL, the
  transcription options, the feed's fetch rules and trust policy, the size cap. It downloads with the checks of
  local ingest (ingest/audio.py: size cap, media type, address policy), transcribes with faster-whisper on the
  worker's own device and compute type (and its own model folder, when it names one), and returns the segments,
  the TranscriptSource fields, the worker's name, the audio's duration and the seconds it took. It writes nothing
  but its result: the coordinator alone writes the archive, so SQLite keeps one writer.
- Acknowledged late and rejected when its worker is lost (a worker killed mid-task has its task run again
  elsewhere), one task prefetched per process, a hard time limit, retries with exponential backoff for transient
  errors (network), results kept in Redis for 30 days until the coordinator has stored (then forgotten) them.
- The coordinator (`DistributedPipeline`) is the ingest pipeline with the Whisper step sent out: feeds, feed
  transcripts and the index run as usual. Audio that only this machine holds (a producer's upload, a local feed's
  file) is transcribed here, as in the embedded mode: a worker elsewhere could not read it. Each task id is
  deterministic (archive/transcription_tasks.py `task_id`) and recorded before it is sent, so a coordinator killed
  mid-run looks up on rerun the results of the tasks it had sent (and the tasks still queued) before sending
  anything again; `store_result` stores a result once however often it arrives.
"""

from __future__ import annotations

import json
import logging
import re
import socket
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from archive import stages
from archive import transcription_tasks as tasks_table
from archive.errors import PodarchiveError

from .http import FetchRules
from .pipeline import TRANSCRIBE, Pipeline, options_fingerprint
from .trust import FetchPolicy

log = logging.getLogger(__name__)

TASK_NAME = "podarchive.transcribe"
QUEUE = "podarchive-transcribe"
RESULT_EXPIRES = 30 * 24 * 3600  # results wait this long for a coordinator to store them
DEFAULT_TIME_LIMIT = 3600.0  # one task, download and Whisper (PODARCHIVE_TASK_TIME_LIMIT)
RETRIES, BACKOFF_SECONDS = 4, 10.0  # transient failures: 10, 20, 40, 80 s apart
CONNECT_TIMEOUT = 3.0


class BrokerError(PodarchiveError):
    """The broker (or the result backend) cannot be reached."""


class TranscriptionTaskError(Exception):
    """What a task raises when it gives up: a plain message, rebuilt as it is on the coordinator's side."""


# -- the app ------------------------------------------------------------------------------------------------


@dataclass
class AppSettings:
    broker: str
    time_limit: float = DEFAULT_TIME_LIMIT
    visibility_timeout: float | None = None  # None: the time limit and a quarter (must outlast the longest task)
    retries: int = RETRIES
    backoff_seconds: float = BACKOFF_SECONDS


def make_app(settings: AppSettings | str):
    """A Celery app on `settings.broker`, with Redis (the same URL) as its result backend, and the task."""
    from celery import Celery

    settings = AppSettings(settings) if isinstance(settings, str) else settings
    visibility = settings.visibility_timeout or settings.time_limit * 1.25
    app = Celery("podarchive", broker=settings.broker, backend=settings.broker, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_track_started=True, result_expires=RESULT_EXPIRES,
        task_time_limit=settings.time_limit, task_soft_time_limit=max(1.0, settings.time_limit - 5),
        task_default_queue=QUEUE,
        # a message a lost worker took comes back to the queue after this long (Redis has no per-consumer acks)
        broker_transport_options={"visibility_timeout": visibility, "socket_connect_timeout": CONNECT_TIMEOUT,
                                  # look for lost workers' messages every few seconds, not kombu's 100
                                  "unacked_restore_interval": max(1, min(10, int(visibility / 5))),
                                  "unacked_restore_throttle": 1},
        result_backend_transport_options={"socket_connect_timeout": CONNECT_TIMEOUT},
        redis_socket_connect_timeout=CONNECT_TIMEOUT, redis_socket_timeout=60,
        broker_connection_timeout=CONNECT_TIMEOUT, broker_connection_retry_on_startup=True,
        worker_send_task_events=False, worker_hijack_root_logger=False,
    )
    app.podarchive_settings = settings
    app.task(name=TASK_NAME, bind=True, acks_late=True, reject_on_worker_lost=True,
             max_retries=settings.retries)(_transcribe_task)
    return app


def check_broker(app, timeout: float = CONNECT_TIMEOUT) -> None:
    """Raise BrokerError unless the broker and the result backend answer within about `timeout` seconds."""
    url = app.conf.broker_url
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0.2, timeout=timeout)
        client = getattr(app.backend, "client", None)
        if client is not None:
            client.ping()
    except Exception as exc:  # noqa: BLE001 - kombu, redis-py and OS errors all mean "unreachable"
        raise BrokerError(f"cannot reach the broker {_redact(url)}: {type(exc).__name__}: {exc}") from exc


def _redact(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


# -- the task -----------------------------------------------------------------------------------------------


@dataclass
class WorkerSettings:
    """What a worker machine decides for itself: where Whisper runs, its compute type, its own model folder."""

    device: str = "cpu"
    compute_type: str | None = None  # None: int8 on CPU, float16 on CUDA
    model: str | None = None  # None: the model the task names; else this name or folder in its place
    cpu_threads: int = 0


_worker = WorkerSettings()  # set by run_worker before the pool forks


def policy_to_dict(policy: FetchPolicy) -> dict:
    return {"origin": policy.origin, "kinds": sorted(policy.kinds), "local_folder": policy.local_folder}


def policy_from_dict(data: dict) -> FetchPolicy:
    return FetchPolicy(origin=data["origin"], kinds=frozenset(data["kinds"]), local_folder=data.get("local_folder"))


def is_transient(exc: BaseException) -> bool:
    """Network trouble worth another try: a connection or timeout error, a 429 or 5xx, anywhere in the chain."""
    import httpx

    from .http import RetryableStatus

    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (httpx.TransportError, RetryableStatus, ConnectionError, TimeoutError)):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def transcribe_audio(audio_url: str, options: dict, rules: dict, policy: dict, max_audio_bytes: int,
                     worker: WorkerSettings | None = None, client=None) -> dict:
    """Download and transcribe one episode's audio; the result the coordinator stores (no Celery here)."""
    from .audio import download_audio, probe_audio
    from .http import make_client
    from .transcribe import TranscriptionOptions, WhisperTranscriber

    worker = worker or _worker
    began = time.monotonic()
    run_options = replace(TranscriptionOptions(**options), device=worker.device, compute_type=worker.compute_type,
                          cpu_threads=worker.cpu_threads, model=worker.model or options.get("model"))
    FetchRules(**rules)  # checked: the feed's rules travel with the task (audio has its own cap, no deadline)
    with tempfile.TemporaryDirectory(prefix="podarchive-task-") as folder:
        client = client or make_client()
        downloaded = download_audio(audio_url, Path(folder) / "audio", client, max_bytes=max_audio_bytes,
                                    policy=policy_from_dict(policy))
        duration = probe_audio(downloaded.path)
        segments, source = WhisperTranscriber(run_options).transcribe(
            downloaded.path, prompt=run_options.initial_prompt, content_hash=downloaded.sha256)
    source.source_url = audio_url
    return {
        "segments": [tasks_table.segment_to_dict(segment) for segment in segments],
        "source": asdict(source),
        "audio_seconds": duration,
        "work_seconds": round(time.monotonic() - began, 3),
        "bytes": downloaded.bytes,
    }


def _transcribe_task(self, audio_url, options, rules, policy, max_audio_bytes):
    """The Celery task: `transcribe_audio` with the worker's name, retried with backoff on transient errors."""
    hostname = self.request.hostname or socket.gethostname()
    try:
        result = transcribe_audio(audio_url, options, rules, policy, max_audio_bytes)
    except Exception as exc:  # noqa: BLE001 - every failure is either retried or reported as a message
        settings = self.app.podarchive_settings
        # the worker's temporary file is named by the URL it came from
        reason = re.sub(r"'?/\S*podarchive-task-[^/\s]+/audio'?", audio_url, stages.describe(exc))
        error = TranscriptionTaskError(f"on worker {hostname}, try {self.request.retries + 1}: {reason}")
        if is_transient(exc) and self.request.retries < settings.retries:
            raise self.retry(exc=error, countdown=settings.backoff_seconds * 2 ** self.request.retries)
        raise error from None
    result["worker"] = hostname
    return result


# -- the worker ---------------------------------------------------------------------------------------------


def run_worker(settings: AppSettings, concurrency: int = 1, worker: WorkerSettings | None = None,
               name: str | None = None, loglevel: str = "INFO") -> None:
    """A Celery worker in this process (prefork pool of `concurrency` processes), until it is stopped."""
    global _worker

    _worker = worker or WorkerSettings()
    app = make_app(settings)
    argv = ["worker", f"--concurrency={concurrency}", f"--loglevel={loglevel}", "--without-gossip",
            "--without-mingle", f"--queues={QUEUE}", "--pool=prefork"]
    if name:
        argv.append(f"--hostname={name if '@' in name else name + '@%h'}")
    app.worker_main(argv)


# -- the coordinator ----------------------------------------------------------------------------------------


class DistributedPipeline(Pipeline):
    """The ingest pipeline with Whisper done by Celery workers; everything else (feeds, feed transcripts, the
    index, every write to the archive) runs here, as in the embedded mode."""

    def __init__(self, db, options=None, client=None, transcriber=None, embedder=None, *, app,
                 poll_seconds: float = 0.2):
        super().__init__(db, options, client, transcriber, embedder)
        self.app = app
        self.poll_seconds = poll_seconds
        self.pending: list[dict] = []
        # the coordinator's own time on tasks (not waiting): sending, polling the result backend, storing results
        self.timings = {"send": 0.0, "poll": 0.0, "store": 0.0}

    def process_episodes(self, episode_ids: list[int]) -> None:
        self.pending = []
        super().process_episodes(episode_ids)  # feed transcripts here; Whisper episodes gathered in `pending`
        if self.pending:
            self.run_tasks(self.pending)
            self.pending = []

    def whisper_transcript(self, episode: dict) -> None:
        from .trust import is_http_url

        if not is_http_url(episode["enclosure_url"]):  # a producer's upload or a local file: only here
            super().whisper_transcript(episode)
            return
        tid, _ = self.task_for(episode)
        if stages.is_done(self.db, episode["id"], TRANSCRIBE, tid) or self.made_locally(episode):
            self.report.transcripts_skipped += 1
            return
        self.pending.append(episode)

    def made_locally(self, episode: dict) -> bool:
        """A Whisper transcript of this audio with this model already made by the embedded mode: kept."""
        from .transcribe import model_label

        row = stages.get_stage(self.db, episode["id"], TRANSCRIBE)
        if not row or row["state"] != stages.DONE:
            return False
        made = self.db.execute("SELECT source_url, model FROM transcripts WHERE episode_id = ? AND source = 'whisper'",
                               [episode["id"]]).fetchone()
        return bool(made and made[0] == episode["enclosure_url"]
                    and made[1] == model_label(self.transcriber.options.model))

    def task_for(self, episode: dict) -> tuple[str, dict]:
        options = self.transcriber.options
        feed_url = self.db.execute("SELECT feed_url FROM shows WHERE id = ?", [episode["show_id"]]).fetchone()[0]
        tid = tasks_table.task_id(feed_url, episode["guid"], episode["enclosure_url"], options_fingerprint(options))
        return tid, asdict(self.with_vocabulary(options, episode["id"]))

    # -- sending and collecting --------------------------------------------------------------------------

    def run_tasks(self, episodes: list[dict]) -> None:
        from celery import states

        try:
            check_broker(self.app)
            outstanding = self.send(episodes)
        except BrokerError as exc:
            for episode in episodes:
                self.fail(self.describe_episode(episode), TRANSCRIBE, exc)
            return
        seen: dict[str, tuple] = {}
        with self.progress.bar(total=len(outstanding), desc="transcription tasks", unit="task") as bar:
            while outstanding:
                began = time.monotonic()
                try:
                    metas = self.task_metas(list(outstanding))
                except Exception as exc:  # noqa: BLE001 - the broker went away: rerun collects what is left
                    lost = BrokerError(f"lost the result backend: {type(exc).__name__}: {exc}; rerun to "
                                       f"collect the results (the workers keep working)")
                    for waiting in outstanding.values():
                        self.fail(self.describe_episode(waiting), TRANSCRIBE, lost)
                    return
                for tid, (state, info) in metas.items():
                    if state in states.READY_STATES:
                        self.finish(tid, outstanding.pop(tid), state, info)  # its time counts as storing
                        bar.update(1)
                        continue
                    hostname = info.get("hostname") if isinstance(info, dict) else None
                    if (state, hostname) != seen.get(tid):  # a task run again elsewhere is on another worker
                        seen[tid] = (state, hostname)
                        if state == states.STARTED:
                            tasks_table.mark_running(self.db, tid, hostname)
                        elif state == states.RETRY:
                            tasks_table.note_retry(self.db, tid, f"retrying: {info}")
                self.timings["poll"] += time.monotonic() - began
                if outstanding:
                    time.sleep(self.poll_seconds)

    def task_metas(self, tids: list[str], chunk: int = 500) -> dict[str, tuple[str, object]]:
        """(state, result or info) of each task: one MGET per `chunk` tasks from a key-value backend (Redis),
        else one request per task."""
        from celery import states

        backend = self.app.backend
        if not (hasattr(backend, "mget") and hasattr(backend, "get_key_for_task")):
            return {tid: (result.state, result.info) for tid in tids for result in [self.app.AsyncResult(tid)]}
        metas = {}
        for at in range(0, len(tids), chunk):
            part = tids[at:at + chunk]
            for tid, value in zip(part, backend.mget([backend.get_key_for_task(tid) for tid in part])):
                meta = backend.decode_result(value) if value else {"status": states.PENDING, "result": None}
                metas[tid] = (meta["status"], meta.get("result"))
        return metas

    def send(self, episodes: list[dict]) -> dict[str, dict]:
        """Send a task for each episode unless one sent before has its result or is still queued or running."""
        from celery import states

        began = time.monotonic()
        outstanding: dict[str, dict] = {}
        queued = None
        task = self.app.tasks[TASK_NAME]
        for episode in episodes:
            tid, options = self.task_for(episode)
            row = tasks_table.get_task(self.db, tid)
            if row is not None and row["state"] == stages.DONE:  # stored, but the stage was not marked: mark it
                stages.mark_done(self.db, episode["id"], TRANSCRIBE, tid)
                self.report.transcripts_skipped += 1
                continue
            if row is not None and row["state"] != tasks_table.FAILED:
                state = self.app.AsyncResult(tid).state
                if state != states.PENDING:  # returned, failed, running or retrying: collect it, send nothing
                    outstanding[tid] = episode
                    continue
                queued = self.queued_task_ids() if queued is None else queued
                if tid in queued:
                    outstanding[tid] = episode
                    continue
            tasks_table.record_sent(self.db, tid, episode["id"], episode["enclosure_url"], options)
            stages.mark_running(self.db, episode["id"], TRANSCRIBE, tid)
            task.apply_async(
                args=[episode["enclosure_url"], options, asdict(self.options.fetch),
                      policy_to_dict(self.policy(episode)), self.options.max_audio_bytes],
                task_id=tid, retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1},
            )
            outstanding[tid] = episode
        self.timings["send"] += time.monotonic() - began
        return outstanding

    def queued_task_ids(self) -> set[str]:
        """Ids of the tasks waiting in the broker's queue, or taken by a worker and not yet acknowledged."""
        found: set[str] = set()
        try:
            with self.app.connection_for_write() as conn:
                client = conn.default_channel.client
                raw = list(client.lrange(QUEUE, 0, -1)) + list(client.hvals("unacked"))
        except Exception:  # noqa: BLE001 - not Redis, or it cannot say: send again (stored once anyway)
            return found
        for item in raw:
            try:
                message = json.loads(item)
                message = message[0] if isinstance(message, list) else message
                found.add(message["headers"]["id"])
            except (ValueError, KeyError, TypeError, IndexError):
                continue
        return found

    def finish(self, tid: str, episode: dict, state: str, value) -> None:
        """Store a task's result, or record its failure; then the backend forgets it."""
        from celery import states

        from .speaker_names import name_and_record

        error = None
        if state == states.SUCCESS:
            started = time.monotonic()
            try:
                stored = tasks_table.store_result(self.db, tid, value, speakers=name_and_record)
            except (KeyError, TypeError, ValueError) as exc:  # a result not of our making: the task failed
                error, stored = f"unreadable result: {type(exc).__name__}: {exc}", None
            if stored is not None:
                self.report.transcripts_made += stored
                self.report.transcripts_skipped += not stored
            self.timings["store"] += time.monotonic() - started
            self.timings["poll"] -= time.monotonic() - started  # counted as storing, not polling
        else:
            error = str(value) or type(value).__name__
        if error is not None:
            tasks_table.mark_task_failed(self.db, tid, error)
            self.fail(self.describe_episode(episode), TRANSCRIBE, error)
        self.app.AsyncResult(tid).forget()  # stored (or recorded as failed): the backend need not keep it


def distributed_ingest(db, sources: list[str], app, options=None, client=None, transcriber=None, embedder=None):
    """`ingest_sources` with Whisper on Celery workers; raises BrokerError before writing anything when the broker
    cannot be reached."""
    check_broker(app)
    return DistributedPipeline(db, options, client, transcriber, embedder, app=app).run(sources)
