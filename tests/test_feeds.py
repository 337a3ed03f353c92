"""The feeds stage: sources, fetch (local files and HTTP with conditional GET), parse, save."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import sqlite3
import threading
from pathlib import Path

import pytest
from conftest import SHARED

from archive.errors import FeedError, FeedFetchError, FeedParseError, SourceError
from ingest import http as pod_http
from ingest.feed_fetch import FetchedFeed, fetch_feed
from ingest.feed_parse import parse_feed
from ingest.feed_store import feed_state, record_feed_error, save_feed
from ingest.feed_values import html_to_text, parse_duration
from ingest.opml import expand_sources
from ingest.sources import canonical_feed_url

BASE = "http://example.org/shows/feed.xml"


@pytest.fixture
def client():
    with pod_http.make_client() as c:
        yield c


def rss(items: str, channel_extra: str = "") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd"
     xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:podcast="https://podcastindex.org/namespace/1.0">
<channel><title>Test Show</title><link>https://example.org/</link>{channel_extra}
{items}
</channel></rss>""".encode("utf-8")


def item(title: str, guid: str | None = None, extra: str = "") -> str:
    guid_xml = f"<guid isPermaLink=\"false\">{guid}</guid>" if guid else ""
    return f"<item><title>{title}</title>{guid_xml}{extra}</item>"


# --- value parsers -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "seconds"), [
    ("3723", 3723.0),
    ("1234.5", 1234.5),
    (" 90 ", 90.0),
    ("1:02:03", 3723.0),
    ("01:02:03", 3723.0),
    ("1:02:03.5", 3723.5),
    ("62:03", 3723.0),
    ("00:20:00", 1200.0),
    ("25:3:30", 90210.0),
    ("PT1H2M3S", 3723.0),
    ("PT45M", 2700.0),
    ("pt1h3m37.5s", 3817.5),
    ("", None),
    (None, None),
    ("junk", None),
    ("1:xx:03", None),
    ("1:2:3:4", None),
    ("-5", None),
    ("nan", None),
    ("inf", None),
    ("PT", None),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


def test_html_to_text_keeps_paragraphs_and_decodes_entities():
    html = ("<h3>Key&nbsp;Takeaways</h3><p>Amazon&#x27;s <b>think</b>\n tank &amp; more</p>"
            "<script>alert(1)</script><ul><li>one</li><li>two<br>lines</li></ul>")
    # A non-breaking space becomes a plain one: notes_text is for search.
    assert html_to_text(html) == "Key Takeaways\n\nAmazon's think tank & more\n\none\ntwo\nlines"


def test_html_to_text_leaves_plain_text_lines():
    assert html_to_text("First line\nSecond   line\n\n\n\nLast") == "First line\nSecond line\n\nLast"


# --- parse -------------------------------------------------------------------------------------------------------


def test_guid_fallbacks():
    feed = rss(
        item("Has guid", "g-1", '<enclosure url="a.mp3" type="audio/mpeg"/>')
        + item("Enclosure only", extra='<enclosure url="media/b.mp3" type="audio/mpeg"/>')
        + item("Title and date", extra="<pubDate>Mon, 06 Jul 2020 04:00:00 GMT</pubDate>")
        + item("Title and date", extra="<pubDate>Tue, 07 Jul 2020 04:00:00 GMT</pubDate>")
    )
    parsed = parse_feed(feed, BASE)
    guids = [episode.guid for episode in parsed.episodes]
    assert guids[:2] == ["g-1", "http://example.org/shows/media/b.mp3"]
    assert guids[2].startswith("sha256:") and guids[3].startswith("sha256:") and guids[2] != guids[3]
    assert [e.guid for e in parse_feed(feed, BASE).episodes] == guids  # stable across parses
    assert parsed.item_errors == []


def test_item_with_nothing_to_identify_it_is_skipped_and_the_rest_kept():
    feed = rss(item("First", "g-1") + "<item><description>no title, guid or audio</description></item>"
               + item("Third", "g-3"))
    parsed = parse_feed(feed, BASE)
    assert [e.title for e in parsed.episodes] == ["First", "Third"]
    assert len(parsed.item_errors) == 1 and "item 2" in parsed.item_errors[0]


def test_duplicate_guids_keep_the_first():
    feed = rss(item("Original", "same") + item("Copy", "same") + item("Other", "other"))
    parsed = parse_feed(feed, BASE)
    assert [e.title for e in parsed.episodes] == ["Original", "Other"]
    assert len(parsed.item_errors) == 1 and "duplicate guid 'same'" in parsed.item_errors[0]


def test_relative_urls_resolve_against_the_feed_url():
    feed = rss(item("Ep", "g", """
        <link>episodes/1</link>
        <enclosure url="audio/1.mp3" type="audio/mpeg" length="123"/>
        <itunes:image href="../art/1.jpg"/>
        <podcast:transcript url="t/1.vtt" type="text/vtt"/>
        <podcast:chapters url="/chapters/1.json" type="application/json+chapters"/>
        <podcast:person role="Guest" img="img/jane.png">Jane Doe</podcast:person>
    """), channel_extra='<itunes:image href="cover.jpg"/>')
    parsed = parse_feed(feed, BASE)
    (episode,) = parsed.episodes
    assert episode.link == "http://example.org/shows/episodes/1"
    assert episode.enclosure_url == "http://example.org/shows/audio/1.mp3"
    assert episode.enclosure_length == 123
    assert episode.image == "http://example.org/art/1.jpg"
    assert episode.transcripts[0].url == "http://example.org/shows/t/1.vtt"
    assert episode.chapters_url == "http://example.org/chapters/1.json"
    assert episode.people[0].img == "http://example.org/shows/img/jane.png"
    assert episode.people[0].role == "guest"
    assert parsed.show.image == "http://example.org/shows/cover.jpg"


def test_itunes_numbers_and_types():
    feed = rss(
        item("Good", "a", "<itunes:episode>12</itunes:episode><itunes:season>2</itunes:season>"
                          "<itunes:episodeType>Bonus</itunes:episodeType><itunes:duration>1:00</itunes:duration>")
        + item("Bad", "b", "<itunes:episode>twelve</itunes:episode><itunes:season>-1</itunes:season>"
                           "<itunes:episodeType>russkie_vpered</itunes:episodeType>"
                           "<itunes:duration>about an hour</itunes:duration><enclosure url='x.mp3' length='0'/>")
    )
    good, bad = parse_feed(feed, BASE).episodes
    assert (good.episode_number, good.season, good.episode_type, good.duration) == (12, 2, "bonus", 60.0)
    assert (bad.episode_number, bad.season, bad.episode_type, bad.duration) == (None, None, None, None)
    assert bad.enclosure_length is None


def test_dates_are_iso_utc():
    feed = rss(item("Ep", "g", "<pubDate>Sun, 15 Aug 2021 14:00:00 +0200</pubDate>"))
    assert parse_feed(feed, BASE).episodes[0].published == "2021-08-15T12:00:00+00:00"


def test_notes_prefer_content_encoded():
    feed = rss(item("Ep", "g", "<description>Short</description>"
                               "<content:encoded><![CDATA[<p>Long &amp; <i>rich</i></p><p>Two</p>]]></content:encoded>"))
    (episode,) = parse_feed(feed, BASE).episodes
    assert episode.description == "Short"
    assert episode.notes_html == "<p>Long &amp; <i>rich</i></p><p>Two</p>"
    assert episode.notes_text == "Long & rich\n\nTwo"


@pytest.mark.parametrize("content", [
    b"",
    b"\x00\x01\x02garbage\xff\xfe" * 50,
    b"<!DOCTYPE html><html><head><title>Not a feed</title></head><body><p>Hello</p></body></html>",
    b'{"title": "json, not a feed"}',
])
def test_not_a_feed_raises_feed_parse_error(content):
    with pytest.raises(FeedParseError):
        parse_feed(content, BASE)


def test_empty_valid_feed_has_no_episodes():
    parsed = parse_feed(rss(""), BASE)
    assert parsed.episodes == [] and parsed.show.title == "Test Show"


# --- Podcasting 2.0 ----------------------------------------------------------------------------------------------


def transcripts_by_guid(content: bytes) -> dict[str, list[str]]:
    return {e.guid: [t.url for t in e.transcripts] for e in parse_feed(content, "http://x/").episodes}


TWO_TRANSCRIPTS = '<podcast:transcript url="2a.vtt"/><podcast:transcript url="2b.srt"/>'


def test_raw_pass_recovers_an_unclosed_item():
    # libxml2's recovery nests item 2 inside item 1; both are still read, each with its own transcripts.
    feed = rss('<item><title>One</title><guid>1</guid><podcast:transcript url="1.vtt"/>'
               + item("Two", "2", TWO_TRANSCRIPTS))
    assert transcripts_by_guid(feed) == {"1": ["http://x/1.vtt"], "2": ["http://x/2a.vtt", "http://x/2b.srt"]}


def test_raw_pass_matches_items_by_guid_when_counts_differ():
    # An unescaped <item> inside a description is an item to lxml but text to feedparser: pairing by position
    # would give item 2 the wrong Podcasting 2.0 elements.
    feed = rss(item("One", "1", '<description>see <item>this</item></description><podcast:transcript url="1.vtt"/>')
               + item("Two", "2", TWO_TRANSCRIPTS))
    assert transcripts_by_guid(feed) == {"1": ["http://x/1.vtt"], "2": ["http://x/2a.vtt", "http://x/2b.srt"]}


def test_plain_guids_are_not_turned_into_urls():
    # feedparser resolves a guid without isPermaLink="false" against the feed's URL when told that URL.
    feed = rss("<item><title>One</title><guid>episode-1</guid></item>")
    assert parse_feed(feed, BASE).episodes[0].guid == "episode-1"


def test_podcast_namespace_example_keeps_everything(db):
    path = SHARED / "feeds" / "podcasting20" / "podcast-namespace_example.xml"
    content = path.read_bytes()
    parsed = parse_feed(content, path.as_uri())
    first = parsed.episodes[0]
    assert [(t.url, t.type, t.language, t.rel) for t in first.transcripts] == [
        ("https://example.com/ep3/transcript.txt", "text/plain", None, None),
        ("https://example.com/episode1/transcript.vtt", "text/vtt", "es", "captions"),
    ]
    assert (first.chapters_url, first.chapters_type) == ("https://example.com/ep3_chapters.json", "application/json")
    assert [(p.name, p.role, p.group) for p in first.people] == [
        ("Adam Curry", "host", "cast"), ("Dave Jones", "guest", "cast"),
        ("Becky Smith", "cover art designer", "visuals")]
    assert [(s.start, s.duration) for s in first.soundbites] == [(33.833, 60.0)]
    assert parsed.show.podcast_guid == "y0ur-gu1d-g035-h3r3"

    saved = save_feed(db, FetchedFeed(url=path.as_uri(), content=content), parsed)
    episode_id = saved.new[0]
    assert db["feed_transcripts"].count_where("episode_id = ?", [episode_id]) == 2
    assert {r["name"] for r in db["feed_people"].rows_where("episode_id = ?", [episode_id])} == {
        "Adam Curry", "Dave Jones", "Becky Smith"}
    assert db["soundbites"].count_where("episode_id = ?", [episode_id]) == 1


def test_themnshow_multiple_transcripts_and_soundbite_text():
    path = SHARED / "feeds" / "real_world" / "themnshow.xml"
    episodes = parse_feed(path.read_bytes(), path.as_uri()).episodes
    multi = [e for e in episodes if len(e.transcripts) > 1]
    assert len(multi) == 2
    assert all(len({t.url for t in e.transcripts}) == len(e.transcripts) for e in multi)
    titles = {s.title for e in episodes for s in e.soundbites}
    assert "Mike triggers Tim by saying Advertising" in titles
    assert all(s.start >= 0 for e in episodes for s in e.soundbites)


def test_older_namespace_uri_is_read():
    # pc20rss.xml declares the namespace with its old GitHub URI.
    path = SHARED / "feeds" / "podcasting20" / "pc20rss.xml"
    assert b"github.com/Podcastindex-org/podcast-namespace" in path.read_bytes()
    episodes = parse_feed(path.read_bytes(), path.as_uri()).episodes
    assert sum(bool(e.transcripts) for e in episodes) >= 40
    assert any(p.name == "Adam Curry" and p.role == "host" for e in episodes for p in e.people)


# --- Datacast and the corpora, over HTTP ---------------------------------------------------------------------------


def test_datacast_over_http(serve, client, db):
    base = serve(SHARED / "datacast")
    fetched = fetch_feed(f"{base}/feed.xml", client)
    parsed = parse_feed(fetched.content, fetched.base)
    (episode,) = parsed.episodes
    assert episode.enclosure_url == f"{base}/episode-070.mp3"
    assert ("Mohamed Elgendy", "guest") in [(p.name, p.role) for p in episode.people]
    assert "Key Takeaways" in episode.notes_html and "Key Takeaways" in episode.notes_text
    assert "<h3>" not in episode.notes_text
    assert episode.episode_number == 70 and episode.duration == 702.0

    saved = save_feed(db, fetched, parsed)
    show = db["shows"].get(saved.show_id)
    assert show["feed_url"] == f"{base}/feed.xml" and show["title"] == "Datacast"
    assert [p["name"] for p in json.loads(show["people"])] == ["James Le"]
    guest = db["feed_people"].rows_where("role = 'guest'")
    assert [row["name"] for row in guest] == ["Mohamed Elgendy"]


@functools.cache
def corpus_feed(name: str, base_url: str):
    return parse_feed((SHARED / "corpus" / name / "feed.xml").read_bytes(), base_url)


def test_datatalksclub_corpus_feed(db):
    base = "http://127.0.0.1:1/datatalksclub_podcast/feed.xml"
    parsed = corpus_feed("datatalksclub_podcast", base)
    assert len(parsed.episodes) == 200 and parsed.item_errors == []
    assert sum(bool(e.transcripts) for e in parsed.episodes) == 198
    assert sum(bool(e.chapters_url) for e in parsed.episodes) == 185
    first = parsed.episodes[0]
    assert first.guid == "dtc-ab-testing-and-product-experimentation"
    assert first.duration == 3817.0 and (first.season, first.episode_number) == (7, 6)
    assert first.transcripts[0].url == (
        "http://127.0.0.1:1/datatalksclub_podcast/transcripts/ab-testing-and-product-experimentation.json")
    assert first.transcripts[0].type == "application/json"
    assert first.chapters_type == "application/json+chapters"
    saved = save_feed(db, FetchedFeed(url=base, content=b"dtc"), parsed)
    assert len(saved.new) == 200 and db["feed_transcripts"].count == 198


def test_twiml_corpus_feed_percent_encoded_transcripts_are_fetchable(serve, client):
    base = serve(SHARED / "corpus")
    parsed = corpus_feed("twiml_whisper_transcripts", f"{base}/twiml_whisper_transcripts/feed.xml")
    assert len(parsed.episodes) == 537
    assert all(e.published is None for e in parsed.episodes)
    assert all(len(e.transcripts) == 1 and e.transcripts[0].type == "text/vtt" for e in parsed.episodes)
    encoded = [e.transcripts[0].url for e in parsed.episodes if "%EF%80%BA" in e.transcripts[0].url]
    assert encoded, "the feed percent-encodes non-ASCII file names"
    response = pod_http.fetch_bytes(client, encoded[0], max_bytes=10_000_000)
    assert response.status_code == 200 and response.content.startswith(b"WEBVTT")


# --- fetch -------------------------------------------------------------------------------------------------------


def test_fetch_local_file_gives_file_uri(tmp_path, client, monkeypatch):
    (tmp_path / "feed.xml").write_bytes(rss(item("Ep", "g")))
    monkeypatch.chdir(tmp_path)
    fetched = fetch_feed("feed.xml", client)
    assert fetched.url == (tmp_path / "feed.xml").resolve().as_uri()
    assert fetched.content.startswith(b"<?xml") and not fetched.not_modified
    assert fetch_feed(fetched.url, client).content == fetched.content


def test_fetch_missing_local_file_is_a_fetch_error(tmp_path, client):
    with pytest.raises(FeedFetchError):
        fetch_feed(str(tmp_path / "gone.xml"), client)


def test_http_404_is_a_fetch_error(serve, client, tmp_path):
    base = serve(tmp_path)
    with pytest.raises(FeedFetchError) as caught:
        fetch_feed(f"{base}/missing.xml", client)
    assert caught.value.status == 404


def test_network_error_is_a_fetch_error(client):
    closed = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    port = closed.server_address[1]
    closed.server_close()
    with pytest.raises(FeedFetchError) as caught:
        fetch_feed(f"http://127.0.0.1:{port}/feed.xml", client, http_options=pod_http.HttpOptions(attempts=1))
    assert caught.value.status is None


class ConditionalFeedHandler(http.server.BaseHTTPRequestHandler):
    """Serves server.feed at /feed.xml, honouring If-None-Match (when server.use_etag) or If-Modified-Since."""

    def do_GET(self):
        server = self.server
        server.requests.append(dict(self.headers))
        if self.path != "/feed.xml":
            self.send_error(404)
            return
        etag = '"' + hashlib.sha256(server.feed).hexdigest()[:16] + '"'
        if server.use_etag and self.headers.get("If-None-Match") == etag:
            return self._not_modified()
        if not server.use_etag and self.headers.get("If-Modified-Since") == server.last_modified:
            return self._not_modified()
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(server.feed)))
        if server.use_etag:
            self.send_header("ETag", etag)
        self.send_header("Last-Modified", server.last_modified)
        self.end_headers()
        self.wfile.write(server.feed)

    def _not_modified(self):
        self.send_response(304)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def feed_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ConditionalFeedHandler)
    server.feed = rss(item("One", "g-1") + item("Two", "g-2") + item("Three", "g-3"))
    server.use_etag = True
    server.last_modified = "Mon, 06 Jul 2020 04:00:00 GMT"
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}/feed.xml"
    yield server
    server.shutdown()
    server.server_close()


def fetch_and_save(db, server, client) -> tuple[FetchedFeed, object]:
    etag, last_modified, _ = feed_state(db, server.url) or (None, None, None)
    fetched = fetch_feed(server.url, client, etag=etag, last_modified=last_modified)
    parsed = None if fetched.not_modified else parse_feed(fetched.content, fetched.base)
    return fetched, save_feed(db, fetched, parsed)


def dump(db) -> list[str]:
    return list(db.conn.iterdump())


@pytest.mark.parametrize("use_etag", [True, False], ids=["etag", "last-modified"])
def test_conditional_get_not_modified_writes_nothing(db, client, feed_server, use_etag):
    feed_server.use_etag = use_etag
    fetched, first = fetch_and_save(db, feed_server, client)
    assert len(first.new) == 3 and not fetched.not_modified
    assert feed_state(db, feed_server.url)[0] == (fetched.etag if use_etag else None)
    before = dump(db)

    fetched, second = fetch_and_save(db, feed_server, client)
    assert fetched.not_modified and fetched.content is None
    header = "If-None-Match" if use_etag else "If-Modified-Since"
    assert header in feed_server.requests[-1]
    assert (second.new, second.changed, sorted(second.unchanged)) == ([], [], sorted(first.new))
    assert dump(db) == before


def test_changed_episode_is_detected(db, client, feed_server):
    _, first = fetch_and_save(db, feed_server, client)
    ids = dict(zip(["g-1", "g-2", "g-3"], first.new))
    feed_server.feed = rss(item("One", "g-1") + item("Two, retitled", "g-2") + item("Three", "g-3")
                           + item("Four", "g-4"))

    fetched, second = fetch_and_save(db, feed_server, client)
    assert not fetched.not_modified
    assert second.changed == [ids["g-2"]]
    assert sorted(second.unchanged) == sorted([ids["g-1"], ids["g-3"]])
    assert len(second.new) == 1
    assert db["episodes"].get(ids["g-2"])["title"] == "Two, retitled"


def test_byte_identical_content_reports_all_unchanged(db):
    content = rss(item("One", "g-1") + item("Two", "g-2"))
    fetched = FetchedFeed(url=BASE, content=content)
    first = save_feed(db, fetched, parse_feed(content, BASE))
    episodes_before = list(db["episodes"].rows)
    second = save_feed(db, fetched, parse_feed(content, BASE))
    assert (second.new, second.changed, second.unchanged) == ([], [], first.new)
    assert list(db["episodes"].rows) == episodes_before


def test_changed_item_replaces_its_feed_rows(db):
    def feed(transcript: str) -> bytes:
        return rss(item("Ep", "g", f'<podcast:transcript url="{transcript}" type="text/vtt"/>'
                                   '<podcast:person role="guest">Ada</podcast:person>'))

    first = save_feed(db, FetchedFeed(url=BASE, content=feed("a.vtt")), parse_feed(feed("a.vtt"), BASE))
    second = save_feed(db, FetchedFeed(url=BASE, content=feed("b.vtt")), parse_feed(feed("b.vtt"), BASE))
    assert second.changed == first.new
    assert [r["url"] for r in db["feed_transcripts"].rows] == ["http://example.org/shows/b.vtt"]
    assert db["feed_people"].count == 1


def test_save_is_one_transaction(db):
    parsed = parse_feed(rss(item("One", "g-1") + item("Two", "g-2")), BASE)
    parsed.episodes[1].guid = None  # violates NOT NULL half-way through the save
    with pytest.raises(sqlite3.IntegrityError):
        save_feed(db, FetchedFeed(url=BASE, content=b"feed"), parsed)
    assert db["shows"].count == 0 and db["episodes"].count == 0


def test_episodes_missing_from_a_new_feed_version_stay(db):
    both = rss(item("One", "g-1") + item("Two", "g-2"))
    save_feed(db, FetchedFeed(url=BASE, content=both), parse_feed(both, BASE))
    one = rss(item("One", "g-1"))
    saved = save_feed(db, FetchedFeed(url=BASE, content=one), parse_feed(one, BASE))
    assert len(saved.unchanged) == 1 and db["episodes"].count == 2


def test_feed_errors_are_recorded_and_cleared(db):
    show_id = record_feed_error(db, BASE, "HTTP 500")
    row = db["shows"].get(show_id)
    assert (row["feed_url"], row["last_error"]) == (BASE, "HTTP 500") and row["last_error_at"]
    assert feed_state(db, BASE) == (None, None, None)
    assert record_feed_error(db, BASE, "HTTP 502") == show_id

    content = rss(item("One", "g-1"))
    saved = save_feed(db, FetchedFeed(url=BASE, content=content, etag='"v1"'), parse_feed(content, BASE))
    assert saved.show_id == show_id
    row = db["shows"].get(show_id)
    assert row["last_error"] is None and row["title"] == "Test Show"
    assert feed_state(db, BASE) == ('"v1"', None, hashlib.sha256(content).hexdigest())


def test_local_sources_share_one_key(db, tmp_path, monkeypatch, client):
    monkeypatch.chdir(tmp_path)
    Path("feed.xml").write_bytes(b"<html>not yet a feed</html>")
    show_id = record_feed_error(db, "feed.xml", "not a feed")
    assert db["shows"].get(show_id)["feed_url"] == canonical_feed_url("feed.xml") == (
        (tmp_path / "feed.xml").resolve().as_uri())
    assert canonical_feed_url("https://example.org/a.xml") == "https://example.org/a.xml"

    Path("feed.xml").write_bytes(rss(item("One", "g-1")))
    fetched = fetch_feed("./feed.xml", client)
    saved = save_feed(db, fetched, parse_feed(fetched.content, fetched.base))
    assert saved.show_id == show_id and db["shows"].count == 1
    assert feed_state(db, "feed.xml") == feed_state(db, fetched.url) is not None


def test_not_modified_for_an_unknown_feed_is_an_error(db):
    with pytest.raises(FeedError):
        save_feed(db, FetchedFeed(url=BASE, content=None, not_modified=True), None)


# --- sources -----------------------------------------------------------------------------------------------------


OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>My podcasts</title></head><body>
  <outline text="Data">
    <outline text="Datacast" type="rss" xmlUrl="https://example.org/datacast.xml"/>
    <outline text="Nested">
      <outline text="Local" type="rss" xmlUrl="feeds/local.xml"/>
    </outline>
  </outline>
  <outline text="Again" type="rss" xmlURL="https://example.org/datacast.xml"/>
  <outline text="Just a heading"/>
</body></opml>"""


def test_expand_sources_reads_nested_opml(tmp_path, client):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "local.xml").write_bytes(rss(item("Ep", "g")))
    (tmp_path / "subs.opml").write_text(OPML)
    plain_feed = tmp_path / "feeds" / "local.xml"
    sources = expand_sources(["https://example.org/other.xml", str(tmp_path / "subs.opml"), str(plain_feed)],
                             client)
    assert [source.url for source in sources] == ["https://example.org/other.xml", "https://example.org/datacast.xml", str(plain_feed)]


def test_expand_sources_fetches_opml_urls(tmp_path, serve, client):
    (tmp_path / "subs.opml").write_text(OPML)
    base = serve(tmp_path)
    assert [source.url for source in expand_sources([f"{base}/subs.opml"], client)] == [
        "https://example.org/datacast.xml", f"{base}/feeds/local.xml"]


@pytest.mark.parametrize("make", [
    lambda tmp: str(tmp / "does-not-exist.xml"),
    lambda tmp: str(tmp),  # a folder
])
def test_expand_sources_rejects_bad_paths(tmp_path, client, make):
    with pytest.raises(SourceError):
        expand_sources([make(tmp_path)], client)


def test_truncated_opml_is_recovered(tmp_path, client):
    (tmp_path / "cut.opml").write_text("<opml><body><outline xmlUrl='feed.xml'")
    assert [s.url for s in expand_sources([str(tmp_path / "cut.opml")], client)] == [str(tmp_path / "feed.xml")]


def test_opml_file_that_is_not_opml_is_a_source_error(tmp_path, client):
    (tmp_path / "notes.opml").write_bytes(b"\x00\x01 not xml at all")
    with pytest.raises(SourceError):
        expand_sources([str(tmp_path / "notes.opml")], client)
