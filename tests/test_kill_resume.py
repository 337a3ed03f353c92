"""A `kill -9` at any moment (mid-download, mid-transcription, mid-write) and a rerun finish the job."""

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from archive.db import open_db
from conftest import SHARED

PODARCHIVE = [sys.executable, "-c", "from archive.cli import main; main()"]


def start_ingest(db_path, *args, env_extra=None):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.Popen([*PODARCHIVE, "ingest", "--db", str(db_path), "--quiet", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)


def run_ingest(db_path, *args):
    proc = start_ingest(db_path, *args)
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out.decode(errors="replace")


def kill_when(proc, condition, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if condition():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return True
        except Exception:  # the database may be busy or half-created at this instant
            pass
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    return False


def integrity(db_path):
    db = open_db(db_path)
    return db.execute("PRAGMA integrity_check").fetchone()[0]


def stage_state(db_path, stage):
    import sqlite3

    conn = sqlite3.connect(db_path, timeout=1)
    try:
        return [r[0] for r in conn.execute("SELECT state FROM stages WHERE stage = ?", [stage])]
    finally:
        conn.close()


def test_kill_during_feed_transcript_writes_then_resume(tmp_path):
    db_path = tmp_path / "k.db"
    feed = str(SHARED / "corpus" / "twiml_whisper_transcripts" / "feed.xml")
    kills = 0
    for delay in (2.0, 3.5, 5.0):
        proc = start_ingest(db_path, "--no-index", feed)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
        assert integrity(db_path) == "ok"
    assert kills >= 1
    code, out = run_ingest(db_path, "--no-index", feed)
    assert code == 0, out
    db = open_db(db_path)
    assert db["transcripts"].count == 537
    assert db.execute("SELECT COUNT(DISTINCT episode_id) FROM transcripts").fetchone()[0] == 537
    assert db.execute("SELECT COUNT(*) FROM stages WHERE state != 'done'").fetchone()[0] == 0
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_kill_mid_transcription_then_resume(serve, tmp_path):
    base = serve(SHARED / "datacast")
    db_path = tmp_path / "w.db"
    args = ("--no-index", "--media-dir", str(tmp_path / "media"), f"{base}/feed-short.xml")
    proc = start_ingest(db_path, *args)
    assert kill_when(proc, lambda: "running" in stage_state(db_path, "transcribe")), "never reached transcription"
    assert integrity(db_path) == "ok"
    code, out = run_ingest(db_path, *args)
    assert code == 0, out
    db = open_db(db_path)
    assert db["transcripts"].count == 1 and db["segments"].count > 3
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


class SlowRangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files slowly and honours Range (with an ETag for If-Range), recording the Range headers it saw."""

    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = 0
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        if header and header.startswith("bytes="):
            start = int(header[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        # a strong validator: resuming without one could splice two versions of a file
        self.send_header("ETag", f'"{path.stat().st_mtime_ns:x}-{len(data):x}"')
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        slow = path.suffix == ".mp3"
        for offset in range(start, len(data), 8192):
            try:
                self.wfile.write(data[offset:offset + 8192])
            except (BrokenPipeError, ConnectionResetError):
                return
            if slow:
                time.sleep(0.02)


@pytest.mark.slow
def test_kill_mid_download_resumes_with_range(tmp_path):
    import functools

    SlowRangeHandler.ranges = []
    handler = functools.partial(SlowRangeHandler, directory=str(SHARED / "datacast"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        db_path = tmp_path / "d.db"
        media = tmp_path / "media"
        args = ("--no-index", "--media-dir", str(media), f"{base}/feed-short.xml")
        proc = start_ingest(db_path, *args)

        def partial_download():
            return any(p.stat().st_size > 50_000 for p in media.rglob("*.part"))

        assert kill_when(proc, partial_download), "never saw a partial download"
        code, out = run_ingest(db_path, *args)
        assert code == 0, out
        assert any(r and r.startswith("bytes=") and r != "bytes=0-" for r in SlowRangeHandler.ranges)
        db = open_db(db_path)
        import hashlib

        expected = hashlib.sha256((SHARED / "datacast" / "episode-070-short.mp3").read_bytes()).hexdigest()
        assert db.execute("SELECT sha256 FROM audio").fetchone()[0] == expected
        assert db["transcripts"].count == 1
    finally:
        server.shutdown()
        server.server_close()
