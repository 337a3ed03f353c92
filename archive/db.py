"""The archive's store: one SQLite file through sqlite-utils.

The whole schema lives here, as numbered migrations (the FTS5 tables' SQL is archive/fts_tables.py's, run by
m012). `open_db()` applies the ones a file has not seen yet, so every command and the web app can open any archive,
old or new.
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils


MIGRATIONS: list[tuple[str, Callable[[sqlite_utils.Database], None]]] = []


def migration(fn: Callable[[sqlite_utils.Database], None]):
    """Register a migration; its position in this module is its number."""
    MIGRATIONS.append((fn.__name__, fn))
    return fn


def utcnow() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def connect(path: str | os.PathLike, *, readonly: bool = False) -> sqlite_utils.Database:
    """Open a connection with the pragmas every connection needs (WAL, foreign keys, busy timeout).

    A writable connection begins its implicit transactions IMMEDIATE (taking the write lock up front), like
    `write_transaction` does for explicit ones: a transaction that read first and then asks for the write lock
    gets SQLITE_BUSY at once when another process wrote meanwhile, busy timeout or not.
    """
    if readonly:
        uri = Path(path).resolve().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30)
    else:
        conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30, isolation_level="IMMEDIATE")
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 30000")
    if not readonly:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
    return db


def open_db(path: str | os.PathLike) -> sqlite_utils.Database:
    """Open (creating if needed) an archive and bring its schema up to date."""
    db = connect(path)
    migrate(db)
    return db


def memory_db() -> sqlite_utils.Database:
    db = sqlite_utils.Database(memory=True)
    db.execute("PRAGMA foreign_keys = ON")
    migrate(db)
    return db


_savepoints = itertools.count(1)


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[sqlite_utils.Database]:
    """All or nothing, with the write lock taken up front.

    Outside a transaction: BEGIN IMMEDIATE, COMMIT on success, ROLLBACK on error. Another process's write
    makes it wait (busy timeout) at the BEGIN, never half-way. Inside the caller's transaction: a savepoint,
    rolled back on error; the caller commits.
    """
    conn = db.conn
    if conn.in_transaction:
        name = f"podarchive_{next(_savepoints)}"
        conn.execute(f"SAVEPOINT {name}")
        try:
            yield db
        except BaseException:
            if conn.in_transaction:  # an error may have ended the whole transaction already
                conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                conn.execute(f"RELEASE SAVEPOINT {name}")
            raise
        conn.execute(f"RELEASE SAVEPOINT {name}")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield db
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def run_script(db: sqlite_utils.Database, script: str) -> None:
    """Run an SQL script one statement at a time, in the current transaction (`executescript` would commit)."""
    for statement in split_statements(script):
        db.conn.execute(statement)


def split_statements(script: str) -> list[str]:
    """The statements of a script, each complete (`sqlite3.complete_statement` knows CREATE TRIGGER ... END;)."""
    statements, start = [], 0
    for end, char in enumerate(script, start=1):
        if char == ";" and sqlite3.complete_statement(script[start:end]):
            statements.append(script[start:end].strip())
            start = end
    if script[start:].strip():
        statements.append(script[start:].strip())  # trailing comments, or a last statement without its ";"
    return statements


def applied_migrations(db: sqlite_utils.Database) -> set[str]:
    if "_migrations" not in db.table_names():
        return set()
    return {row[0] for row in db.conn.execute("SELECT name FROM _migrations")}


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply pending migrations in order. Returns the names applied.

    Each migration runs in its own BEGIN IMMEDIATE transaction, with `_migrations` read again inside it: a
    migration that fails (or a process killed in the middle of one) leaves nothing behind, and two processes
    opening an old archive at once apply each migration once (the second waits, then sees it done).
    """
    done = applied_migrations(db)  # read without the write lock: in the usual case, nothing is pending
    applied = []
    for number, (name, fn) in enumerate(MIGRATIONS, start=1):
        if name in done:
            continue
        with write_transaction(db):
            db.conn.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, name TEXT UNIQUE, applied_at TEXT)"
            )
            if name in applied_migrations(db):
                continue
            fn(db)
            db.conn.execute("INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)",
                            [number, name, utcnow()])
        applied.append(name)
    return applied


@migration
def m001_shows_and_episodes(db):
    run_script(
        db,
        """
        CREATE TABLE shows (
            id INTEGER PRIMARY KEY,
            feed_url TEXT NOT NULL UNIQUE,          -- natural key: the URL (or file:// URI) the feed came from
            title TEXT,
            link TEXT,
            description TEXT,
            language TEXT,
            author TEXT,
            image TEXT,
            podcast_guid TEXT,
            etag TEXT,
            last_modified TEXT,
            content_hash TEXT,                      -- sha256 of the last feed bytes parsed
            fetched_at TEXT,
            last_error TEXT,
            last_error_at TEXT,
            created_at TEXT,
            updated_at TEXT
        );
        CREATE TABLE episodes (
            id INTEGER PRIMARY KEY,
            show_id INTEGER NOT NULL REFERENCES shows(id) ON DELETE CASCADE,
            guid TEXT NOT NULL,                     -- natural key with show_id
            title TEXT,
            link TEXT,
            published TEXT,                         -- ISO 8601, UTC
            season INTEGER,
            episode_number INTEGER,
            episode_type TEXT,
            duration REAL,                          -- seconds
            description TEXT,
            notes_html TEXT,                        -- raw, sanitised only on display
            notes_text TEXT,                        -- plain text of the notes, for search
            enclosure_url TEXT,
            enclosure_type TEXT,
            enclosure_length INTEGER,
            image TEXT,
            chapters_url TEXT,
            chapters_type TEXT,
            content_hash TEXT,                      -- hash of the parsed item: a change re-runs dependent stages
            created_at TEXT,
            updated_at TEXT,
            UNIQUE (show_id, guid)
        );
        CREATE INDEX idx_episodes_published ON episodes(published);
        CREATE TABLE feed_transcripts (             -- every podcast:transcript an item offers
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            type TEXT,
            language TEXT,
            rel TEXT,
            PRIMARY KEY (episode_id, url)
        );
        CREATE TABLE soundbites (
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            start REAL NOT NULL,
            duration REAL,
            title TEXT,
            PRIMARY KEY (episode_id, start)
        );
        """
    )


@migration
def m002_people(db):
    run_script(
        db,
        """
        CREATE TABLE people (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            name_key TEXT NOT NULL UNIQUE,          -- normalised name: one record per real person
            slug TEXT NOT NULL UNIQUE,
            href TEXT,
            img TEXT
        );
        CREATE TABLE episode_people (
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
            role TEXT NOT NULL,                     -- host, guest, ... (podcast:person roles, lower case)
            person_group TEXT,
            source TEXT NOT NULL,                   -- feed, title, notes, transcript
            PRIMARY KEY (episode_id, person_id, role)
        );
        CREATE INDEX idx_episode_people_person ON episode_people(person_id);
        """
    )


@migration
def m003_audio_and_transcripts(db):
    run_script(
        db,
        """
        CREATE TABLE audio (
            episode_id INTEGER PRIMARY KEY REFERENCES episodes(id) ON DELETE CASCADE,
            url TEXT NOT NULL,
            path TEXT NOT NULL,
            content_type TEXT,
            bytes INTEGER,
            sha256 TEXT,
            downloaded_at TEXT
        );
        CREATE TABLE transcripts (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL UNIQUE REFERENCES episodes(id) ON DELETE CASCADE,
            source TEXT NOT NULL,                   -- 'feed' or 'whisper'
            source_url TEXT,                        -- feed transcript URL, or audio URL
            format TEXT,                            -- vtt, srt, json, html, text; or 'whisper'
            model TEXT,                             -- Whisper model name or folder
            options TEXT,                           -- JSON of the transcription options
            language TEXT,
            content_hash TEXT,                      -- sha256 of the source bytes (transcript file or audio)
            segment_count INTEGER,
            created_at TEXT
        );
        CREATE TABLE segments (
            transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            text TEXT NOT NULL,
            speaker TEXT,
            words TEXT,                             -- JSON list of {word, start, end, probability} when made
            PRIMARY KEY (transcript_id, idx)
        );
        """
    )


@migration
def m004_stages(db):
    run_script(
        db,
        """
        CREATE TABLE stages (                       -- one row per episode and pipeline stage
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            stage TEXT NOT NULL,                    -- transcript, audio, transcribe, passages, ...
            state TEXT NOT NULL,                    -- running, done, failed
            attempts INTEGER NOT NULL DEFAULT 0,
            input_hash TEXT,                        -- what the stage was run on: unchanged input = skip
            last_error TEXT,
            updated_at TEXT,
            PRIMARY KEY (episode_id, stage)
        );
        """
    )


@migration
def m005_understanding(db):
    run_script(
        db,
        """
        CREATE TABLE passages (                     -- 30-60 s groups of segments: the unit of search
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            start REAL NOT NULL,
            end REAL NOT NULL,
            speaker TEXT,
            text TEXT NOT NULL,
            content_hash TEXT NOT NULL,             -- sha256 of text: embeddings are keyed by it
            UNIQUE (episode_id, idx)
        );
        CREATE INDEX idx_passages_hash ON passages(content_hash);
        CREATE TABLE embeddings (
            model TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            dims INTEGER NOT NULL,
            vector BLOB NOT NULL,                   -- float32, L2-normalised
            PRIMARY KEY (model, content_hash)
        );
        CREATE TABLE takeaways (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            start REAL,
            end REAL,
            source TEXT NOT NULL,                   -- notes or generated
            UNIQUE (episode_id, idx)
        );
        CREATE TABLE chapters (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            title TEXT NOT NULL,
            start REAL NOT NULL,
            end REAL,
            url TEXT,
            image TEXT,
            source TEXT NOT NULL,                   -- feed or generated
            UNIQUE (episode_id, idx)
        );
        """
    )


@migration
def m006_feed_people(db):
    run_script(
        db,
        """
        CREATE TABLE feed_people (                  -- podcast:person as the feed gives it (item level)
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            name TEXT NOT NULL,
            role TEXT NOT NULL DEFAULT 'host',
            person_group TEXT,
            href TEXT,
            img TEXT,
            PRIMARY KEY (episode_id, name, role)
        );
        ALTER TABLE shows ADD COLUMN people TEXT;   -- JSON list of channel-level podcast:person
        """
    )


@migration
def m007_search_versions(db):
    """Counters that change whenever what the search indexes hold changes: a side index (vectors, keywords)
    built at version N is stale once the counter moved on. Triggers keep them, whoever writes."""
    bumps = {
        "passages": ("text", "vectors"),
        "embeddings": ("vectors",),
        "takeaways": ("text",),
    }
    statements = [
        "CREATE TABLE search_versions (name TEXT PRIMARY KEY, version INTEGER NOT NULL DEFAULT 0);",
        "INSERT INTO search_versions (name, version) VALUES ('text', 0), ('vectors', 0);",
    ]
    for table, names in bumps.items():
        where = ", ".join(f"'{name}'" for name in names)
        for event in ("INSERT", "DELETE", "UPDATE"):
            statements.append(
                f"CREATE TRIGGER {table}_{event.lower()}_search_version AFTER {event} ON {table} BEGIN "
                f"UPDATE search_versions SET version = version + 1 WHERE name IN ({where}); END;"
            )
    for event in ("INSERT", "DELETE", "UPDATE OF title, notes_text"):
        name = event.split()[0].lower()
        statements.append(
            f"CREATE TRIGGER episodes_{name}_search_version AFTER {event} ON episodes BEGIN "
            "UPDATE search_versions SET version = version + 1 WHERE name = 'text'; END;"
        )
    run_script(db, "\n".join(statements))


@migration
def m008_producers(db):
    run_script(
        db,
        """
        CREATE TABLE producers (                    -- people who may log in to the studio (archive/producers.py)
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            password_hash TEXT NOT NULL,            -- argon2id, encoded with its parameters
            admin INTEGER NOT NULL DEFAULT 0,       -- 1: may edit every show
            session_token TEXT NOT NULL,            -- random; a new one on a password change ends every session
            created_at TEXT NOT NULL,
            updated_at TEXT
        );
        CREATE TABLE producer_shows (               -- the shows a (non-admin) producer may edit
            producer_id INTEGER NOT NULL REFERENCES producers(id) ON DELETE CASCADE,
            show_id INTEGER NOT NULL REFERENCES shows(id) ON DELETE CASCADE,
            granted_at TEXT,
            PRIMARY KEY (producer_id, show_id)
        );
        CREATE INDEX idx_producer_shows_show ON producer_shows(show_id);
        CREATE TABLE api_tokens (                   -- bearer tokens of the studio API; the token itself is never kept
            id INTEGER PRIMARY KEY,
            producer_id INTEGER NOT NULL REFERENCES producers(id) ON DELETE CASCADE,
            label TEXT,
            token_hash TEXT NOT NULL UNIQUE,        -- sha256 hex of the token
            created_at TEXT NOT NULL,
            last_used_at TEXT,
            revoked_at TEXT
        );
        CREATE INDEX idx_api_tokens_producer ON api_tokens(producer_id);
        CREATE TABLE login_failures (               -- recent failed logins, for throttling; old rows are pruned
            name TEXT NOT NULL COLLATE NOCASE,      -- the name tried (whether or not a producer has it)
            address TEXT NOT NULL,                  -- the client's address
            at REAL NOT NULL                        -- Unix time
        );
        CREATE INDEX idx_login_failures_name ON login_failures(name, at);
        CREATE INDEX idx_login_failures_address ON login_failures(address, at);
        """
    )


@migration
def m009_studio(db):
    """Episodes producers write in podarchive: drafts, schedules, notes in Markdown, what they changed, and
    every version of it. Feed episodes are published as before; a show made in podarchive is `hosted`.

    `state` needs no search_versions trigger: the search indexes hold every episode, drafts too, and each search
    leaves out the episodes not published (archive/search.py), so publishing shows at once, index fresh or not."""
    run_script(
        db,
        """
        ALTER TABLE episodes ADD COLUMN state TEXT NOT NULL DEFAULT 'published';  -- draft, scheduled, published
        ALTER TABLE episodes ADD COLUMN publish_at TEXT;        -- when a scheduled episode goes out (ISO, UTC)
        ALTER TABLE episodes ADD COLUMN notes_markdown TEXT;    -- a producer's notes; notes_html is made from it
        ALTER TABLE episodes ADD COLUMN producer_fields TEXT;   -- JSON list of the fields a producer set: the
                                                                -- feed no longer writes them
        CREATE INDEX idx_episodes_unpublished ON episodes(state) WHERE state != 'published';
        ALTER TABLE shows ADD COLUMN hosted INTEGER NOT NULL DEFAULT 0;  -- made in podarchive, no source feed
                                                                         -- (feed_url: podarchive:show/<uuid>)
        CREATE TABLE episode_revisions (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            producer_id INTEGER,                    -- producers.id (no foreign key: accounts may go); NULL for
                                                    -- the episode as the feed had it before the first edit
            producer_name TEXT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,                   -- feed (the episode before its first edit), create, edit,
                                                    -- restore, schedule, publish, unpublish
            restored_from INTEGER,                  -- the revision a restore brought back
            changed TEXT NOT NULL,                  -- JSON list of the field names this revision changed
            snapshot TEXT NOT NULL                  -- JSON of every editable field after the change, with
                                                    -- state, publish_at and producer_fields
        );
        CREATE INDEX idx_episode_revisions_episode ON episode_revisions(episode_id, id);
        """
    )


@migration
def m010_work_queue(db):
    """Episodes the site queued for the background worker (archive/work_queue.py)."""
    run_script(
        db,
        """
        CREATE TABLE work_queue (
            episode_id INTEGER PRIMARY KEY REFERENCES episodes(id) ON DELETE CASCADE,
            queued_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,    -- rounds that took it; the worker gives up at MAX_ATTEMPTS
            started_at TEXT,                        -- set while a worker has it
            last_error TEXT
        );
        """,
    )


@migration
def m011_transcript_corrections(db):
    """Producers' corrections of transcripts (archive/corrections.py). `segments` holds the corrected text, so
    every reader (the site, exports, passages and search) sees it; the machine's line is kept the first time a
    line is corrected, and every correction is a row: who, when, what it asked, each line before and after."""
    run_script(
        db,
        """
        CREATE TABLE segment_originals (            -- a line as the machine (Whisper, or the feed file) made it
            transcript_id INTEGER NOT NULL REFERENCES transcripts(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            text TEXT NOT NULL,
            speaker TEXT,
            words TEXT,
            PRIMARY KEY (transcript_id, idx)
        );
        CREATE TABLE transcript_corrections (
            id INTEGER PRIMARY KEY,
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            transcript_id INTEGER NOT NULL,         -- the transcript its changes apply to (no foreign key: a new
                                                    -- machine transcript carries it over, or it lapses)
            producer_id INTEGER,                    -- producers.id (no foreign key: accounts may go)
            producer_name TEXT,
            at TEXT NOT NULL,
            action TEXT NOT NULL,                   -- edit, speaker, replace, revert, undo
            details TEXT NOT NULL,                  -- JSON: what the producer asked (line, text, find, replace, ...)
            changes TEXT NOT NULL,                  -- JSON list: each line it changed, before and after
            state TEXT NOT NULL DEFAULT 'applied',  -- applied, undone, lapsed (a new transcript had no place for it)
            undoes INTEGER,                         -- an undo: the correction it undid
            undone_by INTEGER,                      -- the undo that undid this one
            note TEXT                               -- why it lapsed, or how it was carried to a new transcript
        );
        CREATE INDEX idx_transcript_corrections_episode ON transcript_corrections(episode_id, id);
        """,
    )


@migration
def m012_full_text_search(db):
    """The FTS5 tables keyword search reads, with their triggers (archive/fts_tables.py), filled from the rows
    already there. Archives indexed before this migration have them already (the index stage made them with
    sqlite-utils' enable_fts, the same SQL): they are kept as they are. A later change of `FTS_TABLES` needs a
    migration of its own."""
    from .fts_tables import ensure_fts

    ensure_fts(db)


@migration
def m013_transcription_tasks(db):
    """Whisper work sent to Celery workers (`ingest --broker`, archive/transcription_tasks.py): one row per task,
    keyed by its deterministic id, so a coordinator killed mid-run finds on rerun what it had sent."""
    run_script(
        db,
        """
        CREATE TABLE transcription_tasks (
            task_id TEXT PRIMARY KEY,               -- sha256 of (show feed, episode guid, audio URL, options)
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            audio_url TEXT NOT NULL,
            options TEXT NOT NULL,                  -- JSON: the transcription options sent
            state TEXT NOT NULL,                    -- queued, running, done, failed
            worker TEXT,                            -- the Celery worker (node name) that ran it
            attempts INTEGER NOT NULL DEFAULT 0,    -- times the coordinator sent it
            queued_at TEXT,
            started_at TEXT,
            finished_at TEXT,
            audio_seconds REAL,                     -- the audio's duration
            work_seconds REAL,                      -- seconds the worker took (download and Whisper)
            error TEXT
        );
        CREATE INDEX idx_transcription_tasks_episode ON transcription_tasks(episode_id);
        CREATE INDEX idx_transcription_tasks_state ON transcription_tasks(state);
        """,
    )


@migration
def m014_speaker_labels(db):
    """How each speaker of a Whisper transcript got its name (ingest/speaker_names.py): the diarizer's label
    ("Speaker 1"), the name its lines show, the rule that gave it, its share of the speech and a confidence."""
    run_script(
        db,
        """
        CREATE TABLE speaker_labels (
            episode_id INTEGER NOT NULL REFERENCES episodes(id) ON DELETE CASCADE,
            label TEXT NOT NULL,                    -- the diarizer's: Speaker 1, Speaker 2, ...
            name TEXT NOT NULL,                     -- what the lines show: a name, or the label when unnamed
            method TEXT NOT NULL,                   -- podcast:person host, first speaker; title, most speech; unnamed
            share REAL,                             -- the label's share of the speech (seconds of its lines)
            confidence REAL,                        -- 0..1, a rule of thumb; NULL when unnamed
            PRIMARY KEY (episode_id, label)
        );
        """,
    )


@migration
def m015_artwork(db):
    """Show and episode artwork, downloaded at ingest under the trust rules and served by the site itself
    (ingest/artwork.py): a page never loads an image from the feed's host, which would tell that host who reads.
    What is stored is re-encoded (bounded size, no metadata), never the stranger's bytes."""
    run_script(
        db,
        """
        CREATE TABLE artwork (
            url TEXT PRIMARY KEY,                   -- as the feed names it (shows.image, episodes.image)
            sha256 TEXT,                            -- of the stored image; NULL until one is stored
            content_type TEXT,                      -- image/jpeg or image/png
            width INTEGER,
            height INTEGER,
            data BLOB,
            source_sha256 TEXT,                     -- of the bytes the feed's host sent
            fetched_at TEXT,
            error TEXT,                             -- why the last attempt failed; NULL once stored
            retry INTEGER NOT NULL DEFAULT 0,       -- 1: the failure may pass (network, 5xx): try on the next run
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX artwork_by_sha256 ON artwork(sha256);
        """,
    )
