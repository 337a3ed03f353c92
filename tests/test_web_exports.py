"""Transcript and chapter files, and the re-published show feed (read back with feedparser and a raw XML pass)."""

import json
import xml.etree.ElementTree as ET
from urllib.parse import urlsplit

import feedparser
import pytest
import srt
import webvtt

from archive.db import open_db
from archive.records import Segment
from ingest.transcript_files import parse_transcript
from web_fixtures import DATACAST_LINES, HOSTILE_TITLE, ArchiveBuilder, app, client, ids, make_app, sample  # noqa: F401

NS = {"podcast": "https://podcastindex.org/namespace/1.0", "itunes": "http://www.itunes.com/dtds/podcast-1.0.dtd",
      "content": "http://purl.org/rss/1.0/modules/content/", "atom": "http://www.w3.org/2005/Atom"}


@pytest.mark.parametrize("fmt,mimetype", [("vtt", "text/vtt"), ("srt", "application/x-subrip"),
                                          ("json", "application/json"), ("txt", "text/plain")])
def test_transcript_exports_have_their_content_type_and_read_back(client, ids, fmt, mimetype):
    response = client.get(f"/episodes/{ids['ep70']}/transcript.{fmt}")
    assert response.status_code == 200 and response.mimetype == mimetype
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    if fmt == "txt":  # paragraphs for reading: one per speaker turn, with its time and speaker
        text = response.get_data(as_text=True)
        assert text.startswith("[00:00:00] James Le: Welcome to Datacast")
        assert "\n\n[00:00:14] Mohamed Elgendy: Thanks for having me." in text
        return
    segments = parse_transcript(response.data, fmt)
    assert [(s.start, s.end, s.text, s.speaker) for s in segments] == DATACAST_LINES


def test_vtt_and_srt_parse_with_their_own_libraries(client, ids):
    vtt = client.get(f"/episodes/{ids['dtc_ab']}/transcript.vtt").get_data(as_text=True)
    captions = webvtt.from_buffer(__import__("io").StringIO(vtt))
    srt_cues = list(srt.parse(client.get(f"/episodes/{ids['dtc_ab']}/transcript.srt").get_data(as_text=True)))
    api = client.get(f"/api/episodes/{ids['dtc_ab']}/transcript").get_json()["segments"]
    assert len(captions) == len(srt_cues) == len(api) > 100
    assert srt_cues[0].start.total_seconds() == api[0]["start"]


def test_hostile_transcript_text_is_escaped_in_vtt(client, ids):
    vtt = client.get(f"/episodes/{ids['hostile_ep']}/transcript.vtt").get_data(as_text=True)
    assert "&lt;script&gt;" in vtt and "<script>" not in vtt


def test_chapters_json_is_podcasting20(client, ids):
    response = client.get(f"/episodes/{ids['ep70']}/chapters.json")
    assert response.status_code == 200 and response.mimetype == "application/json+chapters"
    document = json.loads(response.data)
    assert document["version"] == "1.2.0" and document["podcastName"] == "Datacast"
    assert document["chapters"] == [
        {"startTime": 0.0, "title": "Introduction", "endTime": 14.0},
        {"startTime": 14.0, "title": "Testing ML systems", "endTime": 36.0, "url": "https://example.com/testing"},
        {"startTime": 36.0, "title": "Data drift"},
    ]
    starts = [c["startTime"] for c in json.loads(client.get(f"/episodes/{ids['dtc_ab']}/chapters.json").data)["chapters"]]
    assert starts == sorted(starts) and len(starts) == 20


@pytest.mark.parametrize("path", ["/episodes/{ep69}/transcript.vtt", "/episodes/{ep69}/chapters.json",
                                  "/episodes/999/transcript.srt", "/episodes/999/chapters.json"])
def test_exports_404_when_there_is_nothing(client, ids, path):
    assert client.get(path.format(**ids)).status_code == 404


def feed_of(client, show_id):
    response = client.get(f"/shows/{show_id}/feed.xml")
    assert response.status_code == 200 and response.mimetype == "application/rss+xml"
    return response.data


def local(client, url):
    """Fetch an absolute URL from the feed through the test client."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc == "localhost", url
    return client.get(parts.path + (f"?{parts.query}" if parts.query else ""))


def test_feed_reads_with_feedparser(client, ids):
    parsed = feedparser.parse(feed_of(client, ids["datacast"]))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.feed.title == "Datacast" and parsed.feed.link == f"http://localhost/shows/{ids['datacast']}"
    assert [e.id for e in parsed.entries] == ["datacast-070", "datacast-069", "datacast-bonus"]
    first = parsed.entries[0]
    assert first.title == "Machine Learning Testing with Mohamed Elgendy"
    assert first.link == f"http://localhost/episodes/{ids['ep70']}"
    assert first.enclosures[0].href == "https://cdn.example.com/datacast-070.mp3"
    assert first.itunes_duration == "702" and first.itunes_episode == "70" and first.itunes_season == "2"
    assert first.published_parsed[:3] == (2021, 6, 1)
    assert "<script" not in first.content[0].value and "Notes with" in first.content[0].value
    assert "podcast_transcript" in first  # feedparser keeps only the last one: the raw XML test reads all four


def test_feed_round_trips_transcripts_chapters_and_people(client, ids):
    root = ET.fromstring(feed_of(client, ids["datacast"]))
    assert root.tag == "rss" and root.get("version") == "2.0"
    channel = root.find("channel")
    assert channel.find("atom:link", NS).get("href") == f"http://localhost/shows/{ids['datacast']}/feed.xml"
    assert [(p.text, p.get("role")) for p in channel.findall("podcast:person", NS)] == [("James Le", "host")]
    items = {item.findtext("guid"): item for item in channel.findall("item")}
    ep70 = items["datacast-070"]
    transcripts = {t.get("type"): t for t in ep70.findall("podcast:transcript", NS)}
    assert set(transcripts) == {"text/vtt", "application/x-subrip", "application/json", "text/plain"}
    assert transcripts["text/vtt"].get("rel") == "captions" and transcripts["text/vtt"].get("language") == "en"
    for mime, element in transcripts.items():
        response = local(client, element.get("url"))
        assert response.status_code == 200 and response.mimetype == mime
    segments = parse_transcript(local(client, transcripts["application/json"].get("url")).data, "application/json")
    assert [(s.start, s.end, s.text, s.speaker) for s in segments] == DATACAST_LINES
    chapters = ep70.find("podcast:chapters", NS)
    assert chapters.get("type") == "application/json+chapters"
    titles = [c["title"] for c in json.loads(local(client, chapters.get("url")).data)["chapters"]]
    assert titles == ["Introduction", "Testing ML systems", "Data drift"]
    people = [(p.text, p.get("role"), p.get("href")) for p in ep70.findall("podcast:person", NS)]
    assert people == [("Mohamed Elgendy", "guest", "http://localhost/guests/mohamed-elgendy"),
                      ("James Le", "host", "http://localhost/guests/james-le")]
    assert ep70.find("enclosure").get("url") == "https://cdn.example.com/datacast-070.mp3"
    assert ep70.findtext("itunes:duration", namespaces=NS) == "702"
    older = items["datacast-069"]
    assert older.findall("podcast:transcript", NS) == [] and older.find("podcast:chapters", NS) is None
    assert items["datacast-bonus"].find("pubDate") is None


def test_hostile_titles_do_not_break_the_feed(client, ids):
    body = feed_of(client, ids["hostile_show"])
    root = ET.fromstring(body)  # raises on any control character or broken escaping
    item = root.find("channel/item")
    expected = HOSTILE_TITLE.replace("\x01", "").replace("\x0b", "")
    assert root.findtext("channel/title") == expected and item.findtext("title") == expected
    assert item.find("enclosure") is None  # a javascript: enclosure is never re-published
    assert [p.text for p in item.findall("podcast:person", NS)] == ['Eve "<b>" Hacker']
    parsed = feedparser.parse(body)
    assert not parsed.bozo and parsed.entries[0].title.startswith("Tom & Jerry")


def test_feed_of_a_show_with_odd_metadata(tmp_path):
    db = open_db(tmp_path / "odd.db")
    build = ArchiveBuilder(db)
    show = build.show("Odd \ufffe\uffff\x00 show", people="not json")
    episode = build.episode(show, "odd-1", None, published="not a date", duration=0.0)
    build.transcript(episode, [Segment(0.0, 1.0, "hi \x07 there")])
    db.conn.close()
    client = make_app(tmp_path / "odd.db").test_client()
    root = ET.fromstring(feed_of(client, show))
    item = root.find("channel/item")
    assert root.findtext("channel/title") == "Odd  show" and item.findtext("title") == "odd-1"
    assert item.find("pubDate") is None and item.find("itunes:duration", NS) is None
    assert client.get("/shows/999/feed.xml").status_code == 404


def test_text_export_is_paragraphs_of_whole_sentences(tmp_path):
    """Whisper's lines cut sentences anywhere; the text export's paragraphs never do (archive/transcript_reading.py)."""
    db = open_db(tmp_path / "archive.db")
    build = ArchiveBuilder(db)
    episode = build.episode(build.show("Datacast"), "dc-70", "Episode 70", published="2021-08-15T12:00:00+00:00")
    # 5 s lines, a sentence every 15 s, each sentence cut by two line ends
    lines = [Segment(i * 5.0, i * 5.0 + 5, ["We talked about", "testing models", "in production."][i % 3], "Ann")
             for i in range(36)]
    build.transcript(episode, lines, source="whisper", fmt="whisper")
    db.conn.commit()
    db.conn.close()
    text = make_app(tmp_path / "archive.db").test_client().get(f"/episodes/{episode}/transcript.txt").get_data(
        as_text=True)
    paragraphs = text.strip().split("\n\n")
    assert paragraphs[0] == "[00:00:00] Ann: " + " ".join(["We talked about testing models in production."] * 4)
    assert [p[:10] for p in paragraphs] == ["[00:00:00]", "[00:01:00]", "[00:02:00]"]
    for paragraph in paragraphs:
        body = paragraph[11:]
        assert body.removeprefix("Ann: ").startswith("We talked") and body.endswith("in production.")
