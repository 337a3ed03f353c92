"""The studio's publishing API (archive/web/studio_api.py): scripts write, publish and unpublish episodes with a
producer's bearer token.

The whole flow runs against a real server in a subprocess (the site as `podarchive serve --workers 1` runs it,
given the tests' fake embedder; a producer and tokens made with the CLI, requests with httpx): a draft with
hostile notes (and no transcript) is invisible to visitors, published it is on its page, in search (keyword, and
semantic from its notes alone) and in the show's feed, sanitised, an edit of its notes is searchable at once, and
unpublished it is gone again. The other tests use Flask's test client: every refusal (no token 401, another
show's token 403, bad JSON 400, hostile values 422, bodies too large 413) leaves the archive as it was.
"""

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from archive import producers, studio
from archive.cli import cli
from archive.db import connect, open_db
from archive.fts_tables import ensure_fts
from conftest import ROOT
from web_fixtures import make_app

WORD = "wombatology"  # in the draft's notes; nowhere else
EDITED_WORD = "numbatology"  # in its notes once edited
HOSTILE_NOTES = (f"Notes on **{WORD}** and burrows.\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1))\n\n"
                 "<img src=x onerror=alert(1)>\n")
MB = 1024 * 1024


# -- what "sanitised" means -------------------------------------------------------------------------------

class _ActiveContent(HTMLParser):
    """Collects what a browser would run in a piece of HTML: inline scripts, event handlers, javascript: URLs,
    images pointing at `x`."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "script" and not attributes.get("src"):
            self.found.append("inline <script>")
        if tag == "img" and attributes.get("src") == "x":
            self.found.append("<img src=x>")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"{name}= on <{tag}>")
            if value and re.match(r"\s*(javascript|vbscript|data):", value, re.IGNORECASE):
                self.found.append(f"{name}={value!r} on <{tag}>")


def active_content(html: str) -> list[str]:
    parser = _ActiveContent()
    parser.feed(html)
    parser.close()
    return parser.found


def assert_sanitised(html: str) -> None:
    assert active_content(html) == [], active_content(html)
    assert "<script>alert" not in html and 'href="javascript:' not in html.lower()


def test_the_checker_finds_what_it_looks_for():
    assert len(active_content('<script>alert(1)</script><a href="javascript:x">x</a><img src=x onerror=y>')) == 4
    assert active_content("<p>&lt;script&gt;alert(1)&lt;/script&gt; [x](javascript:alert(1))</p>") == []


# -- an archive with two shows and their producers ---------------------------------------------------------

def archive_dump(path: Path) -> str:
    """A hash of the archive's content, but for when each API token was last used (a valid token records it)."""
    db = connect(path, readonly=True)
    dump = "\n".join(line for line in db.conn.iterdump() if not line.startswith('INSERT INTO "api_tokens"'))
    db.conn.close()
    return hashlib.sha256(dump.encode()).hexdigest()


@pytest.fixture
def archive(tmp_path):
    """Two hosted shows; ann may edit the first, bob the second, boss every show. (path, ids, tokens)"""
    path = tmp_path / "archive.db"
    db = open_db(path)
    ids = {"island": studio.create_show(db, "Island Radio"), "other": studio.create_show(db, "Other Show")}
    producers.add_producer(db, "ann", "ann password", shows=[ids["island"]])
    producers.add_producer(db, "bob", "bob password", shows=[ids["other"]])
    producers.add_producer(db, "boss", "boss password", admin=True)
    tokens = {name: producers.create_token(db, name)[1] for name in ("ann", "bob", "boss")}
    ensure_fts(db)
    db.conn.close()
    return path, ids, tokens


@pytest.fixture
def client(archive):
    return make_app(archive[0]).test_client()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def new_draft(client, show_id, token, **fields) -> dict:
    response = client.post(f"/api/studio/shows/{show_id}/episodes", json={"title": "A draft", **fields},
                           headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# -- the flow over a real server ---------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# `podarchive serve --workers 1 --no-worker` with the fake embedder, which the site does not ship: the same app and
# werkzeug's threaded server, the embedder given to create_app.
SERVE_WITH_FAKE_EMBEDDER = """
import sys
from werkzeug.serving import run_simple
from archive.web import create_app
from fakes import FakeEmbedder

database, port = sys.argv[1:]
run_simple("127.0.0.1", int(port), create_app({"DATABASE": database, "EMBEDDER": FakeEmbedder()}), threaded=True,
           use_reloader=False)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The site served as `podarchive serve --workers 1 --no-worker` does, with the fake embedder, on a free port
    over an archive with two hosted shows (one episode published in the first, so its feed exists), producers and
    tokens made with the CLI."""
    folder = tmp_path_factory.mktemp("live")
    path, media = folder / "archive.db", folder / "media"
    db = open_db(path)
    island, other = studio.create_show(db, "Island Radio"), studio.create_show(db, "Other Show")
    first = studio.create_episode(db, island, {"title": "Welcome to the island", "notes_markdown": "Hello."}, None)
    studio.publish(db, first, None)
    ensure_fts(db)
    db.conn.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests"), "PODARCHIVE_MEDIA_DIR": str(media),
           "PODARCHIVE_DB": str(path), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    runner = CliRunner()
    tokens = {}
    for name, show in (("ann", island), ("bob", other)):
        added = runner.invoke(cli, ["producer", "add", name, "--db", str(path), "--show", str(show),
                                    "--password-stdin"], input=f"{name} password\n", env=env)
        assert added.exit_code == 0, added.output
        made = runner.invoke(cli, ["producer", "token", name, "--db", str(path)], env=env)
        assert made.exit_code == 0, made.output
        tokens[name] = re.search(r"^pa_\S+$", made.output, re.MULTILINE).group(0)  # alone on its line
    port = free_port()
    log = open(folder / "serve.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE_WITH_FAKE_EMBEDDER, str(path.resolve()), str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        assert process.poll() is None, (folder / "serve.log").read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the server did not start: " + (folder / "serve.log").read_text()
            time.sleep(0.2)
    try:
        yield {"base": base, "port": port, "path": path, "media": media, "island": island, "other": other,
               "tokens": tokens, "first": first}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_publishing_flow_over_a_real_server(live):
    base, ann, bob = live["base"], bearer(live["tokens"]["ann"]), bearer(live["tokens"]["bob"])
    visitor = httpx.Client(base_url=base, timeout=60)
    api = httpx.Client(base_url=base, timeout=60, headers=ann)

    def visible() -> dict[str, bool]:
        page = visitor.get(f"/episodes/{episode_id}")
        assert page.status_code in (200, 404)
        found = {}
        for mode in ("keyword", "semantic"):
            results = visitor.get("/api/search", params={"q": WORD, "mode": mode})
            assert results.status_code == 200, results.text
            found[mode] = any(r["episode_id"] == episode_id for r in results.json()["results"])
        feed = visitor.get(f"/shows/{live['island']}/feed.xml")
        assert feed.status_code == 200  # the show has another published episode
        titles = [item.findtext("title") for item in ET.fromstring(feed.content).iter("item")]
        return {"page": page.status_code == 200, **found, "feed": "Wombats, burrows and you" in titles}

    shows = api.get("/api/studio/shows").json()
    assert [show["title"] for show in shows["shows"]] == ["Island Radio"] and shows["producer"]["name"] == "ann"

    created = api.post(f"/api/studio/shows/{live['island']}/episodes", json={
        "title": "Wombats, burrows and you", "notes_markdown": HOSTILE_NOTES, "number": 2, "season": 1,
        "guests": ["Wendy Wombat"], "takeaways": [{"title": "Dig deep", "text": "Burrows are long.", "start": 3}],
        "chapters": [{"title": "Intro", "start": 0}, {"title": "Digging", "start": "0:12"}],
    })
    assert created.status_code == 201, created.text
    draft = created.json()
    episode_id = draft["id"]
    assert draft["state"] == "draft" and draft["number"] == 2 and draft["guests"] == ["Wendy Wombat"]
    assert created.headers["Location"].endswith(f"/api/studio/episodes/{episode_id}")
    assert set(draft["producer_fields"]) == {"title", "notes_markdown", "number", "season", "guests", "takeaways",
                                             "chapters"}
    assert_sanitised(draft["notes_html"])

    assert visible() == {"page": False, "keyword": False, "semantic": False, "feed": False}
    assert api.get(f"/api/studio/episodes/{episode_id}").json()["state"] == "draft"  # the producer sees it

    # another show's producer can neither publish nor change it; nobody can without a token
    before = archive_dump(live["path"])
    assert httpx.post(f"{base}/api/studio/episodes/{episode_id}/publish", headers=bob).status_code == 403
    assert httpx.patch(f"{base}/api/studio/episodes/{episode_id}", headers=bob,
                       json={"title": "Hijacked"}).json() == {"error": "You may not edit this show."}
    refused = httpx.post(f"{base}/api/studio/episodes/{episode_id}/publish")
    assert refused.status_code == 401 and set(refused.json()) == {"error"}
    assert archive_dump(live["path"]) == before and visible()["page"] is False

    published = api.post(f"/api/studio/episodes/{episode_id}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["state"] == "published"
    assert published.json()["publish"]["search"]["vectors_added"] >= 2  # notes and takeaway, before the response

    assert visible() == {"page": True, "keyword": True, "semantic": True, "feed": True}
    page = visitor.get(f"/episodes/{episode_id}").text
    assert WORD in page and "Wendy Wombat" in page
    assert_sanitised(page)
    for mode in ("keyword", "semantic"):
        for result in visitor.get("/api/search", params={"q": WORD, "mode": mode}).json()["results"]:
            assert_sanitised(result["snippet"])
    feed = ET.fromstring(visitor.get(f"/shows/{live['island']}/feed.xml").content)
    item = next(i for i in feed.iter("item") if i.findtext("title") == "Wombats, burrows and you")
    notes = [element.text or "" for element in item if element.tag.endswith(("description", "encoded"))]
    assert notes and all(WORD in html for html in notes)
    for html in notes:
        assert_sanitised(html)

    def semantic_finds(word: str) -> bool:
        response = visitor.get("/api/search", params={"q": word, "mode": "semantic"})
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        return any(r["episode_id"] == episode_id for r in results)

    edited = api.patch(f"/api/studio/episodes/{episode_id}", json={"notes_markdown": f"Now on {EDITED_WORD}."})
    assert edited.status_code == 200, edited.text
    assert semantic_finds(EDITED_WORD)  # the server's cached index predates the edit: embedded and read at once

    unpublished = api.post(f"/api/studio/episodes/{episode_id}/unpublish")
    assert unpublished.status_code == 200 and unpublished.json()["state"] == "draft"
    assert visible() == {"page": False, "keyword": False, "semantic": False, "feed": False}

    actions = [r["action"] for r in api.get(f"/api/studio/episodes/{episode_id}/history").json()["revisions"]]
    assert actions == ["unpublish", "edit", "publish", "create"]


def test_an_upload_over_a_real_server(live):
    api = httpx.Client(base_url=live["base"], timeout=60, headers=bearer(live["tokens"]["ann"]))
    episode_id = api.post(f"/api/studio/shows/{live['island']}/episodes", json={"title": "With audio"}).json()["id"]
    audio = (ROOT / "demo" / "episode-1.mp3").read_bytes()
    response = api.put(f"/api/studio/episodes/{episode_id}/audio", content=audio,
                       headers={"Content-Type": "audio/mpeg",
                                "Content-Disposition": 'attachment; filename="../../etc/passwd.mp3"'})
    assert response.status_code == 200, response.text
    body = response.json()
    assert re.fullmatch(r"uploads/[0-9a-f]{32}\.mp3", body["audio_url"]), body["audio_url"]
    assert body["upload"] == {"name": "passwd.mp3", "content_type": "audio/mpeg", "bytes": len(audio),
                              "sha256": hashlib.sha256(audio).hexdigest()}
    assert (live["media"] / body["audio_url"]).read_bytes() == audio
    assert not list(live["media"].glob("uploads/*.part"))


def test_a_3_gb_upload_is_refused_at_once(live):
    """Content-Length says 3 GB: the server answers 413 before reading the body, and writes nothing."""
    api = httpx.Client(base_url=live["base"], timeout=60, headers=bearer(live["tokens"]["ann"]))
    episode_id = api.post(f"/api/studio/shows/{live['island']}/episodes", json={"title": "Too big"}).json()["id"]
    uploads = live["media"] / "uploads"
    files_before = sorted(uploads.iterdir()) if uploads.exists() else []
    before = archive_dump(live["path"])

    def body():  # a few MB of the 3 GB promised, then the client stops sending
        yield b"ID3" + bytes(MB - 3)
        for _ in range(4):
            yield bytes(MB)

    sock = socket.create_connection(("127.0.0.1", live["port"]), timeout=30)
    started = time.monotonic()
    sock.sendall((f"PUT /api/studio/episodes/{episode_id}/audio HTTP/1.1\r\nHost: 127.0.0.1:{live['port']}\r\n"
                  f"Authorization: Bearer {live['tokens']['ann']}\r\nContent-Type: audio/mpeg\r\n"
                  "Content-Length: 3000000000\r\n\r\n").encode())

    def send():
        try:
            for chunk in body():
                sock.sendall(chunk)
        except OSError:
            pass  # the server may close the connection once it has answered

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    received = b""
    while b"\r\n\r\n" not in received or len(received) < received.index(b"\r\n\r\n") + 4 + int(
            re.search(rb"(?i)content-length:\s*(\d+)", received).group(1)):
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    elapsed = time.monotonic() - started
    sender.join(timeout=30)
    sock.close()
    head, _, payload = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert "at most 2,048 MB" in json.loads(payload)["error"]
    assert elapsed < 10, elapsed
    assert (sorted(uploads.iterdir()) if uploads.exists() else []) == files_before  # not a byte written
    assert archive_dump(live["path"]) == before
    assert api.get(f"/api/studio/episodes/{episode_id}").json()["audio_url"] is None


# -- with the test client ---------------------------------------------------------------------------------

def test_a_draft_is_created_read_changed_and_restored(client, archive):
    _, ids, tokens = archive
    draft = new_draft(client, ids["island"], tokens["ann"], number="7", published_at="2024-05-01",
                      audio_url="https://cdn.example.com/ep7.mp3", takeaways=[{"title": "One", "text": "1"}])
    assert draft["number"] == 7 and draft["published_at"] == "2024-05-01T00:00:00+00:00"
    assert draft["audio_url"] == "https://cdn.example.com/ep7.mp3" and draft["season"] is None
    assert draft["sources"]["number"] == "producer" and draft["sources"]["season"] == "feed"
    assert draft["url"].endswith(f"/episodes/{draft['id']}") and draft["last_change"]["action"] == "create"
    url = f"/api/studio/episodes/{draft['id']}"
    changed = client.patch(url, json={"title": "Better", "number": None, "season": 2}, headers=bearer(tokens["ann"]))
    assert changed.status_code == 200, changed.get_json()
    assert changed.get_json()["title"] == "Better" and changed.get_json()["number"] is None
    assert client.get(url, headers=bearer(tokens["boss"])).get_json()["season"] == 2  # an admin reads it too
    revisions = client.get(f"{url}/history", headers=bearer(tokens["ann"])).get_json()["revisions"]
    assert [r["action"] for r in revisions] == ["edit", "create"]
    assert revisions[0]["changed"] == ["title", "number", "season"] and revisions[0]["producer_name"] == "ann"
    assert revisions[0]["diff"]["number"] == {"before": 7, "after": None}
    assert revisions[1]["snapshot"]["title"] == "A draft" and "notes_html" not in revisions[1]["snapshot"]
    restored = client.post(f"{url}/restore", json={"revision_id": revisions[1]["revision_id"]},
                           headers=bearer(tokens["ann"]))
    assert restored.status_code == 200 and restored.get_json()["title"] == "A draft"
    assert restored.get_json()["number"] == 7
    assert client.post(f"{url}/restore", json={"revision_id": "1"}, headers=bearer(tokens["ann"])).status_code == 422
    assert client.post(f"{url}/restore", json={"revision_id": 10**6},
                       headers=bearer(tokens["ann"])).status_code == 404
    listed = client.get(f"/api/studio/shows/{ids['island']}/episodes", headers=bearer(tokens["ann"])).get_json()
    assert [(e["id"], e["state"], e["title"]) for e in listed["episodes"]] == [(draft["id"], "draft", "A draft")]


def test_shows_lists_what_the_token_may_edit(client, archive):
    _, ids, tokens = archive
    ann = client.get("/api/studio/shows", headers=bearer(tokens["ann"])).get_json()
    assert [s["id"] for s in ann["shows"]] == [ids["island"]] and ann["producer"]["admin"] is False
    assert ann["shows"][0]["episodes"] == {"total": 0, "draft": 0, "scheduled": 0, "published": 0}
    boss = client.get("/api/studio/shows", headers=bearer(tokens["boss"])).get_json()
    assert [s["title"] for s in boss["shows"]] == ["Island Radio", "Other Show"]


def test_no_token_is_401_and_another_shows_token_403_and_nothing_changes(client, archive):
    path, ids, tokens = archive
    episode = new_draft(client, ids["island"], tokens["ann"])["id"]
    before = archive_dump(path)
    requests = [("POST", f"/api/studio/shows/{ids['island']}/episodes", {"title": "x"}),
                ("GET", f"/api/studio/shows/{ids['island']}/episodes", None),
                ("GET", f"/api/studio/episodes/{episode}", None),
                ("PATCH", f"/api/studio/episodes/{episode}", {"title": "x"}),
                ("POST", f"/api/studio/episodes/{episode}/publish", {}),
                ("POST", f"/api/studio/episodes/{episode}/unpublish", {}),
                ("GET", f"/api/studio/episodes/{episode}/history", None),
                ("POST", f"/api/studio/episodes/{episode}/restore", {"revision_id": 1}),
                ("PUT", f"/api/studio/episodes/{episode}/audio", None)]
    for method, url, body in requests:
        anonymous = client.open(url, method=method, json=body)
        assert anonymous.status_code == 401 and set(anonymous.get_json()) == {"error"}, (method, url)
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        other = client.open(url, method=method, json=body, headers=bearer(tokens["bob"]))
        assert other.status_code == 403, (method, url, other.get_json())
        assert other.get_json() == {"error": "You may not edit this show."}
    assert archive_dump(path) == before
    missing = client.get("/api/studio/episodes/999999", headers=bearer(tokens["ann"]))
    assert missing.status_code == 404 and missing.get_json() == {"error": "No episode with id 999999."}
    nowhere = client.post("/api/studio/shows/999999/episodes", json={"title": "x"}, headers=bearer(tokens["boss"]))
    assert nowhere.status_code == 404 and set(nowhere.get_json()) == {"error"}


@pytest.mark.parametrize("body,status,message", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "must be a JSON object"),
    (b"", 400, "Send a JSON object"),
    (b"\xff\xfe\x00garbage", 400, "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, 400, "not valid JSON"),
    (b'{"title": "x", "number": 1' + b"0" * 5000 + b"}", 400, "not valid JSON"),
])
def test_bodies_that_are_not_a_json_object_are_400(client, archive, body, status, message):
    path, ids, tokens = archive
    before = archive_dump(path)
    response = client.post(f"/api/studio/shows/{ids['island']}/episodes", data=body,
                           headers={**bearer(tokens["ann"]), "Content-Type": "application/json"})
    assert response.status_code == status and message in response.get_json()["error"], response.get_json()
    assert archive_dump(path) == before


def test_a_json_body_over_8_mb_is_413(client, archive):
    path, ids, tokens = archive
    before = archive_dump(path)
    body = json.dumps({"title": "x", "notes_markdown": "a" * (9 * MB)})
    response = client.post(f"/api/studio/shows/{ids['island']}/episodes", data=body,
                           headers={**bearer(tokens["ann"]), "Content-Type": "application/json"})
    assert response.status_code == 413 and "at most 8 MB" in response.get_json()["error"]
    assert archive_dump(path) == before


HUGE = "x" * MB


@pytest.mark.parametrize("fields,field", [
    ({"title": HUGE}, "title"),
    ({"notes_markdown": HUGE}, "notes_markdown"),
    ({"guests": [HUGE]}, "guests[0]"),
    ({"guests": [f"Guest {i}" for i in range(501)]}, "guests"),
    ({"takeaways": [{"title": "t", "text": HUGE}]}, "takeaways[0].text"),
    ({"takeaways": [{"text": "no title"}]}, "takeaways[0].title"),
    ({"takeaways": "<script>alert(1)</script>"}, "takeaways"),
    ({"chapters": [{"title": "c", "start": -1}]}, "chapters[0].start"),
    ({"chapters": [{"title": "c", "start": float("nan")}]}, "chapters[0].start"),
    ({"chapters": [{"title": "c"}]}, "chapters[0].start"),
    ({"audio_url": "file:///etc/passwd"}, "audio_url"),
    ({"audio_url": "../../etc/passwd"}, "audio_url"),
    ({"audio_url": "/etc/passwd"}, "audio_url"),
    ({"audio_url": "uploads/../../../etc/passwd"}, "audio_url"),
    ({"audio_url": "javascript:alert(1)"}, "audio_url"),
    ({"audio_url": "data:audio/mpeg;base64,SUQz"}, "audio_url"),
    ({"audio_url": "\\\\server\\share\\x.mp3"}, "audio_url"),
    ({"number": -1}, "number"),
    ({"number": True}, "number"),
    ({"number": 1.5}, "number"),
    ({"number": "1e9"}, "number"),
    ({"season": 10**7}, "season"),
    ({"published_at": "yesterday"}, "published_at"),
    ({"published_at": "2024-13-45"}, "published_at"),
    ({"title": "  "}, "title"),
    ({"title": ["a list"]}, "title"),
    ({"episode_number": 3}, "episode_number"),
    ({"state": "published"}, "state"),
    ({"../../etc/passwd": 1}, "../../etc/passwd"),
])
def test_hostile_values_are_422_naming_the_field(client, archive, fields, field):
    path, ids, tokens = archive
    before = archive_dump(path)
    body = json.dumps({"title": "A draft", **fields}, allow_nan=True)
    response = client.post(f"/api/studio/shows/{ids['island']}/episodes", data=body,
                           headers={**bearer(tokens["ann"]), "Content-Type": "application/json"})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["field"] == field and response.get_json()["error"].startswith(f"{field}: ")
    assert len(response.get_data()) < 2000  # the value is not echoed back whole
    assert archive_dump(path) == before


def test_hostile_values_in_a_patch_change_nothing(client, archive):
    path, ids, tokens = archive
    draft = new_draft(client, ids["island"], tokens["ann"], notes_markdown="Kept.")
    before = archive_dump(path)
    for fields in ({"notes_markdown": HUGE}, {"title": "ok", "audio_url": "file:///etc/passwd"},
                   {"title": "ok", "chapters": [{"title": "c", "start": "soon"}]}):
        response = client.patch(f"/api/studio/episodes/{draft['id']}", json=fields, headers=bearer(tokens["ann"]))
        assert response.status_code == 422, response.get_json()
    assert archive_dump(path) == before


def test_odd_unicode_is_cleaned_or_refused(client, archive):
    _, ids, tokens = archive
    title = "Cafe\u0301 \U0001F399\ufe0f \u202egnp.exe\u202c \x00nul\x07 \u200bzero width"
    draft = new_draft(client, ids["island"], tokens["ann"], title=title, guests=["Zoë \u202eEvil\u202c"],
                      notes_markdown="Line one\r\nLine two \U0001F600")
    assert draft["title"] == "Café \U0001F399\ufe0f gnp.exe nul \u200bzero width"
    assert draft["guests"] == ["Zoë Evil"] and draft["notes_markdown"] == "Line one\nLine two \U0001F600"
    lone = b'{"title": "bad \\ud800 surrogate"}'
    response = client.post(f"/api/studio/shows/{ids['island']}/episodes", data=lone,
                           headers={**bearer(tokens["ann"]), "Content-Type": "application/json"})
    assert response.status_code == 422 and response.get_json()["field"] == "title"


def test_hostile_text_is_stored_as_text_and_shown_sanitised(client, archive):
    _, ids, tokens = archive
    draft = new_draft(client, ids["island"], tokens["ann"], title='<script>alert("t")</script>',
                      notes_markdown=HOSTILE_NOTES, takeaways=[{"title": "<img src=x onerror=alert(1)>",
                                                                 "text": "[x](javascript:alert(1))"}])
    assert draft["title"] == '<script>alert("t")</script>' and draft["notes_markdown"] == HOSTILE_NOTES.strip()
    assert_sanitised(draft["notes_html"])
    published = client.post(f"/api/studio/episodes/{draft['id']}/publish", headers=bearer(tokens["ann"]))
    assert published.status_code == 200
    page = client.get(f"/episodes/{draft['id']}").get_data(as_text=True)
    assert WORD in page
    assert_sanitised(page)


def test_publish_schedules_with_at(client, archive):
    path, ids, tokens = archive
    draft = new_draft(client, ids["island"], tokens["ann"])
    url = f"/api/studio/episodes/{draft['id']}/publish"
    scheduled = client.post(url, json={"at": "2999-01-01T09:00:00+02:00"}, headers=bearer(tokens["ann"]))
    assert scheduled.status_code == 200, scheduled.get_json()
    assert scheduled.get_json()["state"] == "scheduled"
    assert scheduled.get_json()["publish_at"] == "2999-01-01T07:00:00+00:00"
    assert client.get(f"/episodes/{draft['id']}").status_code == 404
    before = archive_dump(path)
    for body, field in (({"at": "tomorrow"}, "at"), ({"when": "2999-01-01"}, "when")):
        response = client.post(url, json=body, headers=bearer(tokens["ann"]))
        assert response.status_code == 422 and response.get_json()["field"] == field
    assert archive_dump(path) == before
    now = client.post(url, headers=bearer(tokens["ann"]))  # no body: now
    assert now.status_code == 200 and now.get_json()["state"] == "published"
    assert client.get(f"/episodes/{draft['id']}").status_code == 200
