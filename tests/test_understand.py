import re

import pytest
from conftest import SHARED

from archive import stages
from archive.errors import NotFoundError, StageError
from archive.passages import split_sentences
from archive.records import Segment, TranscriptSource
from archive.transcript_store import save_transcript
from fakes import FakeEmbedder
from ingest import understand
from ingest.index_run import STAGES, understand_episode

DATACAST = SHARED / "datacast"


class CountingEmbedder(FakeEmbedder):
    def __init__(self):
        super().__init__()
        self.texts = 0

    def embed(self, texts):
        self.texts += len(texts)
        return super().embed(texts)


def reference_segments() -> list[Segment]:
    lines = [line.strip() for line in (DATACAST / "episode-070-audio-reference.txt").read_text().splitlines()]
    sentences = [s for line in lines if line for s in split_sentences(line if line[-1] in ".:!?" else line + ".")]
    total = sum(len(s) for s in sentences)
    segments, clock = [], 0.0
    for sentence in sentences:
        seconds = 702.0 * len(sentence) / total
        segments.append(Segment(round(clock, 3), round(clock + seconds, 3), sentence))
        clock += seconds
    return segments


def datacast_notes() -> str:
    feed = (DATACAST / "feed.xml").read_text(encoding="utf-8")
    return re.search(r"<content:encoded><!\[CDATA\[(.*?)\]\]>", feed, re.S).group(1)


@pytest.fixture
def episode(db):
    show = db["shows"].insert({"feed_url": "https://datacast.example/feed.xml", "title": "Datacast"}).last_pk
    episode_id = db["episodes"].insert({
        "show_id": show, "guid": "datacast-070", "duration": 702.0, "notes_html": datacast_notes(),
        "title": "Episode 70: Machine Learning Testing with Mohamed Elgendy",
    }).last_pk
    db["feed_people"].insert_all([
        {"episode_id": episode_id, "name": "James Le", "role": "host", "href": "https://jameskle.com/"},
        {"episode_id": episode_id, "name": "Mohamed Elgendy", "role": "guest"},
    ])
    save_transcript(db, episode_id, reference_segments(),
                    TranscriptSource(source="whisper", format="whisper", model="tiny.en", content_hash="audio-sha"))
    return episode_id


def stage_states(db, episode_id) -> dict:
    return {row["stage"]: row["state"] for row in db.query("SELECT * FROM stages WHERE episode_id = ?", [episode_id])}


def test_understand_datacast_episode(db, episode):
    embedder = CountingEmbedder()
    summary = understand_episode(db, episode, embedder)
    assert summary.ran == list(STAGES) and summary.errors == {}
    assert summary.takeaways == 11 and summary.takeaways_source == "notes"
    assert summary.chapters_source == "notes" and summary.chapters == 11  # the notes' sections, as written
    assert summary.guests == ["Mohamed Elgendy"]
    assert stage_states(db, episode) == {stage: "done" for stage in STAGES}

    takeaways = list(db.query("SELECT * FROM takeaways WHERE episode_id = ? ORDER BY idx", [episode]))
    assert [t["start"] for t in takeaways] == sorted(t["start"] for t in takeaways)
    passages = db.execute("SELECT count(*) FROM passages WHERE episode_id = ?", [episode]).fetchone()[0]
    assert passages == summary.passages > 10
    assert db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [embedder.name]).fetchone()[0] == passages
    chapters = list(db.query("SELECT * FROM chapters WHERE episode_id = ? ORDER BY idx", [episode]))
    assert chapters[0]["start"] == 0 and chapters[-1]["end"] == 702.0
    assert [c["title"] for c in chapters] == [t["title"] for t in takeaways]
    assert [c["start"] for c in chapters[1:]] == [t["start"] for t in takeaways[1:]]  # the first from 0
    people = {(r["name"], r["role"]) for r in db.query(
        "SELECT p.name, ep.role FROM episode_people ep JOIN people p ON p.id = ep.person_id WHERE episode_id = ?",
        [episode])}
    assert people == {("James Le", "host"), ("Mohamed Elgendy", "guest")}


def test_the_notes_takeaways_are_placed_once_for_chapters_and_takeaways(db, episode, monkeypatch):
    import ingest.understand

    calls = []
    real = ingest.understand.place_takeaways
    monkeypatch.setattr(ingest.understand, "place_takeaways", lambda *a, **k: calls.append(1) or real(*a, **k))
    summary = understand_episode(db, episode, FakeEmbedder())
    assert summary.chapters_source == summary.takeaways_source == "notes" and len(calls) == 1


def test_rerun_with_unchanged_input_does_no_work(db, episode):
    understand_episode(db, episode, FakeEmbedder())
    embedder = CountingEmbedder()
    summary = understand_episode(db, episode, embedder)
    assert summary.ran == [] and sorted(summary.skipped) == sorted(STAGES)
    assert embedder.texts == 0


def test_new_notes_redo_only_what_reads_them(db, episode):
    understand_episode(db, episode, FakeEmbedder())
    db["episodes"].update(episode, {"notes_html": "<p>No takeaways this time.</p>"})
    summary = understand_episode(db, episode, FakeEmbedder())
    assert summary.ran == ["chapters", "takeaways", "guests"]  # chapters come from the notes' sections too
    assert summary.takeaways_source == "generated" and summary.chapters_source == "generated"


def test_new_transcript_redoes_everything(db, episode):
    understand_episode(db, episode, FakeEmbedder())
    save_transcript(db, episode, reference_segments()[:60],
                    TranscriptSource(source="whisper", format="whisper", model="base.en", content_hash="audio-sha"))
    summary = understand_episode(db, episode, FakeEmbedder())
    assert summary.ran == list(STAGES)


def test_missing_chapters_file_falls_back_to_the_notes(db, episode, serve, tmp_path):
    base = serve(tmp_path)
    show_is_served_from(db, episode, f"{base}/feed.xml")  # a loopback feed may lead to loopback addresses
    db["episodes"].update(episode, {"chapters_url": f"{base}/chapters.json"})
    summary = understand_episode(db, episode, FakeEmbedder())
    assert summary.chapters_source == "notes"  # the notes' sections, else generated chapters
    assert "404" in summary.errors["chapters_fetch"]
    states = stage_states(db, episode)
    assert states.pop("chapters_fetch") == "failed"
    assert states == {stage: "done" for stage in STAGES}
    assert "404" in stages.get_stage(db, episode, "chapters_fetch")["last_error"]


def show_is_served_from(db, episode_id, feed_url):
    db["shows"].update(db["episodes"].get(episode_id)["show_id"], {"feed_url": feed_url})


def test_feed_chapters_are_used(db, episode):
    show_is_served_from(db, episode, (SHARED / "chapters" / "feed.xml").as_uri())  # a local feed's own folder
    url = (SHARED / "chapters" / "podcast-namespace_example.json").as_uri()
    db["episodes"].update(episode, {"chapters_url": url})
    summary = understand_episode(db, episode, FakeEmbedder())
    assert summary.chapters_source == "feed" and summary.chapters == 9
    assert stage_states(db, episode)["chapters_fetch"] == "done"


def test_a_failing_step_is_recorded_and_the_others_still_run(db, episode, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("placement exploded")

    monkeypatch.setattr(understand, "save_takeaways", broken)
    with pytest.raises(StageError) as raised:
        understand_episode(db, episode, FakeEmbedder())
    assert raised.value.stage == "takeaways"
    states = stage_states(db, episode)
    assert states == {"passages": "done", "chapters": "done", "takeaways": "failed", "guests": "done"}
    assert "placement exploded" in stages.get_stage(db, episode, "takeaways")["last_error"]
    monkeypatch.undo()
    summary = understand_episode(db, episode, FakeEmbedder())  # the next run redoes only what failed
    assert summary.ran == ["takeaways"]


def test_episode_without_transcript(db, episode):
    other = db["episodes"].insert({"show_id": 1, "guid": "no-transcript"}).last_pk
    with pytest.raises(NotFoundError):
        understand_episode(db, other, FakeEmbedder())
    with pytest.raises(NotFoundError):
        understand_episode(db, 999, FakeEmbedder())


def test_timestamped_notes_are_the_chapters_and_generated_ones_fill_a_long_stretch_before_them(db, episode):
    notes = ("<p>In this episode:</p><ul><li>04:10 Studying biomedical engineering</li>"
             "<li>06:05 - Moving to the US</li><li>(09:30) Writing a book</li></ul>")
    db["episodes"].update(episode, {"notes_html": notes})
    summary = understand_episode(db, episode, FakeEmbedder())
    chapters = list(db.query("SELECT * FROM chapters WHERE episode_id = ? ORDER BY idx", [episode]))
    from_notes = [(c["title"], c["start"]) for c in chapters if c["source"] == "notes"]
    assert from_notes == [("Studying biomedical engineering", 250.0), ("Moving to the US", 365.0),
                          ("Writing a book", 570.0)]
    before = [c for c in chapters if c["start"] < 250]
    assert before and before[0]["start"] == 0 and {c["source"] for c in before} == {"generated"}
    assert summary.chapters == len(chapters) and chapters[-1]["end"] == 702.0
