"""A feed is untrusted input: what the site re-publishes (pages, JSON API, show feeds, exports) never carries a
script, data or file URL or a local path from it; a locally ingested episode's feed enclosure is the site's own
copy of its audio; BASE_URL and TRUSTED_HOSTS; stored media served with a safe type; feeds cached with an ETag."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import pytest

from archive.db import connect, open_db, utcnow
from archive.records import Segment
from archive.sanitize import public_guid, public_url
from archive.web.media import media_type
from fakes import FakeEmbedder
from web_fixtures import ArchiveBuilder, make_app

NS = {"podcast": "https://podcastindex.org/namespace/1.0", "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
      "atom": "http://www.w3.org/2005/Atom"}
AUDIO_BYTES = b"ID3" + bytes(range(256)) * 20  # what the audio stage stored; the site never reads it as audio
# What a hostile (or merely local) feed may name, and what must never come back out of the site.
UNSAFE = {
    "link": "javascript:alert(1)",
    "image": "data:text/html,<script>alert(2)</script>",
    "enclosure": "file:///etc/passwd",
    "href": "vbscript:msgbox(3)",
    "img": "file:///etc/passwd",
    "chapter_url": "javascript:alert(4)",
    "chapter_image": "data:image/svg+xml,<svg onload=alert(5)>",
}
NEVER = ("javascript:", "vbscript:", "data:text", "data:image", "file:", "/etc/passwd")


@pytest.fixture(scope="module")
def unsafe(tmp_path_factory):
    """Episodes whose links, images, enclosures and people point where the site must never send anyone, and one
    ingested from a local feed with its audio downloaded."""
    from ingest.index_run import build_index

    folder = tmp_path_factory.mktemp("unsafe")
    audio = folder / "media" / "local-1.mp3"
    audio.parent.mkdir()
    audio.write_bytes(AUDIO_BYTES)
    path = folder / "archive.db"
    db = open_db(path)
    build = ArchiveBuilder(db)
    ids = {"audio_path": str(audio)}
    ids["show"] = build.show(None, feed_url=f"file://{folder}/feed.xml", link=UNSAFE["link"], image=UNSAFE["image"],
                             description=f'<p>About <a href="{UNSAFE["link"]}">us</a></p>',
                             people=[{"name": "Channel Host", "role": "host", "href": UNSAFE["href"],
                                      "img": UNSAFE["img"]}])
    ids["bad"] = build.episode(
        ids["show"], "bad-1", "Hostile links episode", published="2024-03-01T00:00:00+00:00",
        link=UNSAFE["link"], image=UNSAFE["image"], enclosure_url=UNSAFE["enclosure"], enclosure_type="audio/mpeg",
        description=f'Short <a href="{UNSAFE["link"]}">description</a>',
        notes_html=f'<p>Notes <a href="{UNSAFE["link"]}">one</a> <a href="{UNSAFE["image"]}">two</a> '
                   f'<a href="{UNSAFE["enclosure"]}">three</a> <img src="{UNSAFE["img"]}"></p>',
    )
    build.transcript(ids["bad"], [Segment(0.0, 10.0, "Feature stores keep training and serving apart.", "Eve"),
                                  Segment(10.0, 20.0, "Drift monitoring matters in production.", "Channel Host")])
    # Ingested from a local feed: its enclosure is a file on the ingesting machine, its guid that file's URL.
    local_url = f"file://{audio}"
    ids["local"] = build.episode(ids["show"], local_url, "Local audio episode", published="2024-02-01T00:00:00+00:00",
                                 enclosure_url=local_url, enclosure_type="audio/mpeg")
    build.audio(ids["local"], audio, local_url, content_type="Audio/MPEG; charset=binary")
    build.transcript(ids["local"], [Segment(0.0, 10.0, "Feature stores in a local recording.", "Channel Host")])
    ids["web"] = build.episode(ids["show"], "web-1", "Web audio episode", published="2024-01-01T00:00:00+00:00",
                               enclosure_url="https://cdn.example.com/web-1.mp3", enclosure_type="audio/mp4",
                               enclosure_length=12345)
    ids["silent"] = build.episode(ids["show"], "silent-1", "No audio at all", published="2023-12-01T00:00:00+00:00",
                                  enclosure_url="javascript:alert(6)")
    build_index(db, embedder=FakeEmbedder())
    # Added after indexing: the index stage re-reads credits and chapters from what the feed stored.
    db["chapters"].delete_where("episode_id = ?", [ids["bad"]])
    build.chapters(ids["bad"], [{"title": "Start", "start": 0.0, "url": UNSAFE["chapter_url"],
                                 "image": UNSAFE["chapter_image"]},
                                {"title": "Safe", "start": 10.0, "url": "https://example.com/safe"}])
    build.credit(ids["bad"], "Eve Hostile", "guest", href=UNSAFE["href"], img=UNSAFE["img"])
    build.credit(ids["bad"], "Channel Host", "host")
    db.conn.close()
    return path, ids


@pytest.fixture(scope="module")
def app(unsafe):
    return make_app(unsafe[0])


@pytest.fixture
def client(app):
    return app.test_client()


def outputs(client, ids) -> dict[str, str]:
    """Every page, API answer, export and feed that shows the hostile show."""
    paths = ["/", "/episodes", f"/shows/{ids['show']}", "/guests", "/guests/eve-hostile", "/guests/channel-host",
             "/search?q=feature+stores", "/api/shows", f"/api/shows/{ids['show']}", "/api/episodes", "/api/guests",
             "/api/guests/eve-hostile", "/api/guests/channel-host", "/api/search?q=feature+stores&mode=keyword",
             "/api/search?q=feature+stores&mode=hybrid", f"/shows/{ids['show']}/feed.xml"]
    for name in ("bad", "local", "web", "silent"):
        paths += [f"/episodes/{ids[name]}", f"/api/episodes/{ids[name]}"]
    paths += [f"/episodes/{ids['bad']}/chapters.json", f"/api/episodes/{ids['bad']}/transcript"]
    paths += [f"/episodes/{ids['bad']}/transcript.{fmt}" for fmt in ("vtt", "srt", "json", "txt")]
    found = {}
    for path in paths:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        found[path] = response.get_data(as_text=True)
    return found


def test_nothing_unsafe_or_local_is_republished(client, unsafe):
    path, ids = unsafe
    for url, body in outputs(client, ids).items():
        for needle in (*NEVER, ids["audio_path"], str(path.parent)):
            assert needle not in body, f"{url} re-publishes {needle!r}"


def test_unsafe_urls_become_null_in_the_api(client, unsafe):
    ids = unsafe[1]
    show = client.get(f"/api/shows/{ids['show']}").get_json()
    assert show["link"] is None and show["image"] is None and show["source_feed_url"] is None
    assert show["description"] == "About us"
    bad = client.get(f"/api/episodes/{ids['bad']}").get_json()
    assert (bad["link"], bad["image"], bad["enclosure_url"], bad["enclosure_type"]) == (None, None, None, None)
    assert bad["description"] == "Short description" and bad["audio_url"] is None
    assert "Notes" in bad["notes_html"] and "href" not in bad["notes_html"] and "<img" not in bad["notes_html"]
    assert not any(key.startswith("notes_html_") for key in bad)
    eve = next(p for p in bad["guests"] if p["slug"] == "eve-hostile")
    assert eve["href"] is None and eve["img"] is None
    assert [(c["url"], c["image"]) for c in bad["chapters"]] == [(None, None), ("https://example.com/safe", None)]
    chapters = json.loads(client.get(f"/episodes/{ids['bad']}/chapters.json").data)["chapters"]
    assert "url" not in chapters[0] and "img" not in chapters[0] and chapters[1]["url"] == "https://example.com/safe"


def test_a_local_episode_is_published_with_the_sites_copy(client, unsafe):
    ids = unsafe[1]
    local = client.get(f"/api/episodes/{ids['local']}").get_json()
    assert local["audio_url"] == f"http://localhost/episodes/{ids['local']}/audio"
    assert local["enclosure_url"] is None and local["guid"] == public_guid(f"file://{ids['audio_path']}")
    assert local["guid"].startswith("sha256:")
    page = client.get(f"/episodes/{ids['local']}").get_data(as_text=True)
    assert f'src="/episodes/{ids["local"]}/audio"' in page


def feed_items(client, show_id: int, **headers) -> dict[str, ET.Element]:
    root = ET.fromstring(client.get(f"/shows/{show_id}/feed.xml", headers=headers).data)
    return {item.findtext("title"): item for item in root.iter("item")}


def test_feed_enclosures(client, unsafe):
    ids = unsafe[1]
    items = feed_items(client, ids["show"])
    local = items["Local audio episode"].find("enclosure")
    assert local.attrib == {"url": f"http://localhost/episodes/{ids['local']}/audio", "type": "audio/mpeg",
                            "length": str(len(AUDIO_BYTES))}
    served = client.get(urlsplit(local.get("url")).path)
    assert served.status_code == 200 and served.data == AUDIO_BYTES
    assert items["Local audio episode"].findtext("guid").startswith("sha256:")
    web = items["Web audio episode"].find("enclosure")  # an http(s) enclosure stays as the feed gave it
    assert web.attrib == {"url": "https://cdn.example.com/web-1.mp3", "type": "audio/mp4", "length": "12345"}
    assert items["No audio at all"].find("enclosure") is None
    assert items["Hostile links episode"].find("enclosure") is None  # file:///etc/passwd, and nothing stored
    assert items["Hostile links episode"].find("itunes:image", NS) is None
    hostile = {p.text: p.get("href") for p in items["Hostile links episode"].findall("podcast:person", NS)}
    assert hostile == {"Eve Hostile": "http://localhost/guests/eve-hostile",
                       "Channel Host": "http://localhost/guests/channel-host"}


def test_base_url_is_used_for_every_absolute_url(unsafe):
    path, ids = unsafe
    base = "https://archive.example.org/podcasts"
    client = make_app(path, BASE_URL=base).test_client()
    root = ET.fromstring(client.get(f"/shows/{ids['show']}/feed.xml").data)
    urls = [root.findtext("channel/link"), root.find("channel/atom:link", NS).get("href")]
    for item in root.iter("item"):
        urls += [item.findtext("link")] + [e.get("url") for e in item.findall("podcast:transcript", NS)]
        urls += [p.get("href") for p in item.findall("podcast:person", NS)]
    local = feed_items(client, ids["show"])["Local audio episode"].find("enclosure").get("url")
    assert local == f"{base}/episodes/{ids['local']}/audio"
    assert all(url.startswith(base + "/") for url in urls + [local]), urls
    data = client.get(f"/api/episodes/{ids['bad']}", headers={"Host": "evil.example"}).get_json()
    assert data["url"] == f"{base}/episodes/{ids['bad']}" and data["api_url"] == f"{base}/api/episodes/{ids['bad']}"
    assert all(url.startswith(base) for url in data["transcript"]["exports"].values())
    assert data["chapters_url"].startswith(base)
    listing = client.get("/api/episodes?per_page=1").get_json()
    assert listing["next"].startswith(f"{base}/api/episodes?")
    page = client.get(f"/episodes/{ids['bad']}").get_data(as_text=True)
    assert f'<link rel="canonical" href="{base}/episodes/{ids["bad"]}">' in page
    assert "evil.example" not in json.dumps(data)
    assert "localhost" not in client.get(f"/api/shows/{ids['show']}").get_data(as_text=True)


def test_without_base_url_urls_follow_the_host_and_pages_have_no_canonical(client, unsafe):
    ids = unsafe[1]
    data = client.get(f"/api/episodes/{ids['bad']}", headers={"Host": "mirror.example"}).get_json()
    assert data["url"] == f"http://mirror.example/episodes/{ids['bad']}"
    assert 'rel="canonical"' not in client.get(f"/episodes/{ids['bad']}").get_data(as_text=True)


@pytest.mark.parametrize("base", ["javascript:alert(1)", "archive.example.org", "file:///srv/site", "https://x/?q=1"])
def test_base_url_must_be_an_http_url(unsafe, base):
    with pytest.raises(ValueError, match="BASE_URL"):
        make_app(unsafe[0], BASE_URL=base)


def test_trusted_hosts(unsafe):
    path, ids = unsafe
    client = make_app(path, TRUSTED_HOSTS=["archive.example.org"]).test_client()
    assert client.get("/api/shows", headers={"Host": "archive.example.org"}).status_code == 200
    assert client.get("/api/shows", headers={"Host": "evil.example"}).status_code == 400


@pytest.mark.parametrize("stored, sent", [
    ("audio/mpeg", "audio/mpeg"),
    ("Audio/MPEG; charset=binary", "audio/mpeg"),
    ("video/mp4", "video/mp4"),
    ("audio/x-m4a", "audio/x-m4a"),
    ("text/html", "application/octet-stream"),
    ("image/svg+xml", "application/octet-stream"),
    ("application/javascript", "application/octet-stream"),
    ("audio/", "application/octet-stream"),
    ("audio/mpeg/x", "application/octet-stream"),
    ("audio/mpeg\r\nX-Evil: 1", "application/octet-stream"),
    ("", "application/octet-stream"),
    (None, "application/octet-stream"),
])
def test_media_type(stored, sent):
    assert media_type(stored) == sent


@pytest.mark.parametrize("stored, sent", [("Audio/MPEG; charset=binary", "audio/mpeg"),
                                          ("text/html", "application/octet-stream")])
def test_audio_route_sends_a_safe_type_sandboxed(tmp_path, stored, sent):
    audio = tmp_path / "a.mp3"
    audio.write_bytes(AUDIO_BYTES)
    db = open_db(tmp_path / "archive.db")
    build = ArchiveBuilder(db)
    episode = build.episode(build.show("Show"), "e1", "E1", enclosure_url=f"file://{audio}")
    build.audio(episode, audio, f"file://{audio}", content_type=stored)
    db.conn.close()
    client = make_app(tmp_path / "archive.db").test_client()
    for headers, status in (({}, 200), ({"Range": "bytes=100-199"}, 206)):
        response = client.get(f"/episodes/{episode}/audio", headers=headers)
        assert response.status_code == status
        assert response.headers["Content-Type"] == sent
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response.data == AUDIO_BYTES[100:200]
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(AUDIO_BYTES)}"


def test_feed_etag_304_and_invalidation(tmp_path, monkeypatch):
    from archive.web import show_feeds

    db = open_db(tmp_path / "archive.db")
    build = ArchiveBuilder(db)
    show = build.show("Show")
    episode = build.episode(show, "e1", "First title", enclosure_url="https://cdn.example.com/1.mp3")
    db.conn.close()
    client = make_app(tmp_path / "archive.db").test_client()
    renders = []
    build_feed = show_feeds.build_feed
    monkeypatch.setattr(show_feeds, "build_feed", lambda *args: renders.append(1) or build_feed(*args))
    url = f"/shows/{show}/feed.xml"

    first = client.get(url)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag and b"First title" in first.data
    again = client.get(url)
    assert again.data == first.data and again.headers["ETag"] == etag and len(renders) == 1  # kept, not rendered
    unchanged = client.get(url, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.data == b"" and len(renders) == 1

    writer = connect(tmp_path / "archive.db")  # an ingest (or an editor) changes the episode
    with writer.conn:
        writer["episodes"].update(episode, {"title": "Second title", "updated_at": utcnow()})
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and b"Second title" in changed.data and changed.headers["ETag"] != etag
    assert len(renders) == 2

    with writer.conn:  # a change the feed does not show: rendered again, same body, so still 304
        writer["shows"].update(show, {"last_error": "timeout"})
    assert client.get(url, headers={"If-None-Match": changed.headers["ETag"]}).status_code == 304
    assert len(renders) == 3
    writer.conn.close()
    assert client.get("/shows/999/feed.xml").status_code == 404


def test_feeds_for_different_site_addresses_are_kept_apart(unsafe):
    path, ids = unsafe
    client = make_app(path).test_client()
    one = client.get(f"/shows/{ids['show']}/feed.xml", headers={"Host": "one.example"}).data
    two = client.get(f"/shows/{ids['show']}/feed.xml", headers={"Host": "two.example"}).data
    assert b"http://one.example/" in one and b"one.example" not in two and b"http://two.example/" in two


@pytest.mark.parametrize("value, kept", [
    ("https://example.com/a b", "https://example.com/a%20b"),
    ("  http://example.com/  ", "http://example.com/"),
    ("HTTPS://EXAMPLE.COM/x", "HTTPS://EXAMPLE.COM/x"),
    ("javascript:alert(1)", None), ("JaVaScRiPt:alert(1)", None), ("java\tscript:alert(1)", None),
    ("data:text/html,x", None), ("vbscript:x", None), ("file:///etc/passwd", None), ("/etc/passwd", None),
    ("//evil.example/x", None), ("https:/no-host", None), ("https://", None), ("https:\\\\evil.example", None),
    ("https://[::1", None), ("mailto:a@b.c", None), ("", None), (None, None),
])
def test_public_url(value, kept):
    assert public_url(value) == kept
