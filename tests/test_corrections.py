"""Producers correcting transcripts (archive/corrections.py, archive/web/corrections.py): Whisper heard "Amazon"
as "ML on"; the producer previews each place, replaces it, and search has it at once; undo, edits, speakers,
the machine's text kept, the index run after it, a new machine transcript, and the studio page's permissions."""

import json
import re

import pytest

from archive import corrections, producers, stages, transcript_alignment
from archive.corrections import (corrections_key, edit_line, preview_replace, rename_speaker, replace_in_transcript,
                                 revert_line, set_speaker, undo)
from archive.db import connect, open_db
from archive.errors import CorrectionError, NotFoundError
from archive.fts_tables import ensure_fts
from archive.passages import load_passage_rows, make_passages, save_passages
from archive.producers import Producer
from archive.records import Segment, TranscriptSource, Word
from archive.search import search
from archive.transcript_store import load_segments, save_transcript
from archive.vectors import ensure_embeddings
from fakes import FakeEmbedder
from web_fixtures import make_app

ALICE = Producer(1, "alice")
EMBEDDER = FakeEmbedder()

LINES = [  # (speaker, text): six seconds each, as Whisper heard them
    ("SPEAKER_0", "Welcome back to the show about running software in the cloud."),
    ("SPEAKER_0", "Today we talk about moving a startup to ML on web services."),
    ("SPEAKER_1", "Thanks for having me. We moved everything to ML on Web Services last year."),
    ("SPEAKER_1", "Our HTML on the old servers was rendered by hand, which was slow."),
    ("SPEAKER_1", "The database went first, then the queues."),
    ("SPEAKER_0", "Why did you pick that cloud over the others?"),
    ("SPEAKER_1", "Mostly the managed services, ml on S3 storage is cheap and durable."),
    ("SPEAKER_1", "We also looked at other providers, but the credits decided it."),
    ("SPEAKER_0", "What about cost surprises?"),
    ("SPEAKER_1", "Egress fees. Nobody warns you about egress fees."),
    ("SPEAKER_0", "Let us talk about hiring engineers for a small team."),
    ("SPEAKER_1", "We hire generalists who enjoy debugging production systems."),
    ("SPEAKER_1", "A good engineer writes boring code that is easy to read."),
    ("SPEAKER_0", "How do you run interviews?"),
    ("SPEAKER_1", "We pair on a real bug for an hour instead of puzzles."),
    ("SPEAKER_1", "Candidates tell us they like seeing how we work."),
    ("SPEAKER_0", "And your on call rotation?"),
    ("SPEAKER_1", "Everyone is on call one week a month, with a runbook for each alarm."),
    ("SPEAKER_1", "We moved the alarms to ML on CloudWatch in the spring."),
    ("SPEAKER_0", "Thanks for coming on the show."),
    ("SPEAKER_1", "Thank you, it was fun."),
]
ML_ON_LINES = [1, 2, 6, 18]  # "ML on" as whole words, in any case; line 3's "HTML on" is not one


def whisper_words(start: float, text: str) -> list[Word]:
    tokens = text.split()
    step = 6.0 / len(tokens)
    return [Word(" " + token, round(start + i * step, 3), round(start + (i + 1) * step, 3), 0.9)
            for i, token in enumerate(tokens)]


def segments(lines=LINES, words_on=(2,)) -> list[Segment]:
    return [Segment(i * 6.0, (i + 1) * 6.0, text, speaker, whisper_words(i * 6.0, text) if i in words_on else None)
            for i, (speaker, text) in enumerate(lines)]


def build(db) -> dict:
    """A show with the cloud episode (Whisper's transcript, passages, vectors, FTS) and another episode."""
    show = db["shows"].insert({"feed_url": "https://example.com/cloud.xml", "title": "Cloud Talk"}).last_pk
    episode = db["episodes"].insert({"show_id": show, "guid": "cloud-1", "title": "Moving to the cloud"}).last_pk
    other = db["episodes"].insert({"show_id": show, "guid": "cloud-2", "title": "Databases"}).last_pk
    for episode_id, segs in ((episode, segments()),
                             (other, [Segment(0, 40, "Postgres is a fine database for most teams."),
                                      Segment(40, 80, "Backups matter more than the engine you pick.")])):
        save_transcript(db, episode_id, segs, TranscriptSource(source="whisper", format="whisper", model="tiny.en",
                                                               content_hash=f"audio-{episode_id}"))
        save_passages(db, episode_id, make_passages(load_segments(db, episode_id)))
    ensure_embeddings(db, list(db.query("SELECT * FROM passages")), EMBEDDER)
    ensure_fts(db)
    return {"show": show, "episode": episode, "other": other}


@pytest.fixture
def cloud(db):
    return build(db)


def texts(db, episode_id) -> list[str]:
    return [s.text for s in load_segments(db, episode_id)]


def passage_texts(db, episode_id) -> str:
    return " ".join(row["text"] for row in load_passage_rows(db, episode_id))


def keyword(db, query):
    return search(db, query, mode="keyword", limit=20)


def semantic(db, query):
    return search(db, query, mode="semantic", limit=20, embedder=EMBEDDER)


# -- find and replace, with a preview -------------------------------------------------------------------------

def test_preview_lists_each_place_with_context_and_leaves_html_on_alone(db, cloud):
    places = preview_replace(db, cloud["episode"], "ML on", "Amazon")
    assert [p["idx"] for p in places] == ML_ON_LINES
    first = places[1]
    assert first["place"] == "2:45" and first["start"] == 12.0 and first["speaker"] == "SPEAKER_1"
    assert first["old"] == "ML on" and first["new"] == "Amazon"
    assert first["before"] == "Thanks for having me. We moved everything to ML on Web Services last year."
    assert first["after"] == "Thanks for having me. We moved everything to Amazon Web Services last year."
    assert places[2]["old"] == "ml on"  # any case, unless asked
    assert [p["idx"] for p in preview_replace(db, cloud["episode"], "ML on", "Amazon", case_sensitive=True)] == [1, 2, 18]
    assert 3 in [p["idx"] for p in preview_replace(db, cloud["episode"], "ML on", "Amazon", whole_words=False)]
    assert preview_replace(db, cloud["episode"], "nothing like this", "x") == []
    assert texts(db, cloud["episode"])[2].count("ML on") == 1  # a preview changes nothing
    with pytest.raises(CorrectionError):
        preview_replace(db, cloud["episode"], "  ", "Amazon")


def test_long_lines_get_context_cut_at_words():
    lead, trail = corrections._context("word " * 30 + "ML on" + " more" * 30, 150, 155)
    assert lead.startswith("…") and lead.endswith("word ") and len(lead) <= 61
    assert trail.endswith("…") and trail.startswith(" more")


def test_replace_updates_keyword_and_semantic_search_at_once(db, cloud):
    episode = cloud["episode"]
    assert not [r for r in keyword(db, "Amazon") if r.episode_id == episode]
    assert [r for r in keyword(db, '"ML on"') if r.episode_id == episode]
    versions = dict(db.execute("SELECT name, version FROM search_versions").fetchall())

    assert replace_in_transcript(db, episode, "ML on", "Amazon", ALICE, embedder=EMBEDDER) == 4

    assert texts(db, episode)[1] == "Today we talk about moving a startup to Amazon web services."
    assert texts(db, episode)[3] == "Our HTML on the old servers was rendered by hand, which was slow."
    assert "ML on" not in passage_texts(db, episode).replace("HTML on", "")
    found = [r for r in keyword(db, "Amazon") if r.episode_id == episode]
    assert found and all("amazon" in r.snippet.lower() for r in found)
    assert not [r for r in keyword(db, '"ML on"') if r.episode_id == episode]
    top = semantic(db, "Amazon")[0]
    assert top.episode_id == episode and "amazon" in top.snippet.lower()
    assert not any(re.search(r"(?<!HT)ML on", r.snippet) for r in semantic(db, "ML on"))
    hashes = [row["content_hash"] for row in load_passage_rows(db, episode)]
    stored = {row[0] for row in db.execute("SELECT content_hash FROM embeddings WHERE model = ?", [EMBEDDER.name])}
    assert set(hashes) <= stored  # the changed passages have vectors already
    after = dict(db.execute("SELECT name, version FROM search_versions").fetchall())
    assert after["text"] > versions["text"] and after["vectors"] > versions["vectors"]


def test_replace_only_in_the_places_chosen(db, cloud):
    episode = cloud["episode"]
    places = preview_replace(db, episode, "ML on", "Amazon")
    assert replace_in_transcript(db, episode, "ML on", "Amazon", ALICE, only_idx=[places[0]["place"], 18]) == 2
    lines = texts(db, episode)
    assert "Amazon" in lines[1] and "Amazon" in lines[18] and "ML on" in lines[2] and "ml on" in lines[6]
    [item] = corrections.corrections(db, episode)
    assert item["details"]["chosen"] == ["18", "1:40"] and item["details"]["places"] == 2
    assert replace_in_transcript(db, episode, "ML on", "Amazon", ALICE, only_idx=["1:40"]) == 0  # gone since
    assert len(corrections.corrections(db, episode)) == 1  # nothing changed, nothing recorded


def test_a_replace_that_would_empty_a_line_is_refused_whole(db, cloud):
    with pytest.raises(CorrectionError, match="empty"):
        replace_in_transcript(db, cloud["episode"], "What about cost surprises?", "", ALICE, whole_words=False)
    assert texts(db, cloud["episode"]) == [text for _, text in LINES]


# -- undo, and the machine's text -----------------------------------------------------------------------------

def test_undo_brings_the_text_and_search_back_and_is_recorded(db, cloud):
    episode = cloud["episode"]
    replace_in_transcript(db, episode, "ML on", "Amazon", ALICE, embedder=EMBEDDER)
    [replaced] = corrections.corrections(db, episode)
    bob = Producer(2, "bob")
    undo_id = undo(db, episode, replaced["id"], bob, embedder=EMBEDDER)

    assert texts(db, episode) == [text for _, text in LINES]
    assert not [r for r in keyword(db, "Amazon") if r.episode_id == episode]
    assert [r for r in keyword(db, '"ML on"') if r.episode_id == episode]
    history = corrections.corrections(db, episode)
    assert [(c["id"], c["action"], c["state"], c["producer_name"]) for c in history] == [
        (undo_id, "undo", "applied", "bob"), (replaced["id"], "replace", "undone", "alice")]
    assert history[1]["undone_by"] == undo_id and history[0]["undoes"] == replaced["id"]
    assert history[0]["summary"] == f"Undid correction #{replaced['id']}" and not history[0]["undoable"]
    assert history[1]["summary"] == "Replaced “ML on” with “Amazon” (4 places)" and history[1]["at"]
    with pytest.raises(CorrectionError):
        undo(db, episode, replaced["id"], ALICE)  # undone already
    with pytest.raises(CorrectionError):
        undo(db, episode, undo_id, ALICE)  # an undo is not undone
    with pytest.raises(NotFoundError):
        undo(db, cloud["other"], replaced["id"], ALICE)  # another episode's
    assert corrections_key(db, episode) is None  # back to the machine's transcript


def test_undo_is_refused_while_a_later_correction_holds_a_line(db, cloud):
    episode = cloud["episode"]
    replace_in_transcript(db, episode, "ML on", "Amazon", ALICE)
    edit = edit_line(db, episode, 2, "Thanks for having me. We moved everything to Amazon Web Services in 2023.", ALICE)
    replaced = corrections.corrections(db, episode)[1]["id"]
    with pytest.raises(CorrectionError, match="undo the later correction first"):
        undo(db, episode, replaced, ALICE)
    assert "in 2023" in texts(db, episode)[2]  # nothing changed
    undo(db, episode, edit, ALICE)
    undo(db, episode, replaced, ALICE)
    assert texts(db, episode) == [text for _, text in LINES]


def test_editing_a_line_keeps_the_machine_text_and_word_timings(db, cloud):
    episode = cloud["episode"]
    new = "Thanks for having me. We moved everything to Amazon Web Services last year."
    correction_id = edit_line(db, episode, 2, new, ALICE, embedder=EMBEDDER)
    assert correction_id and texts(db, episode)[2] == new
    kept = db.execute("SELECT text, speaker, words FROM segment_originals").fetchall()
    assert [(text, speaker) for text, speaker, _ in kept] == [(LINES[2][1], "SPEAKER_1")]
    words = load_segments(db, episode)[2].words
    machine = whisper_words(12.0, LINES[2][1])
    assert [w.word.strip() for w in words] == new.split()
    assert words[:8] == machine[:8]  # the words left as they were keep their times and probability
    amazon = words[8]
    assert (amazon.start, amazon.end, amazon.probability) == (machine[8].start, machine[9].end, None)
    assert words[9:] == machine[10:]
    line = corrections.transcript_lines(db, episode)[2]
    assert line["corrected"] and line["machine_text"] == LINES[2][1]
    assert edit_line(db, episode, 2, new, ALICE) is None  # the same text: nothing recorded

    revert_line(db, episode, 2, ALICE, embedder=EMBEDDER)
    assert load_segments(db, episode)[2] == segments()[2]  # text, speaker and words as Whisper made them
    assert not corrections.transcript_lines(db, episode)[2]["corrected"]
    with pytest.raises(CorrectionError, match="as the machine made it"):
        revert_line(db, episode, 2, ALICE)
    assert [c["action"] for c in corrections.corrections(db, episode)] == ["revert", "edit"]


def test_a_line_must_keep_some_text_and_exist(db, cloud):
    with pytest.raises(CorrectionError, match="line is required"):
        edit_line(db, cloud["episode"], 0, "  \n ", ALICE)
    with pytest.raises(CorrectionError, match="at most 5,000"):
        edit_line(db, cloud["episode"], 0, "x" * 5001, ALICE)
    with pytest.raises(NotFoundError):
        edit_line(db, cloud["episode"], 99, "text", ALICE)
    assert corrections.corrections(db, cloud["episode"]) == []


def test_words_are_dropped_when_they_do_not_spell_the_line():
    words = json.dumps([{"word": " Hello", "start": 0, "end": 1}])
    assert transcript_alignment.realign_words(words, "Goodbye", "Goodbye there") is None
    assert json.loads(transcript_alignment.realign_words(words, "Hello", "hello there")) == [
        {"word": " hello", "start": 0, "end": 1}, {"word": " there", "start": 1.0, "end": 1.0, "probability": None}]


# -- speakers -----------------------------------------------------------------------------------------------

def test_naming_a_speaker_and_setting_one_line(db, cloud):
    episode = cloud["episode"]
    correction_id = rename_speaker(db, episode, "SPEAKER_1", "Jane Doe", ALICE, embedder=EMBEDDER)
    lines = load_segments(db, episode)
    assert {s.speaker for i, s in enumerate(lines) if LINES[i][0] == "SPEAKER_1"} == {"Jane Doe"}
    assert {s.speaker for i, s in enumerate(lines) if LINES[i][0] == "SPEAKER_0"} == {"SPEAKER_0"}
    assert "Jane Doe" in {row["speaker"] for row in load_passage_rows(db, episode)}
    assert corrections.correction(db, episode, correction_id)["summary"] == \
        "Renamed speaker “SPEAKER_1” to “Jane Doe” (13 lines)"
    assert corrections.speakers(db, episode) == [{"speaker": "SPEAKER_0", "lines": 8},
                                                 {"speaker": "Jane Doe", "lines": 13}]

    set_speaker(db, episode, 0, "Sam Host", ALICE)
    assert load_segments(db, episode)[0].speaker == "Sam Host"
    assert corrections.corrections(db, episode)[0]["summary"] == "Set the speaker of the line at 0:00:00 to “Sam Host”"
    assert rename_speaker(db, episode, "Jane Doe", " Jane  Doe ", ALICE) is None  # the same name
    with pytest.raises(CorrectionError, match="No line is spoken by"):
        rename_speaker(db, episode, "SPEAKER_1", "Someone", ALICE)
    undo(db, episode, correction_id, ALICE)
    assert {s.speaker for s in load_segments(db, episode)[1:]} == {"SPEAKER_0", "SPEAKER_1"}


# -- the index run after corrections ------------------------------------------------------------------------

def test_the_next_index_keeps_corrections_and_redoes_only_what_reads_the_text(db, cloud):
    from ingest.index_run import STAGES, understand_episode

    episode, other = cloud["episode"], cloud["other"]
    for episode_id in (episode, other):
        understand_episode(db, episode_id, EMBEDDER)
    machine_hashes = {stage: stages.get_stage(db, episode, stage)["input_hash"] for stage in STAGES}
    assert understand_episode(db, episode, EMBEDDER).ran == []

    replace_in_transcript(db, episode, "ML on", "Amazon", ALICE, embedder=EMBEDDER)
    rows = load_passage_rows(db, episode)
    summary = understand_episode(db, episode, EMBEDDER)
    assert sorted(summary.ran) == sorted(STAGES)  # once, on the corrected text
    assert load_passage_rows(db, episode) == rows  # the passages the correction made: the same rows, not rewritten
    assert "Amazon" in passage_texts(db, episode)
    assert understand_episode(db, episode, EMBEDDER).ran == []  # and not again
    assert understand_episode(db, other, EMBEDDER).ran == []  # an uncorrected episode keeps its key

    undo(db, episode, corrections.corrections(db, episode)[0]["id"], ALICE)
    understand_episode(db, episode, EMBEDDER)
    assert {stage: stages.get_stage(db, episode, stage)["input_hash"] for stage in STAGES} == machine_hashes


# -- a new machine transcript -------------------------------------------------------------------------------

def test_a_new_machine_transcript_carries_the_corrections_over(db, cloud):
    episode = cloud["episode"]
    replace_in_transcript(db, episode, "ML on", "Amazon", ALICE)
    renamed = rename_speaker(db, episode, "SPEAKER_1", "Jane Doe", ALICE)
    kept_edit = edit_line(db, episode, 5, "Why did you pick Amazon over the others?", ALICE)
    lost_edit = edit_line(db, episode, 8, "What about surprises on the bill?", ALICE)
    set_speaker(db, episode, 19, "Sam Host", ALICE)

    # Whisper again, with a better model: it hears line 2 right and line 8 differently, and its diarizer numbers
    # the speakers the other way round.
    swapped = {"SPEAKER_0": "SPEAKER_1", "SPEAKER_1": "SPEAKER_0"}
    lines = [(swapped[speaker], text) for speaker, text in LINES]
    lines[2] = (lines[2][0], "Thanks for having me. We moved everything to Amazon Web Services last year.")
    lines[8] = (lines[8][0], "What about the cost surprises?")
    save_transcript(db, episode, segments(lines),
                    TranscriptSource(source="whisper", format="whisper", model="small.en", content_hash="audio"))

    now = load_segments(db, episode)
    assert [now[i].text.count("Amazon") for i in ML_ON_LINES] == [1, 1, 1, 1]
    assert (now[5].text, now[5].speaker) == ("Why did you pick Amazon over the others?", "SPEAKER_1")
    assert now[8].text == "What about the cost surprises?"  # the machine's new line: the edit lapsed
    assert {s.speaker for i, s in enumerate(now) if LINES[i][0] == "SPEAKER_1"} == {"Jane Doe"}
    assert now[0].speaker == "SPEAKER_1" and now[19].speaker == "Sam Host"
    history = {c["id"]: c for c in corrections.corrections(db, episode)}
    assert history[lost_edit]["state"] == "lapsed" and "same times and text" in history[lost_edit]["note"]
    assert history[lost_edit]["changes"][0]["text"][1] == "What about surprises on the bill?"  # kept, to read
    assert history[kept_edit]["state"] == "applied" and history[kept_edit]["note"].startswith("carried")
    replaced = min(history)
    assert [c["idx"] for c in history[replaced]["changes"]] == [1, 6, 18]  # line 2 was heard right this time
    machine = dict(db.execute("SELECT idx, text FROM segment_originals").fetchall())  # the new machine lines
    assert machine[5] == LINES[5][1] and machine[2] == lines[2][1] and 8 not in machine
    assert not corrections.transcript_lines(db, episode)[8]["corrected"]

    undo(db, episode, renamed, ALICE)  # a carried correction is undone on the new transcript
    assert {s.speaker for i, s in enumerate(load_segments(db, episode)) if LINES[i][0] == "SPEAKER_1"} == {"SPEAKER_0"}


def test_a_correction_the_new_transcript_no_longer_needs_lapses(db, cloud):
    episode = cloud["episode"]
    replace_in_transcript(db, episode, "ML on", "Amazon", ALICE)
    heard_right = [(speaker, text.replace("ML on", "Amazon").replace("ml on", "Amazon")) for speaker, text in LINES]
    save_transcript(db, episode, segments(heard_right), TranscriptSource(source="whisper", content_hash="again"))
    [item] = corrections.corrections(db, episode)
    assert item["state"] == "lapsed" and "“ML on” is not in the new transcript" in item["note"]
    assert not item["undoable"] and corrections_key(db, episode) is None
    assert db.execute("SELECT count(*) FROM segment_originals").fetchone()[0] == 0


# -- the studio page ----------------------------------------------------------------------------------------

@pytest.fixture
def site(db_path):
    db = open_db(db_path)
    ids = build(db)
    ids["elsewhere"] = db["shows"].insert({"feed_url": "https://example.com/else.xml", "title": "Else"}).last_pk
    producers.add_producer(db, "alice", "alice password", shows=[ids["show"]])
    producers.add_producer(db, "bob", "bob password", shows=[ids["elsewhere"]])
    db.conn.close()
    return db_path, ids


def csrf_from(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def logged_in(app, name: str):
    client = app.test_client()
    token = csrf_from(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": name, "password": f"{name} password", "csrf_token": token})
    assert response.status_code == 302
    return client


def test_studio_page_previews_applies_and_undoes_a_replace(site):
    path, ids = site
    app = make_app(path)
    client = logged_in(app, "alice")
    url = f"/studio/episodes/{ids['episode']}/transcript"
    page = client.get(url)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "We moved the alarms to ML on CloudWatch in the spring." in html and "No correction yet" in html

    preview = client.get(url, query_string={"find": "ML on", "replace": "Amazon", "whole_words": "1"})
    html = preview.get_data(as_text=True)
    places = re.findall(r'name="place" value="([^"]+)" checked', html)
    assert places == ["1:40", "2:45", "6:29", "18:23"] and "<del>ML on</del>" in html and "<ins>Amazon</ins>" in html
    token = csrf_from(html)
    form = {"csrf_token": token, "find": "ML on", "replace": "Amazon", "whole_words": "1", "case_sensitive": "0",
            "shown": "4", "place": places}
    response = client.post(f"{url}/replace", data=form)
    assert response.status_code == 303 and response.headers["Location"].endswith(f"{url}#corrections")

    db = connect(path)
    assert [r for r in keyword(db, "Amazon") if r.episode_id == ids["episode"]]
    assert db.execute("SELECT details FROM transcript_corrections").fetchone()[0].count('"chosen": null') == 1
    vectors = db.execute("SELECT count(*) FROM embeddings e JOIN passages p ON p.content_hash = e.content_hash "
                         "WHERE p.episode_id = ?", [ids["episode"]]).fetchone()[0]
    assert vectors == len(load_passage_rows(db, ids["episode"]))  # the site's embedder embedded them
    html = client.get(url).get_data(as_text=True)
    assert "Replaced “ML on” with “Amazon” (4 places)" in html and "by alice" in html
    assert "Amazon web services" in html and "Corrected: the machine" in html
    correction_id = db.execute("SELECT id FROM transcript_corrections").fetchone()[0]
    assert client.post(f"{url}/corrections/{correction_id}/undo", data={"csrf_token": token}).status_code == 303
    assert texts(db, ids["episode"]) == [text for _, text in LINES]
    db.conn.close()
    assert f"Correction #{correction_id} is undone." in client.get(url).get_data(as_text=True)


def test_studio_page_edits_a_line_and_renames_a_speaker(site):
    path, ids = site
    client = logged_in(make_app(path), "alice")
    url = f"/studio/episodes/{ids['episode']}/transcript"
    html = client.get(url, query_string={"edit": 9}).get_data(as_text=True)
    assert 'name="text"' in html and "Egress fees. Nobody warns you about egress fees.</textarea>" in html
    token = csrf_from(html)
    refused = client.post(f"{url}/lines/9", data={"csrf_token": token, "text": " ", "speaker": "SPEAKER_1"})
    assert refused.status_code == 400 and "The line is required." in refused.get_data(as_text=True)
    saved = client.post(f"{url}/lines/9", data={"csrf_token": token, "text": "Egress fees, mostly.",
                                                 "speaker": "Jane Doe"})
    assert saved.status_code == 303 and saved.headers["Location"].endswith("#line-9")
    renamed = client.post(f"{url}/speakers", data={"csrf_token": token, "old": "SPEAKER_0", "new": "Sam Host"})
    assert renamed.status_code == 303
    db = connect(path)
    line = load_segments(db, ids["episode"])[9]
    assert (line.text, line.speaker) == ("Egress fees, mostly.", "Jane Doe")
    assert load_segments(db, ids["episode"])[0].speaker == "Sam Host"
    assert client.post(f"{url}/lines/9/revert", data={"csrf_token": token}).status_code == 303
    assert load_segments(db, ids["episode"])[9].text == LINES[9][1]
    db.conn.close()
    assert client.post(f"{url}/lines/99", data={"csrf_token": token, "text": "x"}).status_code == 404


def test_studio_page_permissions(site):
    path, ids = site
    app = make_app(path)
    url = f"/studio/episodes/{ids['episode']}/transcript"
    anonymous = app.test_client()
    response = anonymous.get(url)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?next=")
    token = csrf_from(anonymous.get("/login").get_data(as_text=True))
    assert anonymous.post(f"{url}/lines/1", data={"csrf_token": token, "text": "x"}).status_code == 401

    bob = logged_in(app, "bob")  # a producer of another show
    assert bob.get(url).status_code == 403
    token = csrf_from(bob.get("/logout").get_data(as_text=True))
    for target, data in ((f"{url}/lines/1", {"text": "x"}), (f"{url}/speakers", {"old": "SPEAKER_0", "new": "x"}),
                         (f"{url}/replace", {"find": "ML on", "replace": "x", "place": "1:40"}),
                         (f"{url}/lines/1/revert", {}), (f"{url}/corrections/1/undo", {})):
        assert bob.post(target, data={"csrf_token": token, **data}).status_code == 403, target

    alice = logged_in(app, "alice")
    assert alice.post(f"{url}/lines/1", data={"text": "no token"}).status_code == 400  # CSRF
    db = connect(path)
    assert texts(db, ids["episode"]) == [text for _, text in LINES]
    assert db.execute("SELECT count(*) FROM transcript_corrections").fetchone()[0] == 0
    db.conn.close()
    assert alice.get(f"/studio/episodes/{ids['other'] + 100}/transcript").status_code == 404
