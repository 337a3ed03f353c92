"""Hostile feeds over real loopback HTTP: nothing a feed names is fetched, read or published unless the trust
rules allow it, and each refusal fails alone with a recorded reason.

No traffic leaves 127.0.0.0/8: a "public" feed is served on 127.0.0.2, which these tests count as a public
address (`public_loopback`), and names that resolve to private or link-local addresses go through an injected
resolver; the refusal comes before any connection (a spy on the inner transport proves it).
"""

from __future__ import annotations

import gzip
import http.server
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from archive.cli import cli
from archive.db import open_db
from archive.errors import AudioError, ChaptersError, FeedFetchError, TranscriptFetchError
from conftest import SHARED
from ingest import trust
from ingest.audio import MinimumRate, accepted_audio_type, download_audio, media_type
from ingest.chapters import fetch_chapters
from ingest.feed_fetch import fetch_feed
from ingest.http import FetchRules, HttpOptions, fetch_bytes, make_client
from ingest.opml import expand_sources
from ingest.pipeline import IngestOptions, ingest_sources
from ingest.transcript_files import fetch_transcript_file

MARKER = "PODARCHIVE-SECRET-4f1c"  # written in local files a feed must not reach
NO_RETRY = HttpOptions(attempts=1, backoff_seconds=0)
MP3 = SHARED / "audio" / "jfk" / "jfk.mp3"


# --- a scriptable server ------------------------------------------------------------------------------------------


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict = field(default_factory=dict)
    trickle: float | None = None  # seconds between single bytes
    declared_length: int | None = None  # a Content-Length that lies
    send_length: bool = True


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    routes: dict
    hits: list

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.hits.append(self.path)
        route = self.routes.get(self.path.split("?")[0])
        if route is None:
            self.send_error(404)
            return
        self.send_response(route.status)
        for name, value in route.headers.items():
            self.send_header(name, value)
        length = route.declared_length if route.declared_length is not None else len(route.body)
        if route.send_length:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        try:
            if route.trickle:
                for byte in route.body:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(route.trickle)
            else:
                self.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server:
    def __init__(self, host="127.0.0.1"):
        self.routes: dict[str, Route] = {}
        self.hits: list[str] = []
        handler = type("Handler", (ScriptedHandler,), {"routes": self.routes, "hits": self.hits})
        self.httpd = http.server.ThreadingHTTPServer((host, 0), handler)
        self.httpd.daemon_threads = True
        self.base = f"http://{host}:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def add(self, path: str, **route) -> str:
        self.routes[path] = Route(**route)
        return self.base + path

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    servers = []

    def start(host="127.0.0.1"):
        servers.append(Server(host))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


@pytest.fixture
def public_loopback(monkeypatch):
    """127.0.0.2 counts as a public address: a 'public' feed served without leaving this machine."""
    real = trust.address_kind
    monkeypatch.setattr(trust, "address_kind", lambda a: trust.PUBLIC if a == "127.0.0.2" else real(a))
    return "127.0.0.2"


@pytest.fixture
def secret(tmp_path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    path = folder / "secret.txt"
    path.write_text(f"WEBVTT\n\n00:00.000 --> 00:05.000\n{MARKER} root:x:0:0\n")
    return path


def feed_xml(*items: str, title="Hostile") -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:podcast="https://podcastindex.org/namespace/1.0">'
            f"<channel><title>{title}</title>{''.join(items)}</channel></rss>").encode()


def item(guid: str, inner: str = "") -> str:
    return f"<item><title>Episode {guid}</title><guid>{guid}</guid>{inner}</item>"


def transcript(url: str, kind="text/vtt") -> str:
    return f'<podcast:transcript url="{url}" type="{kind}"/>'


def enclosure(url: str, kind="audio/mpeg") -> str:
    return f'<enclosure url="{url}" type="{kind}" length="1000"/>'


def failures_by_guid(db) -> dict[str, str]:
    rows = db.execute("""SELECT e.guid, s.stage, s.last_error FROM stages s JOIN episodes e ON e.id = s.episode_id
                         WHERE s.state = 'failed'""").fetchall()
    return {guid: f"{stage}: {error}" for guid, stage, error in rows}


def assert_secret_absent(db, tmp_path: Path, marker: str = MARKER):
    dump = "\n".join(db.conn.iterdump())
    assert marker not in dump and "root:x:0:0" not in dump
    for path in (tmp_path / "media").rglob("*"):
        if path.is_file():
            assert marker.encode() not in path.read_bytes()


def ingest(db, sources, tmp_path, client=None, **fetch):
    options = IngestOptions(media_dir=tmp_path / "media", index=False,
                            fetch=FetchRules(**{"deadline_seconds": 10, **fetch}))
    return ingest_sources(db, sources, options, client=client)


# --- local files ----------------------------------------------------------------------------------------------------


def test_remote_feed_may_not_name_local_files(server, tmp_path, secret):
    s = server()
    s.add("/feed.xml", body=feed_xml(
        item("passwd", transcript("file:///etc/passwd", "text/plain")),
        item("secret", transcript(secret.as_uri())),
        item("environ", transcript("file:///proc/self/environ", "text/plain")),
        item("zero", transcript("file:///dev/zero", "text/plain")),
        item("enclosure", enclosure(secret.as_uri())),
        item("ssh", enclosure("file:///root/.ssh/id_rsa")),
        item("good", transcript("/ok.vtt")),
    ), headers={"Content-Type": "application/rss+xml"})
    s.add("/ok.vtt", body=b"WEBVTT\n\n00:00.000 --> 00:02.000\nHello from a real transcript.\n",
          headers={"Content-Type": "text/vtt"})
    db = open_db(tmp_path / "a.db")
    report = ingest(db, [f"{s.base}/feed.xml"], tmp_path)
    failed = failures_by_guid(db)
    assert set(failed) == {"passwd", "secret", "environ", "zero", "enclosure", "ssh"}, failed
    assert all("refused" in reason and "file URLs are not followed" in reason for reason in failed.values()), failed
    assert len(report.failures) == 6
    texts = [row[0] for row in db.execute("SELECT text FROM segments")]
    assert texts == ["Hello from a real transcript."]  # the rest of the feed is ingested
    assert db.execute("SELECT COUNT(*) FROM audio").fetchone()[0] == 0
    assert_secret_absent(db, tmp_path)
    assert_site_does_not_publish(tmp_path / "a.db", db, ["file:///etc/passwd", secret.as_uri(), MARKER])
    status = CliRunner().invoke(cli, ["status", "--db", str(tmp_path / "a.db")])
    assert "refused file:///etc/passwd" in status.output and "refused file:///dev/zero" in status.output


def assert_site_does_not_publish(database: Path, db, needles: list[str]):
    """Every page, export, feed and API answer about the archive's episodes is free of `needles`."""
    from archive.web import create_app

    app = create_app({"DATABASE": str(database), "TESTING": True})
    client = app.test_client()
    paths = ["/", "/episodes", "/api/shows", "/api/episodes"]
    for (show_id,) in db.execute("SELECT id FROM shows"):
        paths += [f"/shows/{show_id}", f"/shows/{show_id}/feed.xml", f"/api/shows/{show_id}"]
    for (episode_id,) in db.execute("SELECT id FROM episodes"):
        paths += [f"/episodes/{episode_id}", f"/api/episodes/{episode_id}", f"/episodes/{episode_id}/audio",
                  f"/episodes/{episode_id}/transcript.txt", f"/episodes/{episode_id}/chapters.json",
                  f"/api/episodes/{episode_id}/transcript"]
    for path in paths:
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        body = response.get_data(as_text=True)
        for needle in needles:
            assert needle not in body, (path, needle)


def test_local_feed_may_name_files_in_its_own_folder_only(tmp_path, secret):
    folder = tmp_path / "show"
    folder.mkdir()
    (folder / "ok.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nInside the folder.\n")
    (folder / "link.vtt").symlink_to(secret)  # a link out of the folder is outside it
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:02.000\nIn a subfolder.\n")
    (folder / "feed.xml").write_bytes(feed_xml(
        item("ok", transcript("ok.vtt")),
        item("nested", transcript("sub/nested.vtt")),
        item("up", transcript("../outside/secret.txt")),
        item("absolute", transcript(secret.as_uri())),
        item("link", transcript("link.vtt")),
        item("proc", transcript("file:///proc/self/environ", "text/plain")),
        item("enclosure", enclosure("../outside/secret.txt")),
    ))
    db = open_db(tmp_path / "a.db")
    ingest(db, [str(folder / "feed.xml")], tmp_path)
    failed = failures_by_guid(db)
    assert set(failed) == {"up", "absolute", "link", "proc", "enclosure"}, failed
    assert all("outside the feed's folder" in reason for reason in failed.values()), failed
    texts = sorted(row[0] for row in db.execute("SELECT text FROM segments"))
    assert texts == ["In a subfolder.", "Inside the folder."]
    assert_secret_absent(db, tmp_path)
    assert_site_does_not_publish(tmp_path / "a.db", db, [MARKER, str(secret), "file:"])


def test_devices_and_proc_files_are_refused_even_inside_the_folder(tmp_path):
    policy = trust.FetchPolicy(origin="test", local_folder="/")
    with pytest.raises(TranscriptFetchError, match="not a regular file"):
        fetch_transcript_file("file:///dev/zero", None, policy=policy)
    # /proc files are regular files that report size 0: the cap is on what is read
    with pytest.raises(TranscriptFetchError, match="larger than the limit of 10 bytes"):
        fetch_transcript_file("file:///proc/self/status", None, max_bytes=10, policy=policy)


def test_remote_opml_may_not_list_local_feeds(server, tmp_path, secret):
    s = server()
    s.add("/feed.xml", body=feed_xml(item("a")))
    opml = (f'<opml version="2.0"><body><outline xmlUrl="{secret.as_uri()}"/><outline xmlUrl="file:///etc/passwd"/>'
            f'<outline xmlUrl="{s.base}/feed.xml"/></body></opml>')
    s.add("/subs.opml", body=opml.encode())
    with make_client() as client:
        sources = expand_sources([f"{s.base}/subs.opml"], client)
    assert [bool(source.refused) for source in sources] == [True, True, False]
    db = open_db(tmp_path / "a.db")
    report = ingest(db, [f"{s.base}/subs.opml"], tmp_path)
    assert [row[0] for row in db.execute("SELECT feed_url FROM shows")] == [f"{s.base}/feed.xml"]
    refusals = [f.error for f in report.failures if f.stage == "source"]
    assert len(refusals) == 2 and all("refused" in reason for reason in refusals)
    assert_secret_absent(db, tmp_path)


def test_local_opml_may_list_feeds_in_its_folder_only(tmp_path, secret):
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "feed.xml").write_bytes(feed_xml(item("a")))
    (secret.parent / "feed.xml").write_bytes(feed_xml(item("b")))
    (tmp_path / "subs" / "list.opml").write_text(
        '<opml><body><outline xmlUrl="feed.xml"/><outline xmlUrl="../outside/feed.xml"/></body></opml>')
    with make_client() as client:
        sources = expand_sources([str(tmp_path / "subs" / "list.opml")], client)
    assert [(Path(s.url).name, bool(s.refused)) for s in sources] == [("feed.xml", False), ("feed.xml", True)]


# --- addresses ------------------------------------------------------------------------------------------------------


class SpyTransport:
    """Records every request that reaches a real connection."""

    def __init__(self, monkeypatch):
        self.sent: list[str] = []
        real = httpx.HTTPTransport.handle_request

        def spy(transport, request):
            self.sent.append(str(request.url))
            return real(transport, request)

        monkeypatch.setattr(httpx.HTTPTransport, "handle_request", spy)


FAKE_DNS = {
    "feeds.example.com": ["93.184.216.34"],
    "intranet.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "rebind.example.com": ["93.184.216.34", "127.0.0.1"],
    "v6.example.com": ["fd00:ec2::254"],
    "mapped.example.com": ["::ffff:127.0.0.1"],
}


def fake_resolver(host: str, port: int) -> list[str]:
    if host in FAKE_DNS:
        return FAKE_DNS[host]
    return trust.system_resolver(host, port)


@pytest.mark.parametrize("host, kind", [("intranet.example.com", "private"), ("metadata.example.com", "link-local"),
                                        ("rebind.example.com", "loopback"), ("v6.example.com", "private"),
                                        ("mapped.example.com", "loopback")])
def test_public_feed_never_reaches_other_addresses(monkeypatch, host, kind):
    spy = SpyTransport(monkeypatch)
    policy = trust.policy_for_source("https://feeds.example.com/feed.xml", resolver=fake_resolver)
    assert policy.kinds == {trust.PUBLIC}
    with make_client(resolver=fake_resolver) as client:
        with pytest.raises(TranscriptFetchError, match=f"a {kind} address"):
            fetch_transcript_file(f"http://{host}/t.vtt", client, policy=policy)
        with pytest.raises(AudioError, match=f"a {kind} address"):
            download_audio(f"http://{host}/a.mp3", Path("/nonexistent/never-written"), client, policy=policy,
                           options=NO_RETRY)
        with pytest.raises(ChaptersError, match=f"a {kind} address"):
            fetch_chapters(f"https://{host}/c.json", client, policy=policy)
    assert spy.sent == []  # refused before any connection


def test_redirect_hops_are_checked_on_their_resolved_address(server, monkeypatch, public_loopback):
    spy = SpyTransport(monkeypatch)
    s = server(public_loopback)
    s.add("/to-metadata", status=302, headers={"Location": "http://metadata.example.com/latest/meta-data/"})
    s.add("/to-loopback", status=302, headers={"Location": "http://127.0.0.1:9/secret"})
    s.add("/to-file", status=302, headers={"Location": "file:///etc/passwd"})
    policy = trust.policy_for_source(f"{s.base}/feed.xml", resolver=fake_resolver)
    assert policy.kinds == {trust.PUBLIC}
    with make_client(resolver=fake_resolver) as client:
        for path, reason in (("/to-metadata", "link-local"), ("/to-loopback", "loopback"), ("/to-file", "refused file:.*only http and https")):
            with pytest.raises(TranscriptFetchError, match=reason):
                fetch_transcript_file(s.base + path, client, policy=policy)
    assert all(url.startswith("http://127.0.0.2:") for url in spy.sent), spy.sent  # only the first hops went out


def test_public_feed_over_http_leads_nowhere_private(server, tmp_path, secret, public_loopback):
    local = server()  # a loopback service the feed must not reach
    local.add("/admin.vtt", body=f"WEBVTT\n\n00:00.000 --> 00:02.000\n{MARKER}\n".encode())
    public = server(public_loopback)
    public.add("/bounce.vtt", status=302, headers={"Location": f"{local.base}/admin.vtt"})
    public.add("/ok.vtt", body=b"WEBVTT\n\n00:00.000 --> 00:02.000\nPublic words.\n")
    public.add("/feed.xml", body=feed_xml(
        item("direct", transcript(f"{local.base}/admin.vtt")),
        item("redirect", transcript(f"{public.base}/bounce.vtt")),
        item("metadata", transcript("http://metadata.example.com/latest/user-data")),
        item("audio", enclosure(f"{local.base}/admin.mp3")),
        item("ok", transcript(f"{public.base}/ok.vtt")),
    ))
    db = open_db(tmp_path / "a.db")
    with make_client(resolver=fake_resolver) as client:
        ingest(db, [f"{public.base}/feed.xml"], tmp_path, client=client)
    failed = failures_by_guid(db)
    assert set(failed) == {"direct", "redirect", "metadata", "audio"}, failed
    assert "a loopback address" in failed["redirect"] and "a link-local address" in failed["metadata"]
    assert local.hits == []  # the loopback service never saw a request
    assert [row[0] for row in db.execute("SELECT text FROM segments")] == ["Public words."]
    assert_secret_absent(db, tmp_path)
    assert_site_does_not_publish(tmp_path / "a.db", db, [MARKER])


def test_loopback_feed_may_lead_to_loopback_and_the_operator_may_widen(server, tmp_path):
    s = server()
    s.add("/t.vtt", body=b"WEBVTT\n\n00:00.000 --> 00:02.000\nLocal words.\n")
    assert trust.policy_for_source(f"{s.base}/feed.xml").kinds == {trust.PUBLIC, trust.LOOPBACK}
    with make_client(resolver=fake_resolver) as client:
        data, _ = fetch_transcript_file(f"{s.base}/t.vtt", client, policy=trust.policy_for_source(s.base))
        assert b"Local words." in data
        with pytest.raises(TranscriptFetchError, match="private address"):
            fetch_transcript_file("http://intranet.example.com/t.vtt", client,
                                  policy=trust.policy_for_source(s.base, resolver=fake_resolver))
    widened = trust.policy_for_source("https://feeds.example.com/", allow_private=True, resolver=fake_resolver)
    assert widened.kinds >= {trust.LOOPBACK, trust.PRIVATE, trust.LINK_LOCAL}


def test_the_operator_option_lets_a_public_feed_reach_loopback(server, tmp_path, public_loopback):
    local = server()
    local.add("/t.vtt", body=b"WEBVTT\n\n00:00.000 --> 00:02.000\nAn intranet transcript.\n")
    public = server(public_loopback)
    public.add("/feed.xml", body=feed_xml(item("a", transcript(f"{local.base}/t.vtt"))))
    db = open_db(tmp_path / "a.db")
    assert ingest(db, [f"{public.base}/feed.xml"], tmp_path).failures[0].stage == "transcript"
    report = ingest(db, [f"{public.base}/feed.xml"], tmp_path, allow_private_addresses=True)
    assert report.ok, report.failures
    assert [row[0] for row in db.execute("SELECT text FROM segments")] == ["An intranet transcript."]


def test_sources_that_are_neither_urls_nor_paths_reach_public_addresses_only():
    policy = trust.policy_for_source("podarchive:show/1234")
    assert policy.kinds == {trust.PUBLIC} and policy.local_folder is None
    local = trust.policy_for_source("relative/feed.xml")
    assert local.local_folder == str(Path("relative").resolve())


def test_link_local_feed_needs_the_operator(tmp_path):
    with make_client(resolver=fake_resolver) as client:
        with pytest.raises(FeedFetchError, match="link-local"):
            fetch_feed("http://metadata.example.com/feed.xml", client, http_options=NO_RETRY)


# --- bounded reads ----------------------------------------------------------------------------------------------------


def test_gzip_bomb_stops_at_the_decoded_cap(server, tmp_path):
    s = server()
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)  # ~200 KB on the wire, 200 MB decoded
    assert len(bomb) < 1_000_000
    s.add("/bomb.vtt", body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/vtt"})
    s.add("/feed.xml", body=bomb, headers={"Content-Encoding": "gzip"})
    s.add("/ok.xml", body=feed_xml(item("bomb", transcript(f"{s.base}/bomb.vtt"))))
    with make_client() as client:
        with pytest.raises(TranscriptFetchError, match="over the limit of 10000000 bytes"):
            fetch_transcript_file(f"{s.base}/bomb.vtt", client)
    db = open_db(tmp_path / "a.db")
    report = ingest(db, [f"{s.base}/feed.xml", f"{s.base}/ok.xml"], tmp_path)
    reasons = [f.error for f in report.failures]
    assert any("over the limit of 20000000 bytes" in r for r in reasons), reasons
    assert "over the limit of 10000000 bytes" in failures_by_guid(db)["bomb"]
    assert db.execute("SELECT last_error FROM shows WHERE feed_url LIKE '%feed.xml'").fetchone()[0]


def test_trickling_server_meets_the_overall_deadline(server):
    s = server()
    s.add("/slow.vtt", body=b"WEBVTT\n\n" + b"x" * 100, trickle=0.2)
    started = time.monotonic()
    with make_client() as client:
        with pytest.raises(TranscriptFetchError, match="deadline of 1 s"):
            fetch_transcript_file(f"{s.base}/slow.vtt", client, deadline=1)
    assert time.monotonic() - started < 4


def test_trickling_audio_is_dropped_and_resumable(server, tmp_path):
    s = server()
    s.add("/slow.mp3", body=b"ID3\x04\x00" + b"\0" * 200, trickle=0.05, headers={"Content-Type": "audio/mpeg",
                                                                              "ETag": '"v1"'})
    with make_client() as client:
        with pytest.raises(AudioError, match="too slow"):
            download_audio(f"{s.base}/slow.mp3", tmp_path / "a.audio", client, options=NO_RETRY,
                           min_rate=MinimumRate(min_bytes=1000, window=0.5))
    assert 0 < (tmp_path / "a.audio.part").stat().st_size < 205  # kept: the next run resumes from there


def test_silent_server_meets_the_deadline_too(server):
    s = server()
    s.add("/silent.json", body=b"{}", declared_length=1000)  # promises more than it sends, then waits
    started = time.monotonic()
    with make_client() as client:
        with pytest.raises(ChaptersError, match="deadline|timed out"):
            fetch_chapters(f"{s.base}/silent.json", client, deadline=1)
    assert time.monotonic() - started < 5


def test_declared_giant_lengths_are_refused_before_reading(server, tmp_path):
    s = server()
    s.add("/huge.mp3", body=b"ID3" + b"\0" * 100, declared_length=3_000_000_000,
          headers={"Content-Type": "audio/mpeg"})
    s.add("/huge.vtt", body=b"WEBVTT\n", declared_length=3_000_000_000)
    with make_client() as client:
        with pytest.raises(AudioError, match="3000000000 bytes, over the limit"):
            download_audio(f"{s.base}/huge.mp3", tmp_path / "a.audio", client, options=NO_RETRY)
        with pytest.raises(TranscriptFetchError, match="3000000000 bytes, over the limit"):
            fetch_transcript_file(f"{s.base}/huge.vtt", client)
    assert not list(tmp_path.glob("a.audio*"))


def test_fetch_bytes_caps_bodies_without_length(server):
    s = server()
    s.add("/big", body=b"a" * 5000, send_length=False)
    with make_client() as client:
        assert len(fetch_bytes(client, f"{s.base}/big", max_bytes=5000).content) == 5000
        with pytest.raises(Exception, match="over the limit of 4999 bytes"):
            fetch_bytes(client, f"{s.base}/big", max_bytes=4999)


# --- types ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type, expected", [
    ("audio/mpeg", "audio/mpeg"), ("Audio/MPEG; charset=binary", "audio/mpeg"), ("video/mp4", "video/mp4"),
    ("audio/mpeg,text/html", None), ("audio/mpeg text/html", None), ("audio/", None), ("text/html<script>", None),
])
def test_media_types_are_parsed_strictly(content_type, expected):
    assert media_type(content_type) == expected


@pytest.mark.parametrize("content_type", ["audio/mpeg,text/html", "text/html", "application/json"])
def test_mislabelled_audio_is_refused(server, tmp_path, content_type):
    s = server()
    s.add("/a.mp3", body=b"ID3" + b"\0" * 500, headers={"Content-Type": content_type})
    with make_client() as client:
        with pytest.raises(AudioError, match="not audio"):
            download_audio(f"{s.base}/a.mp3", tmp_path / "a.audio", client, options=NO_RETRY)
    assert not list(tmp_path.glob("a.audio*"))


def test_types_that_say_nothing_must_sniff_as_audio(server, tmp_path):
    s = server()
    s.add("/page.mp3", body=b"<!doctype html><html><script>alert(1)</script></html>",
          headers={"Content-Type": "application/octet-stream"})
    s.add("/untyped.mp3", body=b"<html>" + b"x" * 500)
    s.add("/real.mp3", body=b"ID3\x04\x00" + b"\0" * 500, headers={"Content-Type": "application/octet-stream"})
    with make_client() as client:
        for path in ("/page.mp3", "/untyped.mp3"):
            with pytest.raises(AudioError, match="first bytes are not"):
                download_audio(s.base + path, tmp_path / "a.audio", client, options=NO_RETRY)
        got = download_audio(f"{s.base}/real.mp3", tmp_path / "b.audio", client, options=NO_RETRY)
    assert got.content_type == "audio/mpeg"  # stored normalised: the site serves this type


def test_sniffing_known_formats():
    assert accepted_audio_type(None, b"OggS\0\2", "x") == "audio/ogg"
    assert accepted_audio_type(None, b"RIFF\0\0\0\0WAVEfmt ", "x") == "audio/wav"
    assert accepted_audio_type(None, b"\0\0\0\x20ftypM4A ", "x") == "audio/mp4"
    assert accepted_audio_type(None, b"\xff\xfb\x90\x00", "x") == "audio/mpeg"
    assert accepted_audio_type("audio/x-m4a; foo=bar", b"", "x") == "audio/x-m4a"
    with pytest.raises(AudioError):
        accepted_audio_type("binary/octet-stream", b"%PDF-1.4", "x")


def test_policy_travels_in_every_request_and_defaults_to_strict(monkeypatch):
    spy = SpyTransport(monkeypatch)
    with make_client(resolver=fake_resolver) as client:
        with pytest.raises(Exception, match="public addresses"):
            client.get("http://intranet.example.com/")  # a bare request gets the strictest policy
    assert spy.sent == []


def test_chapters_file_refused_in_the_index_stage_is_recorded(tmp_path, secret):
    from fakes import FakeEmbedder
    from ingest.index_run import IndexOptions, build_index
    from ingest.understand import UnderstandOptions

    folder = tmp_path / "show"
    folder.mkdir()
    (folder / "t.vtt").write_text("WEBVTT\n\n00:00.000 --> 00:04.000\nWe talk about testing models.\n"
                                  "\n00:04.000 --> 00:09.000\nAnd about data quality checks.\n")
    (secret.parent / "chapters.json").write_text(json.dumps({"version": "1.2.0", "chapters": [
        {"startTime": 0, "title": MARKER}]}))
    (folder / "feed.xml").write_bytes(feed_xml(item(
        "c", transcript("t.vtt") + f'<podcast:chapters url="{(secret.parent / "chapters.json").as_uri()}" '
                                  'type="application/json+chapters"/>')))
    db = open_db(tmp_path / "a.db")
    ingest(db, [str(folder / "feed.xml")], tmp_path)
    build_index(db, FakeEmbedder(), IndexOptions(understand=UnderstandOptions()))
    reason = db.execute("SELECT last_error FROM stages WHERE stage = 'chapters_fetch'").fetchone()[0]
    assert "outside the feed's folder" in reason
    titles = [row[0] for row in db.execute("SELECT title FROM chapters")]
    assert titles and MARKER not in " ".join(titles)  # generated chapters stand in
    assert_secret_absent(db, tmp_path)


def test_local_audio_inside_the_folder_is_copied_with_its_type(tmp_path):
    folder = tmp_path / "show"
    folder.mkdir()
    (folder / "ep.mp3").write_bytes(MP3.read_bytes())
    policy = trust.policy_for_source(str(folder / "feed.xml"))
    with make_client() as client:
        got = download_audio((folder / "ep.mp3").as_uri(), tmp_path / "1.audio", client, policy=policy)
        assert got.content_type == "audio/mpeg" and got.bytes == MP3.stat().st_size
        with pytest.raises(AudioError, match="over the limit"):
            download_audio((folder / "ep.mp3").as_uri(), tmp_path / "2.audio", client, policy=policy,
                           max_bytes=1000)
    assert not (tmp_path / "2.audio.part").exists()
