"""The studio library: drafts, validation, producer fields, revisions, publishing, and producer edits that a feed
read again (or the pipeline) leaves alone."""

import datetime as dt
import json
import shutil
from dataclasses import dataclass

import pytest

from archive import episode_indexing, queries, stages, studio
from archive.db import open_db
from archive.errors import NotEditableError, NotFoundError, ValidationError
from archive.studio import EpisodeFields, Takeaway
from conftest import ROOT
from fakes import FakeEmbedder
from ingest.pipeline import IngestOptions, Pipeline


@dataclass(frozen=True)
class Producer:  # what archive.producers.Producer gives the studio: it only reads id and name
    id: int
    name: str
    admin: bool = False


ANN, BOB = Producer(1, "Ann"), Producer(2, "Bob")


@pytest.fixture
def show(db):
    return studio.create_show(db, "Hosted Show", "A show made in podarchive.", language="en")


def draft(db, show_id, **fields):
    return studio.create_episode(db, show_id, EpisodeFields(**{"title": "A draft", **fields}), ANN)


# -- creating and reading --------------------------------------------------------------------------------------

def test_a_hosted_show_has_a_synthetic_feed_url_and_is_public_only_once_an_episode_is_out(db, show):
    row = db["shows"].get(show)
    assert row["hosted"] == 1 and row["feed_url"].startswith("podarchive:show/")
    assert queries.list_shows(db) == []
    with pytest.raises(NotFoundError):
        queries.get_show(db, show)
    episode = draft(db, show)
    assert queries.list_shows(db) == []
    studio.publish(db, episode, ANN)
    assert [s["id"] for s in queries.list_shows(db)] == [show]
    assert queries.get_show(db, show)["episode_count"] == 1


def test_create_episode_makes_a_draft_with_the_fields_given(db, show):
    episode = draft(db, show, episode_number="7", season=2, published=dt.date(2024, 5, 1),
                    guests=["Dr. Jane Roe", "jane roe", "Sam Poe"], audio_url=" https://cdn.example.com/a.mp3 ",
                    notes_markdown="Hello **world**", takeaways=[Takeaway("Point", "Said it.", 61.5)],
                    chapters=[{"title": "Later", "start": "1:00"}, {"title": "Intro", "start": 0}])
    got = studio.studio_episode(db, episode)
    assert got["state"] == "draft" and got["guid"].startswith("podarchive:") and got["hosted"]
    assert got["fields"] == {
        "title": "A draft", "episode_number": 7, "season": 2, "published": "2024-05-01T00:00:00+00:00",
        "guests": ["Jane Roe", "Sam Poe"], "audio_url": "https://cdn.example.com/a.mp3",
        "notes_markdown": "Hello **world**", "takeaways": [{"title": "Point", "text": "Said it.", "start": 61.5}],
        "chapters": [{"title": "Intro", "start": 0.0}, {"title": "Later", "start": 60.0}],
    }
    assert set(got["producer_fields"]) == set(studio.EDITABLE)
    assert got["notes_html"] == "<p>Hello <strong>world</strong></p>\n"
    row = db["episodes"].get(episode)
    assert row["notes_text"] == "Hello world" and row["enclosure_type"] == "audio/mpeg"
    assert [r["source"] for r in db.query("SELECT source FROM takeaways WHERE episode_id = ?", [episode])] == \
        ["producer"]
    chapters = list(db.query("SELECT title, start, end, source FROM chapters WHERE episode_id = ? ORDER BY idx",
                             [episode]))
    assert chapters == [{"title": "Intro", "start": 0.0, "end": 60.0, "source": "producer"},
                        {"title": "Later", "start": 60.0, "end": None, "source": "producer"}]
    assert got["last_change"]["action"] == "create" and got["last_change"]["producer_name"] == "Ann"


def test_fields_not_given_stay_for_the_pipeline(db, show):
    episode = draft(db, show)
    got = studio.studio_episode(db, episode)
    assert got["producer_fields"] == ["title"]
    assert got["sources"]["takeaways"] == "feed" and got["sources"]["title"] == "producer"


@pytest.mark.parametrize("changes, field", [
    ({"title": "  "}, "title"),
    ({"title": None}, "title"),
    ({"title": "x" * 301}, "title"),
    ({"notes_markdown": "é" * 100_001}, "notes_markdown"),
    ({"episode_number": 0}, "episode_number"),
    ({"episode_number": -3}, "episode_number"),
    ({"episode_number": "seven"}, "episode_number"),
    ({"season": 1.5}, "season"),
    ({"season": True}, "season"),
    ({"published": "yesterday"}, "published"),
    ({"audio_url": "javascript:alert(1)"}, "audio_url"),
    ({"audio_url": "file:///etc/passwd"}, "audio_url"),
    ({"audio_url": "/etc/passwd"}, "audio_url"),
    ({"audio_url": "../../etc/passwd"}, "audio_url"),
    ({"guests": "Jane Roe"}, "guests"),
    ({"guests": ["Jane", "!!!"]}, "guests[1]"),
    ({"takeaways": [{"title": "", "text": "t"}]}, "takeaways[0].title"),
    ({"takeaways": [{"title": "t", "text": "x" * 10_001}]}, "takeaways[0].text"),
    ({"takeaways": [{"title": "t", "text": "x", "start": -1}]}, "takeaways[0].start"),
    ({"chapters": [{"title": "c"}]}, "chapters[0].start"),
    ({"chapters": [{"title": "c", "start": "1:2:3:4"}]}, "chapters[0].start"),
    ({"chapters": [{"title": "c", "start": 0}] * 501}, "chapters"),
])
def test_bad_values_are_refused_with_the_field_named(db, show, changes, field):
    episode = draft(db, show)
    before = studio.studio_episode(db, episode)
    with pytest.raises(ValidationError) as caught:
        studio.update_episode(db, episode, changes, ANN)
    assert caught.value.field == field
    assert studio.studio_episode(db, episode) == before  # nothing written


def test_notes_over_200_kb_get_a_clear_message(db, show):
    with pytest.raises(ValidationError, match=r"notes_markdown: is 200,001 bytes; at most 200,000 \(200 KB\)"):
        studio.update_episode(db, draft(db, show), {"notes_markdown": "a" * 200_001}, ANN)


def test_fields_that_are_not_editable_are_refused(db, show):
    with pytest.raises(NotEditableError, match="guid"):
        studio.update_episode(db, draft(db, show), {"guid": "x", "title": "ok"}, ANN)


def test_unknown_episodes_and_shows_are_not_found(db, show):
    with pytest.raises(NotFoundError):
        studio.studio_episode(db, 999)
    with pytest.raises(NotFoundError):
        studio.update_episode(db, 999, {"title": "x"}, ANN)
    with pytest.raises(NotFoundError):
        studio.create_episode(db, 999, {"title": "x"}, ANN)


def test_an_uploaded_file_must_be_in_the_uploads_folder(db, show, tmp_path, monkeypatch):
    media = tmp_path / "media"
    (media / "uploads").mkdir(parents=True)
    upload = media / "uploads" / "ep.mp3"
    upload.write_bytes(b"ID3" + b"\0" * 100)
    monkeypatch.setenv("PODARCHIVE_MEDIA_DIR", str(media))
    episode = draft(db, show, audio_url="uploads/ep.mp3")
    audio = db["audio"].get(episode)
    assert audio["path"] == str(upload.resolve()) and audio["bytes"] == 103
    outside = tmp_path / "secret.mp3"
    outside.write_bytes(b"x")
    with pytest.raises(ValidationError, match="uploads folder"):
        studio.update_episode(db, episode, {"audio_url": str(outside)}, ANN)
    downloaded = media / "1" / "7.audio"  # the pipeline's copy of another show's audio
    downloaded.parent.mkdir()
    downloaded.write_bytes(b"ID3" + b"\0" * 100)
    with pytest.raises(ValidationError, match="uploads folder"):
        studio.update_episode(db, episode, {"audio_url": "1/7.audio"}, ANN)
    studio.update_episode(db, episode, {"audio_url": "https://cdn.example.com/new.mp3"}, ANN)
    assert db["audio"].count == 0  # the upload is no longer the episode's audio


# -- revisions ------------------------------------------------------------------------------------------------

def test_an_edit_changing_nothing_makes_no_revision(db, show):
    episode = draft(db, show, notes_markdown="Same")
    studio.update_episode(db, episode, {"title": "A draft", "notes_markdown": "Same"}, BOB)
    assert len(studio.history(db, episode)) == 1


def test_history_shows_who_changed_what_and_restore_brings_it_back(db, show):
    episode = draft(db, show, notes_markdown="First notes", takeaways=[{"title": "One", "text": "1"}])
    studio.update_episode(db, episode, {"title": "Better title", "notes_markdown": "Second notes"}, BOB)
    studio.update_episode(db, episode, {"takeaways": [{"title": "Two", "text": "2"}]}, ANN)
    revisions = studio.history(db, episode)
    assert [r["action"] for r in revisions] == ["edit", "edit", "create"]
    assert revisions[0]["diff"] == {"takeaways": {"before": [{"title": "One", "text": "1", "start": None}],
                                                  "after": [{"title": "Two", "text": "2", "start": None}]}}
    assert revisions[1]["producer_name"] == "Bob" and revisions[1]["diff"] == {
        "title": {"before": "A draft", "after": "Better title"},
        "notes_markdown": {"before": "First notes", "after": "Second notes"},
    }
    restored = studio.restore(db, episode, revisions[2]["revision_id"], ANN)
    assert restored["fields"]["title"] == "A draft" and restored["fields"]["notes_markdown"] == "First notes"
    assert restored["fields"]["takeaways"] == [{"title": "One", "text": "1", "start": None}]
    assert db["episodes"].get(episode)["notes_html"] == "<p>First notes</p>\n"
    latest = studio.history(db, episode)[0]
    assert latest["action"] == "restore" and latest["restored_from"] == revisions[2]["revision_id"]
    assert set(latest["changed"]) == {"title", "notes_markdown", "takeaways"}


def test_a_revision_of_another_episode_cannot_be_restored(db, show):
    one, two = draft(db, show), draft(db, show)
    revision = studio.history(db, two)[0]["revision_id"]
    with pytest.raises(NotFoundError):
        studio.restore(db, one, revision, ANN)


# -- publishing -----------------------------------------------------------------------------------------------

def test_publish_unpublish_and_schedule(db, show):
    episode = draft(db, show)
    with pytest.raises(NotFoundError):
        queries.get_episode(db, episode)
    result = studio.publish(db, episode, ANN)
    assert result["state"] == "published" and result["published"]  # dated when it had no date
    assert queries.get_episode(db, episode)["title"] == "A draft"
    assert studio.unpublish(db, episode, BOB)["state"] == "draft"
    with pytest.raises(NotFoundError):
        queries.get_episode(db, episode)
    at = dt.datetime(2999, 1, 1, 9, 30)
    result = studio.publish(db, episode, ANN, at=at)
    assert result == {**result, "state": "scheduled", "publish_at": "2999-01-01T09:30:00+00:00"}
    assert studio.publish_due(db, now="2998-12-31T00:00:00Z") == []
    assert studio.publish_due(db, now=dt.datetime(2999, 1, 1, 10, tzinfo=dt.timezone.utc)) == [episode]
    row = queries.get_episode(db, episode)
    assert row["state"] == "published" and row["publish_at"] is None
    actions = [(r["action"], r["producer_name"]) for r in studio.history(db, episode)]
    assert actions[:4] == [("publish", "schedule"), ("schedule", "Ann"), ("unpublish", "Bob"), ("publish", "Ann")]


def test_a_scheduled_episode_without_a_date_gets_its_publication_time(db, show):
    episode = draft(db, show)
    studio.publish(db, episode, ANN, at="2999-06-01T12:00:00+02:00")
    studio.publish_due(db, now="2999-06-02")
    assert queries.get_episode(db, episode)["published"] == "2999-06-01T10:00:00+00:00"


def test_publishing_at_a_past_time_publishes_now(db, show):
    episode = draft(db, show, published="2020-01-01")
    assert studio.publish(db, episode, ANN, at="2000-01-01")["state"] == "published"
    assert queries.get_episode(db, episode)["published"] == "2020-01-01T00:00:00+00:00"  # its own date stays


def test_unpublishing_a_scheduled_episode_cancels_it(db, show):
    episode = draft(db, show)
    studio.publish(db, episode, ANN, at="2999-01-01")
    studio.unpublish(db, episode, ANN)
    assert studio.publish_due(db, now="3000-01-01") == []


def test_list_puts_drafts_first_and_says_what_the_pipeline_is_doing(db, show):
    other = studio.create_show(db, "Other")
    published = draft(db, show, title="Out")
    studio.publish(db, published, ANN)
    scheduled = draft(db, show, title="Soon")
    studio.publish(db, scheduled, ANN, at="2999-01-01")
    plain, transcribing, failed = draft(db, show, title="Plain"), draft(db, show, title="Busy"), \
        draft(db, show, title="Broken")
    elsewhere = draft(db, other, title="Elsewhere")
    stages.mark_running(db, transcribing, "transcribe", "h")
    stages.mark_failed(db, failed, "audio", "HTTP 404")
    rows = studio.list_studio_episodes(db, [show])
    assert [r["id"] for r in rows] == [failed, transcribing, plain, scheduled, published]
    by_id = {r["id"]: r for r in rows}
    assert by_id[failed]["status"] == "failed" and by_id[failed]["errors"] == {"audio": "HTTP 404"}
    assert by_id[transcribing]["status"] == "transcribing" and by_id[transcribing]["state"] == "draft"
    assert by_id[plain]["status"] == "draft" and by_id[scheduled]["status"] == "scheduled"
    assert by_id[published]["status"] == "published"
    assert by_id[plain]["last_change"]["action"] == "create"
    assert elsewhere in {r["id"] for r in studio.list_studio_episodes(db)}
    assert elsewhere not in by_id


def test_publish_embeds_notes_and_passages_missing_a_vector_and_reports_the_search_work(db, show):
    from archive.fts_tables import ensure_fts

    ensure_fts(db)
    episode = draft(db, show, notes_markdown="Notes about zymurgy")
    db["passages"].insert_all([
        {"episode_id": episode, "idx": i, "start": i * 30.0, "end": i * 30.0 + 30, "text": text,
         "content_hash": f"hash-{i}"} for i, text in enumerate(["brewing beer at home", "yeast and sugar"])])
    without = studio.publish(db, episode, ANN)
    assert without["search"] == {"keyword": "fts5", "side_indexes": None, "passages": 2, "notes": 1,
                                 "vectors_added": 0, "vectors_missing": 3}  # two passages, the notes
    studio.unpublish(db, episode, ANN)
    embedder = FakeEmbedder()
    result = studio.publish(db, episode, ANN, embedder=embedder)
    assert result["search"]["vectors_added"] == 3 and result["search"]["vectors_missing"] == 0
    assert db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [embedder.name]).fetchone()[0] == 3
    assert result["seconds"] < 5


def test_editing_a_published_episode_embeds_its_new_notes_and_takeaways_a_drafts_waits(db, show):
    from archive import note_vectors

    embedder = FakeEmbedder()

    def embedded(episode):
        return episode_indexing._missing_vectors(db, embedder.name, note_vectors.documents(db, [episode])) == 0

    unpublished = draft(db, show, notes_markdown="First notes")
    studio.update_episode(db, unpublished, {"notes_markdown": "Other notes"}, ANN, embedder=embedder)
    assert not embedded(unpublished)  # embedded when it is published
    episode = draft(db, show, notes_markdown="First notes")
    studio.publish(db, episode, ANN, embedder=embedder)
    first = studio.history(db, episode)[-1]["revision_id"]
    changes = {"notes_markdown": "Notes about zymurgy", "takeaways": [{"title": "Yeast", "text": "Feed it."}]}
    studio.update_episode(db, episode, changes, ANN, embedder=embedder)
    assert embedded(episode) and len(note_vectors.documents(db, [episode])) == 2
    studio.restore(db, episode, first, ANN, embedder=embedder)
    assert embedded(episode) and note_vectors.documents(db, [episode])[0]["text"] == "A draft. First notes"


def test_publish_says_when_an_episode_with_audio_needs_a_transcript(db, show):
    episode = draft(db, show, audio_url="https://cdn.example.com/a.mp3")
    assert studio.publish(db, episode, ANN)["needs_transcript"] is True
    silent = draft(db, show)
    assert studio.publish(db, silent, ANN)["needs_transcript"] is False


# -- producer edits win over the feed ---------------------------------------------------------------------------

FEED = """<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:podcast="https://podcastindex.org/namespace/1.0">
  <channel>
    <title>Studio Test Show</title>
    <link>https://example.org/studio</link>
    <description>Two episodes.</description>
    <item>
      <title>{title_a}</title>
      <guid isPermaLink="false">studio-a</guid>
      <pubDate>Mon, 09 Mar 2026 09:00:00 +0000</pubDate>
      <content:encoded><![CDATA[{notes_a}]]></content:encoded>
      <podcast:transcript url="episode-a.vtt" type="text/vtt" language="en"/>
    </item>
    <item>
      <title>{title_b}</title>
      <guid isPermaLink="false">studio-b</guid>
      <pubDate>Mon, 16 Mar 2026 09:00:00 +0000</pubDate>
      <description>The second one.</description>
      <podcast:transcript url="episode-b.srt" type="application/x-subrip" language="en"/>
    </item>
  </channel>
</rss>
"""
NOTES_A = ("<p>Lena Brandt on search.</p><h3>Key Takeaways</h3><h3>On fusing rankings</h3>"
           "<p>Keep keyword search and fuse it with embeddings.</p><h3>On measuring</h3>"
           "<p>Measure with questions real listeners asked.</p>")


def ingest(db, folder, **feed):
    values = {"title_a": "Search That Understands Meaning", "notes_a": NOTES_A, "title_b": "ML on a Budget", **feed}
    (folder / "feed.xml").write_text(FEED.format(**values))
    pipeline = Pipeline(db, IngestOptions(media_dir=folder / "media"), embedder=FakeEmbedder())
    report = pipeline.run([str(folder / "feed.xml")])
    assert report.ok, report.failures
    return {row["guid"]: row["id"] for row in db.query("SELECT id, guid FROM episodes")}


@pytest.fixture
def fed(tmp_path):
    folder = tmp_path / "feed"
    folder.mkdir()
    shutil.copy(ROOT / "demo" / "episode-2.vtt", folder / "episode-a.vtt")
    shutil.copy(ROOT / "demo" / "episode-3.srt", folder / "episode-b.srt")
    db = open_db(tmp_path / "fed.db")
    return db, folder, ingest(db, folder)


def test_a_feed_read_again_keeps_what_the_producer_changed_and_updates_the_rest(fed):
    db, folder, ids = fed
    a, b = ids["studio-a"], ids["studio-b"]
    feed_takeaways = studio.studio_episode(db, a)["fields"]["takeaways"]
    assert [t["title"] for t in feed_takeaways] == ["On fusing rankings", "On measuring"]
    assert {r["source"] for r in db.query("SELECT source FROM takeaways WHERE episode_id = ?", [a])} == {"notes"}
    edited = [dict(feed_takeaways[0], text="Fuse the two rankings; never pick one."), feed_takeaways[1]]
    studio.update_episode(db, a, {"notes_markdown": "The **producer's** notes.", "takeaways": edited}, ANN)
    assert [r["source"] for r in db.query("SELECT source FROM takeaways WHERE episode_id = ? ORDER BY idx", [a])] \
        == ["producer", "notes"]

    ingest(db, folder, title_a="Search That Understands Meaning (updated)", title_b="ML on a Shoestring",
           notes_a="<p>New feed notes.</p><h3>Key Takeaways</h3><h3>Something else</h3><p>Other.</p>")
    row_a, row_b = db["episodes"].get(a), db["episodes"].get(b)
    assert row_b["title"] == "ML on a Shoestring"
    assert row_a["title"] == "Search That Understands Meaning (updated)"  # not a field the producer set
    assert row_a["notes_markdown"] == "The **producer's** notes."
    assert row_a["notes_html"] == "<p>The <strong>producer's</strong> notes.</p>\n"
    assert "New feed notes" not in (row_a["notes_text"] or "")
    assert studio.studio_episode(db, a)["fields"]["takeaways"] == edited

    from ingest.index_run import understand_episode
    from ingest.understand import UnderstandOptions

    understand_episode(db, a, FakeEmbedder(), options=UnderstandOptions(force=True))  # every stage again
    assert studio.studio_episode(db, a)["fields"]["takeaways"] == edited


def test_the_pipeline_leaves_producer_chapters_and_guests_alone(fed):
    db, _, ids = fed
    b = ids["studio-b"]
    chapters = [{"title": "Cheaper training", "start": 0.0}, {"title": "Smaller models", "start": 20.0}]
    studio.update_episode(db, b, {"chapters": chapters, "guests": ["Tomas Reyes", "Ana Lima"]}, ANN)
    from ingest.index_run import understand_episode
    from ingest.understand import UnderstandOptions

    understand_episode(db, b, FakeEmbedder(), options=UnderstandOptions(force=True))
    got = studio.studio_episode(db, b)["fields"]
    assert got["chapters"] == chapters and got["guests"] == ["Ana Lima", "Tomas Reyes"]
    roles = {(r["name"], r["role"], r["source"]) for r in db.query(
        "SELECT people.name, role, source FROM episode_people JOIN people ON people.id = person_id "
        "WHERE episode_id = ?", [b])}
    assert ("Ana Lima", "guest", "producer") in roles


def test_restoring_the_feed_version_hands_the_fields_back_to_the_feed(fed):
    db, folder, ids = fed
    a = ids["studio-a"]
    original = db["episodes"].get(a)
    studio.update_episode(db, a, {"title": "Producer title", "notes_markdown": "Mine."}, ANN)
    baseline = studio.history(db, a)[-1]
    assert baseline["action"] == "feed" and baseline["producer_id"] is None
    restored = studio.restore(db, a, baseline["revision_id"], ANN)
    assert restored["producer_fields"] == []
    row = db["episodes"].get(a)
    assert (row["title"], row["notes_html"], row["notes_markdown"]) == \
        (original["title"], original["notes_html"], None)
    ingest(db, folder, title_a="Feed title again")
    assert db["episodes"].get(a)["title"] == "Feed title again"


def test_producer_fields_map_to_the_columns_a_feed_leaves_alone():
    assert studio.feed_kept_columns(["notes_markdown", "audio_url", "guests"]) == {
        "notes_markdown", "notes_html", "notes_text", "enclosure_url", "enclosure_type", "enclosure_length"}
    assert studio.parse_producer_fields(json.dumps(["title", "bogus"])) == ["title"]
    assert studio.parse_producer_fields("not json") == []
