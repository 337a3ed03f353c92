"""The `podarchive` command line: a thin layer over the library.

Library errors (PodarchiveError) become one-line messages and exit status 1; usage errors exit 2 (click);
`ingest` exits 1 when some feed or episode failed, after doing all the rest.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import contextmanager
from dataclasses import asdict

import click

from .db import DEFAULT_DB
from .errors import PodarchiveError
from .lock import DEFAULT_LOCK_TIMEOUT

TRANSCRIPT_FORMATS = ("txt", "vtt", "srt", "json")
SEARCH_MODES = ("hybrid", "keyword", "semantic")


def db_option(fn):
    return click.option(
        "--db", "db_path", envvar="PODARCHIVE_DB", default=DEFAULT_DB, show_default=True,
        type=click.Path(dir_okay=False), help="Archive file (SQLite). Environment: PODARCHIVE_DB.",
    )(fn)


def show_option(fn):
    return click.option("--show", default=None, help="Show id, title or feed URL (when a guid is in several shows).")(fn)


def lock_timeout_option(fn):
    return click.option(
        "--lock-timeout", type=click.FloatRange(min=0), envvar="PODARCHIVE_LOCK_TIMEOUT", default=DEFAULT_LOCK_TIMEOUT,
        show_default=True, metavar="SECONDS",
        help="How long to wait while another ingest or index writes the archive (0: fail at once). "
             "Environment: PODARCHIVE_LOCK_TIMEOUT.",
    )(fn)


@contextmanager
def writing(db_path: str, lock_timeout: float, command: str):
    """Hold the archive's one-writer lock; say once on stderr when waiting for another run."""
    from .lock import ArchiveLockError, archive_lock

    def waiting(holder):
        who = f"another {holder.command or 'writer'} holding {db_path} ({holder.describe()})" if holder else \
            f"another writer holding {db_path}"
        click.echo(f"waiting for {who}…", err=True)

    try:
        with archive_lock(db_path, lock_timeout, on_wait=waiting, command=command):
            yield
    except ArchiveLockError as exc:
        raise click.ClickException(str(exc)) from exc


def library_errors(fn):
    """Turn library errors into a clean message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PodarchiveError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def open_archive(db_path: str):
    from .db import open_db

    try:
        return open_db(db_path)
    except Exception as exc:  # a file that is not SQLite, a read-only folder
        raise click.ClickException(f"cannot open archive {db_path}: {exc}") from exc


FETCH_CAPS = {  # option -> (FetchRules field, default MB, what it caps)
    "feed": ("max_feed_bytes", 20, "feeds and OPML lists"),
    "transcript": ("max_transcript_bytes", 10, "transcript files"),
    "chapters": ("max_chapters_bytes", 2, "chapters files"),
}


def fetch_rule_options(*caps: str):
    """The trust rules' settings (README: "What a feed may make podarchive fetch"), passed on as `fetch_rules`.
    `caps` names the size caps the command has something to apply to."""
    positive = click.FloatRange(min=0, min_open=True)
    options = [
        click.option("--allow-private-addresses", is_flag=True, envvar="PODARCHIVE_ALLOW_PRIVATE_ADDRESSES",
                     help="Let feeds lead to loopback, private and link-local addresses (trusted feeds only)."),
        click.option("--fetch-deadline", type=positive, default=120, show_default=True,
                     envvar="PODARCHIVE_FETCH_DEADLINE",
                     help="Seconds one feed, transcript or chapters request may take in all (retries included)."),
    ] + [
        click.option(f"--max-{cap}-mb", type=positive, default=FETCH_CAPS[cap][1], show_default=True,
                     envvar=f"PODARCHIVE_MAX_{cap.upper()}_MB",
                     help=f"Refuse {FETCH_CAPS[cap][2]} larger than this (decoded).")
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


@click.group()
@click.version_option(package_name="podarchive")
def cli():
    """podarchive: turn podcast feeds into a searchable archive of what their guests said."""


@cli.command()
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
@click.option("--media-dir", type=click.Path(file_okay=False), envvar="PODARCHIVE_MEDIA_DIR", default="media",
              show_default=True, help="Where downloaded audio is kept.")
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

    from .embeddings import SentenceTransformerEmbedder

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


@cli.command()
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_errors
def status(db_path, as_json):
    """Each show's episodes by stage, and every failure with its reason."""
    from .status import archive_status

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


@cli.command()
@click.argument("guid")
@db_option
@show_option
@click.option("--format", "fmt", type=click.Choice(TRANSCRIPT_FORMATS), default="txt", show_default=True)
@library_errors
def transcript(guid, db_path, show, fmt):
    """Print an episode's transcript (json = Podcasting 2.0 JSON)."""
    from . import transcript_formats
    from .errors import NotFoundError
    from .queries import find_episode

    db = open_archive(db_path)
    episode = find_episode(db, guid, show)
    segments = transcript_formats.load_segments(db, episode["id"])
    if not segments:
        raise NotFoundError(f"episode {guid!r} has no transcript yet (see `podarchive status`)")
    render = {"txt": transcript_formats.to_text, "vtt": transcript_formats.to_vtt,
              "srt": transcript_formats.to_srt, "json": transcript_formats.to_json}[fmt]
    click.echo(render(segments), nl=False)


@cli.command()
@db_option
@click.option("--embedding-model", default=None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@lock_timeout_option
@fetch_rule_options("chapters")
@library_errors
def index(db_path, embedding_model, quiet, lock_timeout, fetch_rules):
    """(Re)build what is missing: passages, embeddings, chapters, takeaways, guests and the search index."""
    from ingest.pipeline import index_archive

    from .embeddings import SentenceTransformerEmbedder

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


@cli.command()
@click.argument("query")
@db_option
@click.option("--mode", type=click.Choice(SEARCH_MODES), default="hybrid", show_default=True)
@click.option("--show", default=None, help="Only this show (id or title).")
@click.option("--guest", default=None, help="Only episodes with this guest (name or slug).")
@click.option("--speaker", default=None,
              help="Only what this person said (name or slug): their passages, by the transcript's speaker labels.")
@click.option("--since", default=None, help="Only episodes published on or after this date (YYYY-MM-DD).")
@click.option("--until", default=None, help="Only episodes published on or before this date (YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.option("--embedding-model", default=None, help="sentence-transformers model used to build the index.")
@library_errors
def search(query, db_path, mode, show, guest, speaker, since, until, limit, as_json, embedding_model):
    """Search transcripts, takeaways, notes and guests. QUERY `-` reads one query per line from standard
    input and prints one JSON list per line (models loaded once)."""
    from .embeddings import SentenceTransformerEmbedder, warm_up
    from .search import search as run_search

    db = open_archive(db_path)
    embedder = SentenceTransformerEmbedder(embedding_model)
    options = dict(mode=mode, show=show, guest=guest, speaker=speaker, since=since, until=until, limit=limit,
                   embedder=embedder)
    if query == "-":
        if mode != "keyword":
            warm_up(embedder)  # many queries: load the model once and trace it for queries
        for line in sys.stdin:
            results = run_search(db, line.rstrip("\n"), **options)
            click.echo(json.dumps([result_json(r) for r in results], ensure_ascii=False))
        return
    results = run_search(db, query, **options)
    if as_json:
        click.echo(json.dumps([result_json(r) for r in results], ensure_ascii=False, indent=2))
        return
    if not results:
        click.echo("No results.")
    for r in results:
        click.echo(f"{r.score:.3f}  {r.show} / {r.episode_title}  [{clock(r.start)}-{clock(r.end)}]  {r.url}")
        click.echo(f"       {plain_snippet(r.snippet)}")


def result_json(result) -> dict:
    data = asdict(result)
    extra = data.pop("extra", {}) or {}
    data.update({k: v for k, v in extra.items() if k not in data})
    return data


def plain_snippet(snippet: str) -> str:
    import html
    import re

    text = re.sub(r"</?mark>", "*", snippet or "")
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


@cli.command()
@click.argument("guid")
@db_option
@show_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_errors
def takeaways(guid, db_path, show, as_json):
    """Print an episode's takeaways (title, text, start, source: notes or generated)."""
    from .queries import find_episode, get_takeaways

    db = open_archive(db_path)
    echo_rows(get_takeaways(db, find_episode(db, guid, show)["id"]), as_json, "takeaways",
              lambda row: f"[{clock(row['start'])}] {row['title']}  ({row['source']})\n    {row['text']}\n")


@cli.command()
@click.argument("guid")
@db_option
@show_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_errors
def chapters(guid, db_path, show, as_json):
    """Print an episode's chapters (title, start, end)."""
    from .queries import find_episode, get_chapters

    db = open_archive(db_path)
    echo_rows(get_chapters(db, find_episode(db, guid, show)["id"]), as_json, "chapters",
              lambda row: f"{clock(row['start'])}-{clock(row['end'])}  {row['title']}")


def echo_rows(rows: list[dict], as_json: bool, what: str, line) -> None:
    """An episode's takeaways or chapters: JSON, or one `line(row)` each."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"No {what} yet (see `podarchive status`).")
    for row in rows:
        click.echo(line(row))


@cli.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=5000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Server processes (gunicorn). Default: one per CPU core, at least 2; 1 = werkzeug's threaded "
                   "server in this process.")
@click.option("--no-worker", is_flag=True,
              help="Do not start the background worker (run `podarchive work` elsewhere, or nothing gets "
                   "transcribed or published on schedule).")
def serve(db_path, host, port, workers, no_worker):
    """Serve the archive's web site, with one background worker for what producers publish."""
    from pathlib import Path

    from .web import create_app

    open_archive(db_path).conn.close()
    config = {"DATABASE": str(Path(db_path).resolve())}
    workers = workers or max(2, os.cpu_count() or 1)
    if not no_worker:
        start_background_worker(config["DATABASE"])
    click.echo(f"Serving {db_path} at http://{host}:{port}/ with {workers} worker(s)  (Ctrl+C to stop)")
    if workers == 1:
        from werkzeug.serving import run_simple

        run_simple(host, port, create_app(config), threaded=True, use_reloader=False)
        return
    from .web.server import run_gunicorn

    run_gunicorn(lambda: create_app(config), host, port, workers)


def start_background_worker(db_path: str) -> None:
    """`podarchive work` in a child process that ends with this one (at exit, or by itself when orphaned)."""
    import atexit
    import subprocess

    child = subprocess.Popen([sys.executable, "-m", "archive.cli", "work", "--db", db_path,
                              "--parent-pid", str(os.getpid())])
    click.echo(f"Background worker started (pid {child.pid}).")

    def stop():
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    atexit.register(stop)


@cli.command()
@db_option
@click.option("--once", is_flag=True, help="One round, then exit (scheduled publishing and the queued episodes).")
@click.option("--poll", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds between rounds that found nothing to do.")
@click.option("--model", default=None, help="Whisper model: a faster-whisper name or a folder (default: bundled tiny.en).")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or auto.")
@click.option("--embedding-model", default=None, help="sentence-transformers model (default: bundled all-MiniLM-L6-v2).")
@click.option("--media-dir", type=click.Path(file_okay=False), envvar="PODARCHIVE_MEDIA_DIR", default="media",
              show_default=True, help="Where downloaded audio is kept.")
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


@cli.group()
def producer():
    """Producers: the accounts that may log in to the studio and edit the shows granted to them."""


def password_stdin_option(fn):
    return click.option(
        "--password-stdin", is_flag=True,
        help="Read the password from the first line of standard input instead of asking for it twice.",
    )(fn)


def read_password(password_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice (hidden) at a prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on the first line of standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@producer.command("add")
@click.argument("name")
@db_option
@click.option("--show", "shows", multiple=True, metavar="SHOW",
              help="A show they may edit: id, title or feed URL (repeat for several).")
@click.option("--admin", is_flag=True, help="May edit every show, those to come included.")
@password_stdin_option
@library_errors
def producer_add(name, db_path, shows, admin, password_stdin):
    """Add a producer who may log in to the studio (asks for their password)."""
    from .errors import ProducerExistsError, UnknownProducerError
    from .producers import add_producer, check_name, get_producer
    from .queries import find_show

    db = open_archive(db_path)
    name = check_name(name)
    try:  # say so before asking for a password
        existing = get_producer(db, name)
    except UnknownProducerError:
        existing = None
    if existing is not None:
        raise ProducerExistsError(f"producer {existing.name!r} already exists")
    show_ids = [find_show(db, show)["id"] for show in shows]
    added = add_producer(db, name, read_password(password_stdin), show_ids, admin)
    what = "every show" if added.admin else f"{len(set(show_ids))} show(s)" if show_ids else \
        "no show yet (see `podarchive producer grant`)"
    click.echo(f"added producer {added.name}, who may edit {what}")


@producer.command("list")
@db_option
@library_errors
def producer_list(db_path):
    """List producers with the shows they may edit and their API tokens in use."""
    from .producers import list_producers

    rows = list_producers(open_archive(db_path))
    if not rows:
        click.echo("No producers yet: add one with `podarchive producer add NAME`.")
    for row in rows:
        shows = "every show (admin)" if row.admin else \
            ", ".join(f"{show['title'] or '(untitled)'} [{show['id']}]" for show in row.shows) or "no show yet"
        click.echo(f"{row.name}  shows: {shows}; API tokens: {row.tokens}; since {row.created_at}")


@producer.command("remove")
@click.argument("name")
@db_option
@library_errors
def producer_remove(name, db_path):
    """Remove a producer, their grants and API tokens (their sessions end at once)."""
    from .producers import remove_producer

    remove_producer(open_archive(db_path), name)
    click.echo(f"removed producer {name}")


@producer.command("passwd")
@click.argument("name")
@db_option
@password_stdin_option
@library_errors
def producer_passwd(name, db_path, password_stdin):
    """Set a producer's password (every session they had ends; API tokens stay)."""
    from .producers import get_producer, set_password

    db = open_archive(db_path)
    name = get_producer(db, name).name  # say so before asking for a password
    set_password(db, name, read_password(password_stdin))
    click.echo(f"password changed for {name}")


@producer.command("grant")
@click.argument("name")
@click.argument("show")
@db_option
@library_errors
def producer_grant(name, show, db_path):
    """Let a producer edit a show (SHOW: id, title or feed URL)."""
    from .producers import grant

    db = open_archive(db_path)
    show_id, title = show_and_label(db, show)
    grant(db, name, show_id)
    click.echo(f"{name} may edit {title}")


def show_and_label(db, show: str) -> tuple[int, str]:
    """A SHOW argument's id, and how to name the show in a message."""
    from .queries import find_show

    found = find_show(db, show)
    return found["id"], f"{found['title'] or found['feed_url']} [{found['id']}]"


@producer.command("revoke")
@click.argument("name")
@click.argument("show")
@db_option
@library_errors
def producer_revoke(name, show, db_path):
    """Take a show back from a producer (SHOW: id, title or feed URL)."""
    from .producers import revoke

    db = open_archive(db_path)
    show_id, title = show_and_label(db, show)
    removed = revoke(db, name, show_id)
    click.echo(f"{name} may no longer edit {title}" if removed else f"{name} had no grant of {title}")


@producer.command("token")
@click.argument("name")
@db_option
@click.option("--label", default=None, help="What the token is for, shown by `podarchive producer tokens`.")
@library_errors
def producer_token(name, db_path, label):
    """Make an API token for the studio API and print it, alone on standard output: it is shown only this once."""
    from .producers import create_token

    token_id, token = create_token(open_archive(db_path), name, label)
    click.echo(token)
    click.echo(f"API token {token_id} for {name}: shown only now, keep it secret "
               f"(send it as 'Authorization: Bearer <token>').", err=True)


@producer.command("tokens")
@click.argument("name")
@db_option
@click.option("--revoke", "revoke_id", type=int, default=None, metavar="ID", help="Revoke the token with this id.")
@library_errors
def producer_tokens(name, db_path, revoke_id):
    """List a producer's API tokens (never the tokens themselves), or revoke one."""
    from .producers import list_tokens, revoke_token

    db = open_archive(db_path)
    if revoke_id is not None:
        revoke_token(db, name, revoke_id)
        click.echo(f"revoked API token {revoke_id} of {name}")
        return
    tokens = list_tokens(db, name)
    if not tokens:
        click.echo(f"{name} has no API tokens: make one with `podarchive producer token {name}`.")
    for token in tokens:
        state = f"revoked {token.revoked_at}" if token.revoked_at else f"last used {token.last_used_at or 'never'}"
        click.echo(f"{token.id}  {token.label or '(no label)'}  made {token.created_at}; {state}")


def main():
    cli()


if __name__ == "__main__":
    main()
