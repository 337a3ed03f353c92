"""The commands that run the pipeline (ingest, index, work) and the one that says how it went (status).

The only module under archive/ that imports ingest/, and only inside the functions that run the pipeline.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from dataclasses import asdict

import click

from ..settings import Settings
from .common import db_option, from_settings, library_errors, lock_timeout_option, open_archive, writing

FETCH_CAPS = {  # option -> (FetchRules field, what it caps)
    "feed": ("max_feed_bytes", "feeds and OPML lists"),
    "transcript": ("max_transcript_bytes", "transcript files"),
    "chapters": ("max_chapters_bytes", "chapters files"),
}


def fetch_rule_options(*caps: str):
    """The trust rules' settings (README: "What a feed may make podarchive fetch"), passed on as `fetch_rules`.
    `caps` names the size caps the command has something to apply to."""
    positive = click.FloatRange(min=0, min_open=True)
    options = [
        click.option("--allow-private-addresses", is_flag=True, default=from_settings("allow_private_addresses"),
                     help="Let feeds lead to loopback, private and link-local addresses (trusted feeds only)."),
        click.option("--fetch-deadline", type=positive, default=from_settings("fetch_deadline"),
                     show_default=str(Settings().fetch_deadline),
                     help="Seconds one feed, transcript or chapters request may take in all (retries included)."),
    ] + [
        click.option(f"--max-{cap}-mb", type=positive, default=from_settings(f"max_{cap}_mb"),
                     show_default=str(getattr(Settings(), f"max_{cap}_mb")),
                     help=f"Refuse {FETCH_CAPS[cap][1]} larger than this (decoded).")
        for cap in caps
    ]

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args, allow_private_addresses, fetch_deadline, **kwargs):
            from ingest.http import FetchRules

            sizes = {FETCH_CAPS[cap][0]: int(kwargs.pop(f"max_{cap}_mb") * 1_000_000) for cap in caps}
            rules = FetchRules(deadline_seconds=fetch_deadline, allow_private_addresses=allow_private_addresses,
                               **sizes)
            return fn(*args, fetch_rules=rules, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def broker_option(fn):
    return click.option(
        "--broker", default=from_settings("broker"), metavar="URL",
        help="Redis URL of the Celery broker: Whisper runs on `podarchive worker` processes. "
             "Environment: PODARCHIVE_BROKER.",
    )(fn)


@click.command()
@click.argument("sources", nargs=-1, required=True)
@db_option
@click.option("--metadata-only", is_flag=True, help="Store feeds and episodes only: no downloads, no transcription.")
@click.option("--model", default=None, help="Whisper model: a faster-whisper name or a folder (default: bundled tiny.en).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--compute-type", default=None, help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA).")
@click.option("--beam-size", type=click.IntRange(1, 20), default=None, help="Whisper beam size.")
@click.option("--word-timestamps", is_flag=True, help="Store word-level timestamps.")
@click.option("--diarize/--no-diarize", default=from_settings("diarize"), show_default="on",
              help="Speaker turns in Whisper transcripts, named from the feed where it allows (PODARCHIVE_DIARIZE).")
@click.option("--vocabulary-prompt", "vocabulary_chars", type=click.IntRange(0, 2000), default=0, show_default=True,
              help="Give Whisper the episode's names (title, notes, people) as a prompt of at most this many "
                   "characters; 0: none (it hurts the bundled tiny.en: see README).")
@click.option("--no-index", is_flag=True, help="Skip the index stage (passages, takeaways, chapters, guests, search).")
@click.option("--embedding-model", default=None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
@click.option("--media-dir", type=click.Path(file_okay=False), default=from_settings("media_dir"),
              show_default=str(Settings().media_dir), help="Where downloaded audio is kept.")
@click.option("--max-audio-mb", type=click.IntRange(1), default=2048, show_default=True,
              help="Refuse audio files larger than this.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@broker_option
@lock_timeout_option
@fetch_rule_options("feed", "transcript", "chapters")
def ingest(sources, db_path, metadata_only, model, device, compute_type, beam_size, word_timestamps, diarize,
           vocabulary_chars, no_index, embedding_model, media_dir, max_audio_mb, quiet, broker, lock_timeout,
           fetch_rules):
    """Ingest feeds: SOURCE is a feed URL, a local feed file, or an OPML file listing feeds.

    Exit status: 0 when everything asked for was done, 1 when some feed or episode failed (after doing all the
    rest; `podarchive status` shows why) or the broker cannot be reached, 2 for usage errors.

    With --broker, Whisper runs on `podarchive worker` processes (Celery); this process stores what they return.
    """
    from pathlib import Path

    from ingest.pipeline import IngestOptions, ingest_sources
    from ingest.transcribe import TranscriptionOptions, WhisperTranscriber

    from ..embeddings import SentenceTransformerEmbedder

    transcription = TranscriptionOptions(model=model, device=device, word_timestamps=word_timestamps,
                                         diarize=diarize)
    if compute_type:
        transcription.compute_type = compute_type
    if beam_size:
        transcription.beam_size = beam_size
    options = IngestOptions(
        metadata_only=metadata_only, index=not no_index, media_dir=Path(media_dir),
        max_audio_bytes=max_audio_mb * 1024 * 1024, progress=not quiet and sys.stderr.isatty(), fetch=fetch_rules,
        vocabulary_chars=vocabulary_chars,
    )
    models = dict(transcriber=WhisperTranscriber(transcription),  # each loads its model on first use
                  embedder=SentenceTransformerEmbedder(embedding_model))
    app = distributed_app(broker) if broker and not metadata_only else None  # broker checked before any write
    with writing(db_path, lock_timeout, "ingest"):
        if app is None:
            report = library_errors(ingest_sources)(open_archive(db_path), list(sources), options, **models)
        else:
            from ingest.distributed import distributed_ingest

            report = library_errors(distributed_ingest)(open_archive(db_path), list(sources), app, options,
                                                        **models)
    click.echo(
        f"{report.feeds} feed(s), {report.feeds_not_modified} not modified; episodes: {report.episodes_new} new, "
        f"{report.episodes_changed} changed, {report.episodes_unchanged} unchanged; transcripts: "
        f"{report.transcripts_made} made, {report.transcripts_skipped} already done"
        + (f"; artwork: {report.artwork_stored} stored" if report.artwork_stored else "")
        + (f"; artwork: {report.artwork_failed} image(s) not available (pages show none; `podarchive status` says "
           "why)" if report.artwork_failed else "")
        + (f"; {report.artwork_deferred} image(s) left for the next run" if report.artwork_deferred else "")
    )
    if report.failures:
        click.echo(f"{len(report.failures)} failure(s):", err=True)
        for failure in report.failures:
            click.echo(f"  {failure.what} [{failure.stage}]: {failure.error}", err=True)
        sys.exit(1)


@click.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_errors
def status(db_path, as_json):
    """Each show's episodes by stage, and every failure with its reason."""
    from ..status import archive_status

    report = archive_status(open_archive(db_path, must_exist=True))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    if not report["shows"]:
        click.echo("The archive is empty: run `podarchive ingest FEED`.")
    for show in report["shows"]:
        click.echo(f"{show['title'] or '(untitled)'}  <{show['feed_url']}>")
        click.echo(f"  episodes: {show['episodes']}, with transcript: {show['transcripts']}"
                   f" (feed {show['feed_transcripts']}, whisper {show['whisper_transcripts']})")
        for stage, states in show["stages"].items():
            counts = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
            click.echo(f"  {stage}: {counts}")
        tasks = show["tasks"]
        if any(tasks[state] for state in ("queued", "running", "done", "failed")):
            on = f" (on {', '.join(tasks['running_on'])})" if tasks["running_on"] else ""
            click.echo(f"  transcription tasks: {tasks['queued']} queued, {tasks['running']} running{on}, "
                       f"{tasks['done']} done, {tasks['failed']} failed")
        art = show["artwork"]
        if art["stored"] or art["failed"]:
            click.echo(f"  artwork: {art['stored']} stored" + (f", {art['failed']} not available" if art["failed"] else "")
                       + (f" (latest: {art['last_error']})" if art["last_error"] else ""))
        if show["last_error"]:
            click.echo(f"  feed error ({show['last_error_at']}): {show['last_error']}")
    if report["workers"]:
        click.echo("\nworkers:")
        for w in report["workers"]:
            rate = f"{w['audio_per_second']:.1f}" if w["audio_per_second"] is not None else "?"
            click.echo(f"  {w['worker']}: {w['tasks']} task(s), {w['audio_seconds'] or 0:.0f} s of audio in "
                       f"{w['work_seconds'] or 0:.0f} s: {rate} audio seconds per second")
    if report["failures"]:
        click.echo(f"\n{len(report['failures'])} failure(s):")
        for f in report["failures"]:
            click.echo(f"  {f['show']} / {f['guid']} [{f['stage']}, attempt {f['attempts']}, {f['updated_at']}]: "
                       f"{f['error']}")


@click.command()
@db_option
@click.option("--embedding-model", default=None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@lock_timeout_option
@fetch_rule_options("chapters")
@library_errors
def index(db_path, embedding_model, quiet, lock_timeout, fetch_rules):
    """(Re)build what is missing: passages, embeddings, chapters, takeaways, guests and the search index."""
    from ingest.pipeline import index_archive

    from ..embeddings import SentenceTransformerEmbedder

    with writing(db_path, lock_timeout, "index"):
        report = index_archive(open_archive(db_path), SentenceTransformerEmbedder(embedding_model),
                               progress=not quiet and sys.stderr.isatty(), fetch=fetch_rules)
    if report.index is not None:
        click.echo(describe_index(report.index))
    if report.failures:
        for failure in report.failures:
            click.echo(f"  {failure.what} [{failure.stage}]: {failure.error}", err=True)
        sys.exit(1)


def distributed_app(broker: str, time_limit: float | None = None):
    """The Celery app on `broker`, the broker checked: exit status 1 at once when it cannot be reached."""
    from ingest.distributed import AppSettings, check_broker, make_app

    try:
        app = make_app(AppSettings(broker, time_limit=time_limit or Settings.from_env().task_time_limit))
    except Exception as exc:  # noqa: BLE001 - a URL kombu cannot read
        raise click.ClickException(f"bad broker URL {broker!r}: {exc}") from exc
    library_errors(check_broker)(app)
    return app


def describe_index(index_report) -> str:
    fields = asdict(index_report) if hasattr(index_report, "__dataclass_fields__") else dict(vars(index_report))
    return "index: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in fields.items()
                                 if isinstance(v, (int, float)))


@click.command()
@db_option
@click.option("--once", is_flag=True, help="One round, then exit (scheduled publishing and the queued episodes).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between rounds that found nothing to do.")
@click.option("--model", default=None, help="Whisper model: a faster-whisper name or a folder (default: bundled tiny.en).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--diarize/--no-diarize", default=from_settings("diarize"), show_default="on",
              help="Speaker turns in Whisper transcripts, named from the feed where it allows (PODARCHIVE_DIARIZE).")
@click.option("--embedding-model", default=None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
@click.option("--media-dir", type=click.Path(file_okay=False), default=from_settings("media_dir"),
              show_default=str(Settings().media_dir), help="Where downloaded audio is kept.")
@click.option("--parent-pid", type=int, default=None, hidden=True)
@broker_option
@fetch_rule_options("transcript", "chapters")
def work(db_path, once, poll, model, device, diarize, embedding_model, media_dir, parent_pid, broker, fetch_rules):
    """The background worker: publishes scheduled episodes and transcribes and indexes published ones.

    `podarchive serve` starts one; run it yourself with `serve --no-worker`, or on another machine that sees the
    archive file. Each round holds the archive's one-writer lock, so it waits while an ingest runs.
    """
    import logging
    import threading
    from pathlib import Path

    from ingest.pipeline import IngestOptions
    from ingest.transcribe import TranscriptionOptions
    from ingest.worker import WorkerOptions, run_worker

    logging.basicConfig(level=logging.INFO, format="worker: %(message)s")
    options = WorkerOptions(poll_seconds=poll, ingest=IngestOptions(
        media_dir=Path(media_dir), transcription=TranscriptionOptions(model=model, device=device, diarize=diarize),
        embedding_model=embedding_model, fetch=fetch_rules), broker=broker,
        task_time_limit=Settings.from_env().task_time_limit)
    stop = threading.Event()
    if parent_pid:
        watch_parent(parent_pid, stop)
    open_archive(db_path).conn.close()
    report = library_errors(run_worker)(str(db_path), options, stop=stop, once=once)
    if once:
        click.echo(f"published {len(report.published)}, transcribed {len(report.done)}, failed {len(report.failed)}"
                   + (" (another writer held the archive)" if report.locked else ""))
        for episode_id, error in report.failed.items():
            click.echo(f"  episode {episode_id}: {error}", err=True)


def watch_parent(parent_pid: int, stop) -> None:
    """Set `stop` when the process that started us is gone (a `serve` killed with -9 leaves no orphan behind)."""
    import threading

    def watch():
        while not stop.wait(2):
            if os.getppid() != parent_pid:
                stop.set()

    threading.Thread(target=watch, name="podarchive-parent-watch", daemon=True).start()


@click.command()
@broker_option
@click.option("--concurrency", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Transcriptions at once (processes, each with its own model).")
@click.option("--model", default=None,
              help="Whisper model this worker runs in place of the one each task names (a name or a folder); "
                   "default: the task's.")
@click.option("--device", type=click.Choice(["cpu", "cuda", "auto"]), default="cpu", show_default=True,
              help="Where Whisper runs on this machine.")
@click.option("--compute-type", default=None, help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA).")
@click.option("--name", default=None, help="This worker's name (default celery@HOSTNAME); status shows it.")
@click.option("--time-limit", type=click.FloatRange(min=1), default=from_settings("task_time_limit"),
              show_default=str(Settings().task_time_limit), metavar="SECONDS",
              help="Most seconds one task may run here. Environment: PODARCHIVE_TASK_TIME_LIMIT.")
@click.option("--visibility-timeout", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="How long a task a lost worker took waits before it goes back to the queue (default: 1.25 "
                   "times --time-limit; it must outlast the longest task).")
def worker(broker, concurrency, model, device, compute_type, name, time_limit, visibility_timeout):
    """A transcription worker: takes Whisper tasks from the broker that `ingest --broker` sends to.

    Runs on any machine with podarchive installed; it needs no archive, only the broker and the audio's URLs.
    """
    from ingest.distributed import AppSettings, WorkerSettings, check_broker, make_app, run_worker

    if not broker:
        raise click.UsageError("give --broker URL (or set PODARCHIVE_BROKER)")
    settings = AppSettings(broker, time_limit=time_limit, visibility_timeout=visibility_timeout)
    library_errors(check_broker)(make_app(settings))
    run_worker(settings, concurrency, WorkerSettings(device=device, compute_type=compute_type, model=model),
               name=name)
