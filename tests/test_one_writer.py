"""One writer at a time, with real processes: the archive lock `ingest` and `index` hold, write transactions
that take SQLite's write lock up front, and migrations that are atomic and applied once however many processes
open an old archive together."""

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from archive import db as store
from archive.db import memory_db, open_db, write_transaction
from archive.errors import PodarchiveError
from archive.lock import ArchiveLockedError, archive_lock, lock_paths
from conftest import ROOT

PODARCHIVE = [sys.executable, "-c", "from archive.cli import main; main()"]

HOLD_LOCK = """
import sys
from archive.lock import archive_lock

with archive_lock(sys.argv[1], 0, command="ingest"):
    print("locked", flush=True)
    sys.stdin.read()  # hold until the test closes our stdin
"""


def python(script: str, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *map(str, args)], cwd=ROOT, **kwargs)


def hold_lock(db_path) -> subprocess.Popen:
    """A process holding the archive's lock until its stdin is closed."""
    holder = python(HOLD_LOCK, db_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.close()
    assert holder.wait(timeout=30) == 0


def start_cli(*args, env_extra=None) -> subprocess.Popen:
    return subprocess.Popen([*PODARCHIVE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env=dict(os.environ, **(env_extra or {})))


def demo_feed(tmp_path):
    """The demo show (one episode with audio, two with feed transcripts), copied so its files sit in its folder."""
    shutil.copytree(ROOT / "demo", tmp_path / "demo")
    return tmp_path / "demo" / "feed.xml"


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def integrity(db_path) -> str:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()


# -- the archive lock ---------------------------------------------------------------------------------------

def test_a_second_writer_gives_up_after_the_timeout_and_names_the_holder(tmp_path):
    db_path = tmp_path / "a.db"
    feed = demo_feed(tmp_path)
    holder = hold_lock(db_path)
    try:
        began = time.monotonic()
        ingest = start_cli("ingest", "--db", db_path, "--quiet", "--metadata-only", "--lock-timeout", "1", feed)
        out, err = ingest.communicate(timeout=120)
        assert ingest.returncode == 1, err
        assert time.monotonic() - began >= 1
        assert err.count("waiting for another ingest holding") == 1
        assert f"(pid {holder.pid}, since " in err
        assert "gave up after 1 s" in err and "Traceback" not in err
        assert not db_path.exists()  # it did not even open the archive

        # 0 fails at once, without a waiting message; the environment sets it too.
        index = start_cli("index", "--db", db_path, "--quiet", env_extra={"PODARCHIVE_LOCK_TIMEOUT": "0"})
        out, err = index.communicate(timeout=120)
        assert index.returncode == 1 and "waiting" not in err
        assert f"is being written by another ingest (pid {holder.pid}, since " in err and "it is locked" in err
    finally:
        release(holder)


def test_a_second_writer_waits_then_runs_when_the_first_lets_go(tmp_path):
    db_path = tmp_path / "a.db"
    holder = hold_lock(db_path)
    ingest = start_cli("ingest", "--db", db_path, "--quiet", "--metadata-only", "--lock-timeout", "120",
                       demo_feed(tmp_path))
    try:
        assert "waiting for another ingest holding" in ingest.stderr.readline()
        time.sleep(0.5)
        assert ingest.poll() is None  # still waiting
    finally:
        release(holder)
    out, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 0, err
    assert "3 new" in out
    assert open_db(db_path)["episodes"].count == 3
    assert not lock_paths(db_path)[1].exists()  # the holder's info went with it


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    db_path = tmp_path / "a.db"
    holder = hold_lock(db_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    ingest = start_cli("ingest", "--db", db_path, "--quiet", "--metadata-only", "--lock-timeout", "0",
                       demo_feed(tmp_path))
    out, err = ingest.communicate(timeout=120)
    assert ingest.returncode == 0, err
    assert "waiting" not in err


def test_archive_lock_in_the_library(tmp_path):
    db_path = tmp_path / "a.db"
    waits = []
    with archive_lock(db_path, command="index"):
        with pytest.raises(ArchiveLockedError) as raised:
            with archive_lock(db_path, 0.2, on_wait=waits.append):
                pass
        assert isinstance(raised.value, PodarchiveError)
        assert len(waits) == 1 and waits[0].pid == os.getpid() and waits[0].command == "index"
        assert raised.value.holder == waits[0] and "gave up after 0.2 s" in str(raised.value)
        with pytest.raises(ArchiveLockedError, match="it is locked"):
            with archive_lock(db_path, 0, on_wait=waits.append):
                pass
        assert len(waits) == 1  # no waiting when told not to wait
        with archive_lock(":memory:", 0):  # an in-memory database needs no lock
            pass
    with archive_lock(db_path, 0):  # let go after the block
        pass


# -- two real ingests at once -------------------------------------------------------------------------------

def test_two_ingests_at_once_leave_one_clean_archive(tmp_path):
    db_path = tmp_path / "a.db"
    feed = demo_feed(tmp_path)
    media = tmp_path / "media"
    first = start_cli("ingest", "--db", db_path, "--quiet", "--no-index", "--media-dir", media, feed)
    # The second starts once the first holds the lock: started together, a second process slowed down by a busy
    # machine could arrive after the first had finished, and then neither would wait.
    info = db_path.with_name(db_path.name + ".lock.info")
    deadline = time.monotonic() + 120
    while not (info.exists() and f'"pid": {first.pid}' in info.read_text()) and first.poll() is None:
        assert time.monotonic() < deadline, "the first ingest never took the lock"
        time.sleep(0.02)
    runs = [first, start_cli("ingest", "--db", db_path, "--quiet", "--no-index", "--media-dir", media, feed)]
    results = [run.communicate(timeout=600) for run in runs]
    for run, (out, err) in zip(runs, results):
        assert run.returncode == 0, err
    assert sum("waiting for another ingest" in err for _, err in results) == 1
    assert integrity(db_path) == "ok"
    db = open_db(db_path)
    assert db["episodes"].count == 3
    per_episode = db.execute("SELECT episode_id, count(*) FROM transcripts GROUP BY episode_id").fetchall()
    assert len(per_episode) == 3 and all(n == 1 for _, n in per_episode)
    assert db.execute("SELECT count(*) FROM transcripts WHERE segment_count > 0").fetchone()[0] == 3
    source = sha256(tmp_path / "demo" / "episode-1.mp3")
    audio = list(db.query("SELECT path, sha256 FROM audio"))
    assert len(audio) == 1 and audio[0]["sha256"] == source
    assert sha256(media / "1" / "1.audio") == source
    assert not list(media.rglob("*.part"))
    assert {row[0] for row in db.execute("SELECT DISTINCT state FROM stages")} == {"done"}


INGEST_WITHOUT_LOCK = """
import json, os, sys, time
from archive.db import open_db
from ingest.pipeline import IngestOptions, ingest_sources

db_path, feed, go = sys.argv[1:]
while not os.path.exists(go):
    time.sleep(0.005)
report = ingest_sources(open_db(db_path), [feed], IngestOptions(index=False))
print(json.dumps([f.error for f in report.failures]))
"""


def test_writers_without_the_lock_wait_their_turn_instead_of_failing(tmp_path):
    """The library without the CLI's lock: every write transaction takes the write lock up front, so writers
    that read first never fail with `database is locked` on the way to writing."""
    site = tmp_path / "site"
    site.mkdir()
    items = []
    for i in range(40):
        shutil.copy(ROOT / "demo" / "episode-3.srt", site / f"talk-{i}.srt")
        items.append(f'<item><title>Talk {i}</title><guid>talk-{i}</guid>'
                     f'<podcast:transcript url="talk-{i}.srt" type="application/x-subrip"/></item>')
    (site / "feed.xml").write_text(
        '<?xml version="1.0"?><rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0">'
        f"<channel><title>Many talks</title>{''.join(items)}</channel></rss>"
    )
    db_path = tmp_path / "a.db"
    open_db(db_path).conn.close()
    go = tmp_path / "go"
    writers = [python(INGEST_WITHOUT_LOCK, db_path, site / "feed.xml", go, stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE, text=True) for _ in range(3)]
    time.sleep(1)
    go.touch()
    for writer in writers:
        out, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == []
    assert integrity(db_path) == "ok"
    db = open_db(db_path)
    assert db["episodes"].count == 40
    assert db.execute("SELECT count(DISTINCT episode_id), count(*) FROM transcripts").fetchone() == (40, 40)


def test_write_transaction_takes_the_write_lock_up_front_and_nests(tmp_path):
    db_path = tmp_path / "a.db"
    first, second = open_db(db_path), open_db(db_path)
    second.execute("PRAGMA busy_timeout = 50")
    with write_transaction(first):
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            with write_transaction(second):  # refused at BEGIN, before it read or wrote anything
                pytest.fail("the second writer got in")
        assert not second.conn.in_transaction
    with write_transaction(first):
        first.execute("INSERT INTO shows (feed_url) VALUES ('kept')")
        with pytest.raises(RuntimeError):
            with write_transaction(first):  # a savepoint: only the inner work is undone
                first.execute("INSERT INTO shows (feed_url) VALUES ('undone')")
                raise RuntimeError
    with pytest.raises(RuntimeError):
        with write_transaction(first):
            first.execute("INSERT INTO shows (feed_url) VALUES ('rolled back')")
            raise RuntimeError
    assert [r[0] for r in second.execute("SELECT feed_url FROM shows")] == ["kept"]
    assert not first.conn.in_transaction


# -- migrations ---------------------------------------------------------------------------------------------

DIE_IN_MIGRATION = """
import os, sys
from archive import db as store

name, body = store.MIGRATIONS[2]

def dying(db):
    body(db)  # the migration's tables are made...
    os._exit(3)  # ...and the process dies before the migration is recorded

store.MIGRATIONS[2] = (name, dying)
store.open_db(sys.argv[1])
"""

OPEN_TOGETHER = """
import json, os, sys, time
from archive import db as store

@store.migration
def m900_counted(db):
    store.run_script(db, "CREATE TABLE IF NOT EXISTS migration_runs (pid INTEGER);")
    db.conn.execute("INSERT INTO migration_runs VALUES (?)", [os.getpid()])
    time.sleep(0.3)  # a slow migration: the other process arrives while it runs

db_path, go = sys.argv[1:]
while not os.path.exists(go):
    time.sleep(0.005)
print(json.dumps(store.migrate(store.connect(db_path))))
"""


def schema(conn) -> list:
    return conn.execute("SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
                        "AND name != 'migration_runs' ORDER BY name").fetchall()


def test_a_migration_killed_half_way_leaves_nothing_and_two_processes_finish_it_once(tmp_path):
    db_path = tmp_path / "old.db"
    died = python(DIE_IN_MIGRATION, db_path)
    assert died.wait(timeout=120) == 3
    conn = sqlite3.connect(db_path)
    names = [name for name, _ in store.MIGRATIONS]
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY id")] == names[:2]
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "episodes" in tables and not tables & {"audio", "transcripts", "segments"}  # no half migration
    conn.close()

    go = tmp_path / "go"
    openers = [python(OPEN_TOGETHER, db_path, go, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    time.sleep(1)
    go.touch()
    applied = []
    for opener in openers:
        out, err = opener.communicate(timeout=120)
        assert opener.returncode == 0, err
        applied.append(json.loads(out))
    pending = names[2:] + ["m900_counted"]
    assert sorted(applied[0] + applied[1]) == sorted(pending)  # each applied by exactly one of them
    conn = sqlite3.connect(db_path)
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations ORDER BY id")] == names + ["m900_counted"]
    assert conn.execute("SELECT count(*) FROM migration_runs").fetchone()[0] == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert schema(conn) == schema(memory_db().conn)  # the same archive as one made in one go
    conn.close()


def test_a_failing_migration_is_rolled_back_whole(tmp_path):
    db_path = tmp_path / "old.db"
    name, body = store.MIGRATIONS[2]

    def failing(db):
        body(db)
        raise RuntimeError("half-way")

    store.MIGRATIONS[2] = (name, failing)
    try:
        with pytest.raises(RuntimeError, match="half-way"):
            open_db(db_path)
    finally:
        store.MIGRATIONS[2] = (name, body)
    conn = sqlite3.connect(db_path)
    assert not {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} & {"audio", "transcripts"}
    conn.close()
    db = open_db(db_path)  # a later open applies it cleanly
    assert [r["name"] for r in db.query("SELECT name FROM _migrations ORDER BY id")] == [
        n for n, _ in store.MIGRATIONS]
    assert schema(db.conn) == schema(memory_db().conn)
