import functools
import http.server
import threading
from pathlib import Path

import pytest

from archive.db import memory_db, open_db

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures"


@pytest.fixture(autouse=True)
def isolated_environment(tmp_path, monkeypatch):
    """Keep every test away from the user's archive and from any hub download."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("PODARCHIVE_DB", str(tmp_path / "podarchive.db"))
    monkeypatch.setenv("PODARCHIVE_MEDIA_DIR", str(tmp_path / "media"))


@pytest.fixture
def db():
    return memory_db()


@pytest.fixture
def db_path(tmp_path):
    path = tmp_path / "archive.db"
    open_db(path).conn.close()
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve_directory(directory: Path):
    """Serve a folder over HTTP on loopback; returns (base_url, server)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval: shutdown() waits up to one interval, at every test's teardown.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_address[1]}", server


@pytest.fixture
def serve():
    """serve(directory) -> base URL; servers are shut down after the test."""
    servers = []

    def start(directory):
        base, server = serve_directory(Path(directory))
        servers.append(server)
        return base

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def pytest_configure(config):
    """Property tests draw the same examples on every run, so CI cannot fail on a draw no one has seen."""
    from hypothesis import settings

    settings.register_profile("podarchive", derandomize=True)
    settings.load_profile("podarchive")
