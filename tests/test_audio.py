import hashlib
import http.server
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import SHARED

from archive.errors import AudioError
from ingest.audio import download_audio, is_audio_type, load_audio, probe_audio, save_audio
from ingest.http import HttpOptions, make_client

JFK_MP3 = SHARED / "audio" / "jfk" / "jfk.mp3"
JFK_WAV = SHARED / "audio" / "jfk" / "jfk.wav"
SHORT_MP3 = SHARED / "datacast" / "episode-070-short.mp3"
NO_WAIT = HttpOptions(attempts=3, backoff_seconds=0)


@dataclass
class Behaviour:
    """How the test server answers: Range support, a dropped connection, the type and length it sends."""

    data: bytes
    content_type: str = "audio/mpeg"
    honour_range: bool = True
    etag: str = '"v1"'
    drop_after: int | None = None  # close the first response after this many body bytes
    send_length: bool = True
    status: int = 200
    requests: list = field(default_factory=list)


class RangeHandler(http.server.BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args):
        pass

    def do_GET(self):
        b = self.behaviour
        b.requests.append({key.title(): value for key, value in self.headers.items()})
        if b.status != 200:
            self.send_error(b.status)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        if match and b.honour_range and self.headers.get("If-Range") in (None, b.etag):
            start = int(match.group(1))
        body = b.data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", b.content_type)
        self.send_header("ETag", b.etag)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(b.data) - 1}/{len(b.data)}")
        if b.send_length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if b.drop_after is not None:
            self.wfile.write(body[:b.drop_after])
            b.drop_after = None  # only once
            self.wfile.flush()
            self.connection.shutdown(2)
            return
        self.wfile.write(body)


@pytest.fixture
def audio_server():
    servers = []

    def start(behaviour: Behaviour) -> str:
        handler = type("Handler", (RangeHandler,), {"behaviour": behaviour})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/episode.mp3"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client():
    with make_client() as c:
        yield c


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_download_with_plain_http_server(serve, tmp_path, client):
    base = serve(JFK_MP3.parent)
    seen = []
    dest = tmp_path / "1" / "7.audio"
    got = download_audio(f"{base}/jfk.mp3", dest, client, progress=lambda done, total: seen.append((done, total)))
    data = JFK_MP3.read_bytes()
    assert (got.path, got.bytes, got.sha256, got.content_type) == (dest, len(data), sha256(data), "audio/mpeg")
    assert dest.read_bytes() == data
    assert seen[-1] == (len(data), len(data))
    assert list(dest.parent.iterdir()) == [dest]  # no .part or .part.json left behind


def test_dropped_connection_resumes_with_range(audio_server, tmp_path, client):
    data = SHORT_MP3.read_bytes()
    behaviour = Behaviour(data, drop_after=50_000)
    got = download_audio(audio_server(behaviour), tmp_path / "a.audio", client, options=NO_WAIT)
    assert got.sha256 == sha256(data) and got.bytes == len(data)
    assert "Range" not in behaviour.requests[0]
    assert behaviour.requests[1]["Range"] == "bytes=50000-"
    assert behaviour.requests[1]["If-Range"] == '"v1"'


def test_interrupted_run_resumes_on_next_run(audio_server, tmp_path, client):
    data = SHORT_MP3.read_bytes()
    behaviour = Behaviour(data, drop_after=30_000)
    url = audio_server(behaviour)
    dest = tmp_path / "a.audio"
    with pytest.raises(AudioError):
        download_audio(url, dest, client, options=HttpOptions(attempts=1, backoff_seconds=0))
    assert (tmp_path / "a.audio.part").stat().st_size == 30_000
    assert not dest.exists()
    got = download_audio(url, dest, client, options=NO_WAIT)
    assert got.sha256 == sha256(data) and dest.read_bytes() == data
    assert behaviour.requests[-1]["Range"] == "bytes=30000-"


def test_server_ignoring_range_restarts_from_zero(audio_server, tmp_path, client):
    data = SHORT_MP3.read_bytes()
    behaviour = Behaviour(data, drop_after=40_000, honour_range=False)
    got = download_audio(audio_server(behaviour), tmp_path / "a.audio", client, options=NO_WAIT)
    assert behaviour.requests[1]["Range"] == "bytes=40000-"  # asked, got 200 and the whole file
    assert got.bytes == len(data) and got.sha256 == sha256(data)


def test_changed_file_is_not_glued_to_old_part(audio_server, tmp_path, client):
    old, new = b"\x01" * 60_000, SHORT_MP3.read_bytes()
    url = audio_server(Behaviour(old, drop_after=20_000))
    with pytest.raises(AudioError):
        download_audio(url, tmp_path / "a.audio", client, options=HttpOptions(attempts=1, backoff_seconds=0))
    meta = json.loads((tmp_path / "a.audio.part.json").read_text())
    # the same URL now serves another file, with another ETag: If-Range makes the server send it all
    behaviour = Behaviour(new, etag='"v2"')
    new_url = audio_server(behaviour)
    (tmp_path / "a.audio.part.json").write_text(json.dumps(meta | {"url": new_url}))
    got = download_audio(new_url, tmp_path / "a.audio", client, options=NO_WAIT)
    assert got.sha256 == sha256(new)
    assert behaviour.requests[0]["If-Range"] == '"v1"'


def test_404_is_audio_error(audio_server, tmp_path, client):
    with pytest.raises(AudioError, match="404"):
        download_audio(audio_server(Behaviour(b"", status=404)), tmp_path / "a.audio", client, options=NO_WAIT)


def test_html_is_rejected(audio_server, tmp_path, client):
    url = audio_server(Behaviour(b"<html>Sorry, moved</html>", content_type="text/html; charset=utf-8"))
    with pytest.raises(AudioError, match="not audio.*text/html"):
        download_audio(url, tmp_path / "a.audio", client, options=NO_WAIT)
    assert not list(tmp_path.glob("a.audio*"))


@pytest.mark.parametrize("content_type", ["audio/mpeg", "audio/mp3", "audio/x-m4a", "video/mp4",
                                          "application/octet-stream", "audio/mpeg; charset=binary", None])
def test_accepted_types(content_type):
    assert is_audio_type(content_type)


@pytest.mark.parametrize("content_type", ["text/html", "text/plain", "application/json", "application/xml"])
def test_rejected_types(content_type):
    assert not is_audio_type(content_type)


def test_size_cap_from_content_length(audio_server, tmp_path, client):
    behaviour = Behaviour(b"\x00" * 10_000)
    with pytest.raises(AudioError, match="over the limit"):
        download_audio(audio_server(behaviour), tmp_path / "a.audio", client, max_bytes=5_000, options=NO_WAIT)
    assert not (tmp_path / "a.audio.part").exists() or (tmp_path / "a.audio.part").stat().st_size == 0


def test_size_cap_while_streaming_without_length(audio_server, tmp_path, client):
    behaviour = Behaviour(b"\x00" * 600_000, send_length=False)
    with pytest.raises(AudioError, match="over the limit"):
        download_audio(audio_server(behaviour), tmp_path / "a.audio", client, max_bytes=300_000, options=NO_WAIT)
    assert not list(tmp_path.glob("a.audio*"))


def test_file_url_is_copied(tmp_path, client):
    got = download_audio(JFK_WAV.as_uri(), tmp_path / "9.audio", client)
    assert got.sha256 == sha256(JFK_WAV.read_bytes()) and got.content_type in ("audio/x-wav", "audio/wav")
    with pytest.raises(AudioError, match="could not copy"):
        download_audio((tmp_path / "missing.mp3").as_uri(), tmp_path / "10.audio", client)


def test_destination_folder_gets_name_from_url_hash_not_path(tmp_path, client):
    got = download_audio(JFK_WAV.as_uri(), tmp_path, client)
    assert got.path.parent == tmp_path and got.path.name.startswith("audio-") and "jfk" not in got.path.name


def test_save_audio_upserts(db, tmp_path, client):
    show_id = db["shows"].insert({"feed_url": "https://example.com/f.xml"}).last_pk
    episode_id = db["episodes"].insert({"show_id": show_id, "guid": "g"}).last_pk
    first = download_audio(JFK_WAV.as_uri(), tmp_path / "a.audio", client)
    save_audio(db, episode_id, "https://example.com/jfk.wav", first)
    second = download_audio(JFK_MP3.as_uri(), tmp_path / "a.audio", client)
    save_audio(db, episode_id, "https://example.com/jfk.mp3", second)
    rows = list(db["audio"].rows)
    assert len(rows) == 1 and rows[0]["sha256"] == second.sha256 and rows[0]["url"].endswith("jfk.mp3")


# -- is it audio? -----------------------------------------------------------------------------------------

def test_probe_real_audio():
    assert probe_audio(JFK_WAV) == pytest.approx(11.0, abs=0.05)
    assert probe_audio(SHORT_MP3) == pytest.approx(52.9, abs=0.1)


def corrupt_files(folder: Path) -> dict[str, Path]:
    import random

    rng = random.Random(7)
    files = {
        "random bytes": bytes(rng.getrandbits(8) for _ in range(100_000)),
        "html page": b"<!doctype html><html><body>404 Not Found</body></html>",
        "empty": b"",
        "mp3 header only": SHORT_MP3.read_bytes()[:400],
    }
    paths = {}
    for name, data in files.items():
        path = folder / (name.replace(" ", "-") + ".mp3")
        path.write_bytes(data)
        paths[name] = path
    return paths


@pytest.mark.parametrize("name", ["random bytes", "html page", "empty"])
def test_probe_and_load_reject_non_audio(tmp_path, name):
    path = corrupt_files(tmp_path)[name]
    with pytest.raises(AudioError):
        probe_audio(path)
    with pytest.raises(AudioError):
        load_audio(path)


def test_probe_is_cheap_and_misses_truncation_that_load_catches(tmp_path):
    path = corrupt_files(tmp_path)["mp3 header only"]
    assert probe_audio(path) == pytest.approx(52.9, abs=0.1)  # the header's word: only the start is decoded
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path)


def test_probe_missing_file(tmp_path):
    with pytest.raises(AudioError, match="cannot read|not readable"):
        probe_audio(tmp_path / "nothing.mp3")


def test_load_audio_rejects_truncated_mp3(tmp_path):
    truncated = tmp_path / "half.mp3"
    truncated.write_bytes(SHORT_MP3.read_bytes()[:100_000])  # the header still says 52.9 s
    with pytest.raises(AudioError, match=r"truncated or corrupt: only 2\d\.\d s of its 52\.9 s"):
        load_audio(truncated)
    assert len(load_audio(SHORT_MP3)) / 16000 == pytest.approx(52.9, abs=0.1)
