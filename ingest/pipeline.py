"""The ingest pipeline: chains the stages, one feed and one episode at a time.

feed -> transcript (the feed's file | audio -> Whisper) -> passages -> embeddings -> understanding -> search
indexes; the stages after the transcript are the index run's (ingest/index_run.py). Each stage records its state
per episode in `stages` with the hash of its input (archive/stages.py `run_stage`), so a rerun skips what is done
and a process killed at any moment resumes where it stopped. A failing feed or episode is recorded and skipped;
everything else goes on.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import sqlite_utils

from archive import stages
from archive.errors import PodarchiveError, StageError
from archive.records import TranscriptLink, TranscriptSource
from archive.settings import Settings

from .http import FetchRules, feed_policy
from .progress import Progress

if TYPE_CHECKING:
    from archive.embeddings import Embedder

    from .transcribe import Transcriber, TranscriptionOptions

log = logging.getLogger(__name__)

TRANSCRIPT, AUDIO, TRANSCRIBE = "transcript", "audio", "transcribe"
DEFAULT_MAX_AUDIO_BYTES = 2 * 1024**3


@dataclass
class IngestOptions:
    metadata_only: bool = False
    index: bool = True
    media_dir: Path = field(default_factory=lambda: Settings.from_env().media_dir)  # the studio's uploads' too
    max_audio_bytes: int = DEFAULT_MAX_AUDIO_BYTES
    transcription: TranscriptionOptions | None = None  # of the transcriber made when none is given; None = defaults
    embedding_model: str | None = None  # of the embedder made when none is given; None = the default model
    progress: bool = False
    fetch: FetchRules = field(default_factory=FetchRules)  # the trust rules' caps, deadline and address widening
    vocabulary_chars: int = 0  # the episode's names given to Whisper as a prompt, at most this long; 0: none (bench/names.py: it hurts tiny.en)


@dataclass
class Failure:
    what: str  # feed URL, or "<show> / <guid>"
    stage: str
    error: str


@dataclass
class IngestReport:
    feeds: int = 0
    feeds_not_modified: int = 0
    episodes_new: int = 0
    episodes_changed: int = 0
    episodes_unchanged: int = 0
    transcripts_made: int = 0
    transcripts_skipped: int = 0
    artwork_stored: int = 0
    artwork_failed: int = 0  # not failures of the ingest: a page without its image (why: `artwork.error`)
    artwork_deferred: int = 0  # left for the next run (their host was skipped, or their show's time was spent)
    failures: list[Failure] = field(default_factory=list)
    index: object | None = None

    @property
    def ok(self) -> bool:
        return not self.failures


class Pipeline:
    """Holds what one ingest run shares: the database, HTTP client, the models, the report.

    The models are given (the CLI and the worker make them from their settings; tests give fakes); one not given
    is the real one made from the options: WhisperTranscriber(options.transcription) and
    SentenceTransformerEmbedder(options.embedding_model). Either loads its model on first use, so a run that
    transcribes or indexes nothing loads nothing.
    """

    def __init__(self, db: sqlite_utils.Database, options: IngestOptions | None = None, client=None,
                 transcriber: Transcriber | None = None, embedder: Embedder | None = None):
        from archive.embeddings import SentenceTransformerEmbedder

        from .http import make_client
        from .transcribe import WhisperTranscriber

        self.db = db
        self.options = options or IngestOptions()
        self.client = client or make_client()
        self.transcriber = transcriber or WhisperTranscriber(self.options.transcription)
        self.embedder = embedder or SentenceTransformerEmbedder(self.options.embedding_model)
        self.report = IngestReport()
        self.progress = Progress(enabled=self.options.progress)
        self._policies: dict[str, object] = {}

    # -- feeds ---------------------------------------------------------------------------------------------

    def run(self, sources: list[str]) -> IngestReport:
        show_ids = []
        for source in self.expand(sources):
            show_id = self.ingest_feed(source)
            if show_id is not None:
                show_ids.append(show_id)
        if not self.options.metadata_only:
            self.artwork_stage(show_ids)
            self.process_episodes(self.episode_ids(show_ids))
            if self.options.index:
                self.build_index()
        return self.report

    def expand(self, sources: list[str]) -> list:
        """FeedSources for the SOURCEs; an OPML entry the trust rules refuse is recorded as a failure."""
        from .opml import expand_sources

        feeds: dict[str, object] = {}
        for source in sources:
            try:
                for feed in expand_sources([source], self.client, self.options.fetch):
                    if feed.refused:
                        self.fail(f"{source}: {feed.url}", "source", feed.refused)
                    else:
                        feeds.setdefault(feed.url, feed)
            except PodarchiveError as exc:
                self.fail(source, "source", exc)
        return list(feeds.values())

    def ingest_feed(self, source) -> int | None:
        """Fetch, parse and save one feed (a FeedSource, or a SOURCE string the operator named)."""
        from .feed_fetch import fetch_feed
        from .feed_parse import parse_feed
        from .feed_store import feed_state, record_feed_error, save_feed
        from .opml import FeedSource

        source = source if isinstance(source, FeedSource) else FeedSource(source)
        feed_url = source.url
        self.report.feeds += 1
        try:
            state = feed_state(self.db, feed_url)
            etag, last_modified = (state[0], state[1]) if state else (None, None)
            fetched = fetch_feed(feed_url, self.client, etag=etag, last_modified=last_modified,
                                 policy=source.policy, rules=self.options.fetch)
            if fetched.not_modified:  # 304: nothing to write beyond clearing an old error
                self.report.feeds_not_modified += 1
                return save_feed(self.db, fetched, None).show_id
            parsed = parse_feed(fetched.content, fetched.base)
            saved = save_feed(self.db, fetched, parsed)
        except Exception as exc:  # noqa: BLE001 - a hostile feed may break a parser in any way
            show_id = record_feed_error(self.db, feed_url, stages.describe(exc))  # keyed like fetch_feed's url
            self.fail(feed_url, "feed", exc)
            return show_id
        for error in parsed.item_errors:
            self.report.failures.append(Failure(feed_url, "feed item", error))
        self.report.episodes_new += len(saved.new)
        self.report.episodes_changed += len(saved.changed)
        self.report.episodes_unchanged += len(saved.unchanged)
        return saved.show_id

    def episode_ids(self, show_ids: list[int]) -> list[int]:
        if not show_ids:
            return []
        marks = ",".join("?" * len(show_ids))
        sql = f"SELECT id FROM episodes WHERE show_id IN ({marks}) ORDER BY show_id, published IS NULL, published, id"
        return [row[0] for row in self.db.execute(sql, show_ids).fetchall()]

    def artwork_stage(self, show_ids: list[int]) -> None:
        """Fetch the shows' and episodes' artwork for the site to serve (ingest/artwork.py); never fails a run."""
        from .artwork import store_artwork

        def policy_for(show_id: int):
            return self.policy({"show_id": show_id})

        stored = store_artwork(self.db, show_ids, self.client, policy_for)
        self.report.artwork_stored += stored.stored
        self.report.artwork_failed += stored.failed
        self.report.artwork_deferred += stored.deferred

    # -- episodes ------------------------------------------------------------------------------------------

    def process_episodes(self, episode_ids: list[int]) -> None:
        with self.progress.bar(total=len(episode_ids), desc="episodes", unit="ep") as bar:
            for episode_id in episode_ids:
                episode = self.db["episodes"].get(episode_id)
                try:
                    self.transcript_stage(episode)
                except StageError as exc:  # recorded in `stages`, shown by `status`, retried next run
                    self.fail(self.describe_episode(episode), exc.stage, exc.cause)
                bar.update(1)

    def describe_episode(self, episode: dict) -> str:
        show = self.db["shows"].get(episode["show_id"])
        return f"{show['title'] or show['feed_url']} / {episode['guid']}"

    def transcript_stage(self, episode: dict) -> None:
        from .transcript_files import choose_transcript

        links = [TranscriptLink(**row) for row in self.db.query(
            "SELECT url, type, language, rel FROM feed_transcripts WHERE episode_id = ?", [episode["id"]]
        )]
        chosen = choose_transcript(links)
        if chosen is not None:
            self.feed_transcript(episode, chosen)
        elif episode["enclosure_url"]:
            self.whisper_transcript(episode)

    def feed_transcript(self, episode: dict, link) -> None:
        from archive.transcript_store import save_transcript

        from .transcript_files import fetch_transcript_file, parse_transcript

        episode_id = episode["id"]
        input_hash = stages.input_hash(link.url, link.type)
        if stages.is_done(self.db, episode_id, TRANSCRIPT, input_hash):
            self.report.transcripts_skipped += 1
            return
        with stages.run_stage(self.db, episode_id, TRANSCRIPT, input_hash):
            rules = self.options.fetch
            data, content_type = fetch_transcript_file(link.url, self.client, max_bytes=rules.max_transcript_bytes,
                                                       policy=self.policy(episode), deadline=rules.deadline_seconds)
            content_hash = hashlib.sha256(data).hexdigest()
            if not self.same_transcript(episode_id, link.url, content_hash):
                fmt = link.type or content_type or link.url
                segments = parse_transcript(data, fmt)
                source = TranscriptSource(
                    source="feed", source_url=link.url, format=format_name(fmt), language=link.language,
                    content_hash=content_hash,
                )
                save_transcript(self.db, episode_id, segments, source)
                self.report.transcripts_made += 1

    def same_transcript(self, episode_id: int, source_url: str, content_hash: str) -> bool:
        row = self.db.execute(
            "SELECT source_url, content_hash FROM transcripts WHERE episode_id = ?", [episode_id]
        ).fetchone()
        return bool(row and row[0] == source_url and row[1] == content_hash)

    def whisper_transcript(self, episode: dict) -> None:
        audio = self.audio_stage(episode)
        self.transcribe_stage(episode, audio)

    def audio_stage(self, episode: dict) -> dict:
        from .audio import download_audio, save_audio

        episode_id = episode["id"]
        input_hash = stages.input_hash(episode["enclosure_url"], episode["enclosure_length"])
        existing = self.db.execute("SELECT * FROM audio WHERE episode_id = ?", [episode_id]).fetchone()
        if stages.is_done(self.db, episode_id, AUDIO, input_hash) and existing and Path(existing[2]).exists():
            return self.db["audio"].get(episode_id)
        if existing and existing[1] == existing[2] == episode["enclosure_url"] and Path(existing[2]).exists():
            stages.mark_done(self.db, episode_id, AUDIO, input_hash)  # a producer's upload: stored already
            return self.db["audio"].get(episode_id)
        dest = self.options.media_dir / str(episode["show_id"]) / f"{episode_id}.audio"
        with stages.run_stage(self.db, episode_id, AUDIO, input_hash):
            with self.progress.bar(total=None, desc=f"download {episode['guid'][:30]}", unit="B",
                                   unit_scale=True, leave=False) as bar:
                downloaded = download_audio(
                    episode["enclosure_url"], dest, self.client, max_bytes=self.options.max_audio_bytes,
                    progress=bar.bytes_callback, policy=self.policy(episode),
                )
            save_audio(self.db, episode_id, episode["enclosure_url"], downloaded)
        return self.db["audio"].get(episode_id)

    def transcribe_stage(self, episode: dict, audio: dict) -> None:
        episode_id = episode["id"]
        options = self.transcriber.options
        input_hash = stages.input_hash(audio["sha256"], options_fingerprint(options))
        if stages.is_done(self.db, episode_id, TRANSCRIBE, input_hash):
            self.report.transcripts_skipped += 1
            return
        with stages.run_stage(self.db, episode_id, TRANSCRIBE, input_hash):
            with self.progress.bar(total=episode["duration"] or None, desc=f"transcribe {episode['guid'][:30]}",
                                   unit="s", leave=False) as bar:
                segments, source = self.transcriber.transcribe(
                    audio["path"], progress=bar.seconds_callback,
                    prompt=self.with_vocabulary(options, episode_id).initial_prompt, content_hash=audio["sha256"],
                )
            source.source_url = audio["url"]
            save_whisper_transcript(self.db, episode_id, segments, source)
            self.report.transcripts_made += 1

    def with_vocabulary(self, options, episode_id: int):
        """The options with the episode's names as Whisper's prompt (ingest/vocabulary.py), unless the operator
        gave a prompt or turned the vocabulary off. The prompt is stored with the transcript's options; it is not
        part of the stage's input hash, so editing an episode's notes does not make Whisper run again."""
        from dataclasses import replace

        from .vocabulary import episode_vocabulary, whisper_prompt

        if options.initial_prompt or not self.options.vocabulary_chars:
            return options
        prompt = whisper_prompt(episode_vocabulary(self.db, episode_id), self.options.vocabulary_chars)
        return replace(options, initial_prompt=prompt) if prompt else options

    def policy(self, episode: dict):
        """What the URLs of this episode's feed may reach (ingest.trust), worked out once a run per feed."""
        feed_url = self.db.execute("SELECT feed_url FROM shows WHERE id = ?", [episode["show_id"]]).fetchone()[0]
        if feed_url not in self._policies:
            self._policies[feed_url] = feed_policy(feed_url, self.options.fetch, self.client)
        return self._policies[feed_url]

    # -- index ---------------------------------------------------------------------------------------------

    def build_index(self):
        from .index_run import build_index

        try:
            self.report.index = build_index(self.db, self.embedder, self.index_options(), client=self.client,
                                            progress=self.progress.enabled)
        except PodarchiveError as exc:
            self.fail("index", "index", exc)
            return None
        for failure in getattr(self.report.index, "failures", []) or []:
            self.report.failures.append(Failure(*failure) if isinstance(failure, tuple) else failure)
        return self.report.index

    def index_options(self):
        from .index_run import IndexOptions
        from .understand import UnderstandOptions

        return IndexOptions(understand=UnderstandOptions(fetch=self.options.fetch))

    def fail(self, what: str, stage: str, exc: BaseException | str) -> None:
        message = exc if isinstance(exc, str) else stages.describe(exc)
        log.warning("%s: %s failed: %s", what, stage, message)
        self.report.failures.append(Failure(what, stage, message))


def save_whisper_transcript(db: sqlite_utils.Database, episode_id: int, segments, source) -> int:
    """Store a Whisper transcript with its speakers named from the feed (ingest/speaker_names.py) and how each
    was named, in one transaction; a producer's renames are replayed after (save_transcript), so theirs win."""
    from archive.db import write_transaction
    from archive.transcript_store import save_transcript

    from .speaker_names import name_and_record

    with write_transaction(db):
        return save_transcript(db, episode_id, name_and_record(db, episode_id, segments), source)


def format_name(fmt: str) -> str:
    fmt = (fmt or "").lower()
    for name, needles in (("json", ("json",)), ("vtt", ("vtt",)), ("srt", ("srt", "subrip")),
                          ("html", ("html",)), ("text", ("text/plain", ".txt"))):
        if any(needle in fmt for needle in needles):
            return name
    return fmt or "unknown"


def options_fingerprint(options) -> dict:
    """What of the options decides a transcript's text; prompt fields left unset are left out, so archives made
    before they existed keep their stage hashes (and their transcripts). `diarize` is never in it: speaker turns
    do not change Whisper's text, so turning them on or off re-transcribes nothing (archives made before keep
    their transcripts, without speakers; the option decides for the transcripts made from then on)."""
    from dataclasses import asdict, is_dataclass

    values = asdict(options) if is_dataclass(options) else dict(vars(options))
    return {key: value for key, value in values.items()
            if not (key in ("initial_prompt", "hotwords") and value is None) and key != "diarize"}


def ingest_sources(db: sqlite_utils.Database, sources: list[str], options: IngestOptions | None = None,
                   client=None, transcriber: Transcriber | None = None,
                   embedder: Embedder | None = None) -> IngestReport:
    """Ingest feeds (URLs, files, OPML) into the archive. Never raises for one bad feed or episode.
    Models not given are made from the options (see Pipeline)."""
    return Pipeline(db, options, client, transcriber, embedder).run(sources)


def index_archive(db: sqlite_utils.Database, embedder: Embedder | None = None, progress: bool = False,
                  client=None, fetch: FetchRules | None = None):
    """(Re)build what is missing in the index for every transcribed episode (embedder None: the default model)."""
    options = IngestOptions(progress=progress, fetch=fetch or FetchRules())
    pipeline = Pipeline(db, options, client, embedder=embedder)
    pipeline.build_index()
    return pipeline.report
