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


@click.command()
@click.argument("sources", nargs=-1, required=True)
@db_option
@click.option("--metadata-only", is_flag=True, help="Store feeds and episodes only: no downloads, no transcription.")
@click.option("--model", default=None, help="Whisper model: a faster-whisper name or a folder (default: bundled tiny.en).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--compute-type", default=None, help="CTranslate2 compute type (default: int8 on CPU, float16 on CUDA).")
@click.option("--beam-size", type=click.IntRange(1, 20), default=None, help="Whisper beam size.")
@click.option("--word-timestamps", is_flag=True, help="Store word-level timestamps.")
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
@lock_timeout_option
@fetch_rule_options("feed", "transcript", "chapters")
def ingest(sources, db_path, metadata_only, model, device, compute_type, beam_size, word_timestamps, vocabulary_chars,
           no_index, embedding_model, media_dir, max_audio_mb, quiet, lock_timeout, fetch_rules):
    """Ingest feeds: SOURCE is a feed URL, a local feed file, or an OPML file listing feeds.

    Exit status: 0 when everything asked for was done, 1 when some feed or episode failed (after doing all the
    rest; `podarchive status` shows why), 2 for usage errors.
    """
    from pathlib import Path

    from ingest.pipeline import IngestOptions, ingest_sources
    from ingest.transcribe import TranscriptionOptions, WhisperTranscriber

    from ..embeddings import SentenceTransformerEmbedder

    transcription = TranscriptionOptions(model=model, device=device, word_timestamps=word_timestamps)
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
    with writing(db_path, lock_timeout, "ingest"):
        report = library_errors(ingest_sources)(open_archive(db_path), list(sources), options, **models)
    click.echo(
        f"{report.feeds} feed(s), {report.feeds_not_modified} not modified; episodes: {report.episodes_new} new, "
        f"{report.episodes_changed} changed, {report.episodes_unchanged} unchanged; transcripts: "
        f"{report.transcripts_made} made, {report.transcripts_skipped} already done"
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

    report = archive_status(open_archive(db_path))
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
        if show["last_error"]:
            click.echo(f"  feed error ({show['last_error_at']}): {show['last_error']}")
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
@click.option("--embedding-model", default=None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
@click.option("--media-dir", type=click.Path(file_okay=False), default=from_settings("media_dir"),
              show_default=str(Settings().media_dir), help="Where downloaded audio is kept.")
@click.option("--parent-pid", type=int, default=None, hidden=True)
@fetch_rule_options("transcript", "chapters")
def work(db_path, once, poll, model, device, embedding_model, media_dir, parent_pid, fetch_rules):
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
        media_dir=Path(media_dir), transcription=TranscriptionOptions(model=model, device=device),
        embedding_model=embedding_model, fetch=fetch_rules))
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
