"""An episode's vocabulary for Whisper: names from the feed, ranked and cut to a prompt; the prompt is stored
with the transcript's options and does not change the stage's input hash."""

import json

import pytest

from archive.db import memory_db, open_db
from conftest import SHARED
from ingest.pipeline import IngestOptions, Pipeline, ingest_sources, options_fingerprint
from ingest.transcribe import TranscriptionOptions
from ingest.vocabulary import episode_vocabulary, names_in, whisper_prompt

DATACAST = SHARED / "datacast"


def test_names_are_capitalised_words_past_a_sentence_start_acronyms_and_inner_capitals():
    found = names_in("On testing. I joined Twilio in 2016, then Rakuten's NLP team.\nModels need TensorFlow.")
    assert found == {"Twilio": 1, "Rakuten": 1, "NLP": 1, "TensorFlow": 1}


def test_the_datacast_episode_vocabulary_holds_its_people_and_the_names_of_its_notes():
    db = memory_db()
    ingest_sources(db, [str(DATACAST / "feed.xml")], IngestOptions(metadata_only=True))
    words = episode_vocabulary(db, db.execute("SELECT id FROM episodes").fetchone()[0])
    assert words[:2] == ["Mohamed Elgendy", "James Le"]  # podcast:person first
    for name in ("Amazon", "Rakuten", "Kolena", "Twilio", "Manning", "NLP"):
        assert name in words
    assert len({w.casefold() for w in words}) == len(words)


def test_the_prompt_stops_at_a_name_boundary_within_its_budget():
    prompt = whisper_prompt(["Mohamed Elgendy", "Amazon", "Rakuten", "Kolena"], 30)
    assert prompt == "Mohamed Elgendy, Amazon." and len(prompt) <= 30
    assert whisper_prompt([], 100) is None


def test_unset_prompt_fields_leave_old_stage_hashes_alone():
    options = TranscriptionOptions()
    fingerprint = options_fingerprint(options)
    assert "initial_prompt" not in fingerprint and "hotwords" not in fingerprint
    assert options_fingerprint(TranscriptionOptions(initial_prompt="Kolena.")) != fingerprint


def test_the_pipeline_gives_the_vocabulary_only_when_asked(tmp_path):
    db = open_db(tmp_path / "a.db")
    ingest_sources(db, [str(DATACAST / "feed.xml")], IngestOptions(metadata_only=True))
    episode_id = db.execute("SELECT id FROM episodes").fetchone()[0]
    off = Pipeline(db, IngestOptions())
    assert off.with_vocabulary(TranscriptionOptions(), episode_id).initial_prompt is None
    on = Pipeline(db, IngestOptions(vocabulary_chars=120))
    prompt = on.with_vocabulary(TranscriptionOptions(), episode_id).initial_prompt
    assert prompt.startswith("Mohamed Elgendy, James Le,") and len(prompt) <= 120
    given = TranscriptionOptions(initial_prompt="The operator's own prompt.")
    assert on.with_vocabulary(given, episode_id) is given


@pytest.mark.slow
def test_the_prompt_is_stored_with_the_transcript(serve, tmp_path):
    base = serve(DATACAST)
    db = open_db(tmp_path / "a.db")
    report = ingest_sources(db, [f"{base}/feed-short.xml"],
                            IngestOptions(media_dir=tmp_path / "media", index=False, vocabulary_chars=200))
    assert report.ok, report.failures
    options = json.loads(db.execute("SELECT options FROM transcripts").fetchone()[0])
    assert options["initial_prompt"].startswith("Mohamed Elgendy")
