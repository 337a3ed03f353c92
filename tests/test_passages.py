import hashlib
import json

import pytest
from conftest import SHARED

from archive.passages import ends_sentence, make_passages, save_passages, split_sentences
from archive.records import Passage, Segment

DATATALKS = SHARED / "corpus" / "datatalksclub_podcast"


def whisper_like(sentences: list[str], seconds_each: float = 5.0, speaker=None) -> list[Segment]:
    return [Segment(i * seconds_each, (i + 1) * seconds_each, s, speaker) for i, s in enumerate(sentences)]


def sentence(n: int) -> str:
    return f"This is sentence number {n} about machine learning in production."


def test_split_sentences_minds_abbreviations_and_initials():
    text = "Dr. Smith moved to the U.S. in 2010. He met J. Doe, e.g. at the lab! Really? Yes."
    assert split_sentences(text) == [
        "Dr. Smith moved to the U.S. in 2010.", "He met J. Doe, e.g. at the lab!", "Really?", "Yes."]
    assert split_sentences("  ") == []
    assert split_sentences("no final stop") == ["no final stop"]
    assert split_sentences('He said “go.” Then left.') == ["He said “go.”", "Then left."]


def test_passages_last_30_to_60_seconds_and_end_on_sentences():
    segments = whisper_like([sentence(n) for n in range(60)])  # 300 s
    passages = make_passages(segments)
    assert all(30 <= p.end - p.start <= 60 for p in passages)
    assert all(ends_sentence(p.text) for p in passages)
    assert " ".join(p.text for p in passages) == " ".join(s.text for s in segments)
    assert [p.start for p in passages][1:] == [p.end for p in passages][:-1]


def test_segments_cutting_sentences_are_not_cut_further():
    # Whisper segments often end mid-sentence: a passage only closes where a sentence ends
    words = [f"Sentence {n} goes on for a while and ends here." for n in range(40)]
    halves = [part for w in words for part in (w[:20], w[20:])]
    segments = whisper_like(halves, seconds_each=2.5)
    passages = make_passages(segments)
    assert all(ends_sentence(p.text) for p in passages)
    assert all(p.end - p.start <= 60 for p in passages[:-1])
    assert passages[-1].end - passages[-1].start <= 60 + 30  # a short tail joins the last passage


def test_long_segment_is_split_at_sentences_with_proportional_times():
    text = " ".join(sentence(n) for n in range(40))
    passages = make_passages([Segment(100.0, 300.0, text, "Jakob")])
    assert len(passages) >= 4
    assert passages[0].start == 100.0 and passages[-1].end == pytest.approx(300.0)
    assert all(p.speaker == "Jakob" for p in passages)
    assert all(ends_sentence(p.text) for p in passages)
    assert all(p.end - p.start <= 60 for p in passages[:-1])
    # time follows characters: every sentence has the same length, so the same share of time
    per_sentence = 200.0 / 40
    for p in passages:
        assert p.end - p.start == pytest.approx(per_sentence * len(split_sentences(p.text)), rel=0.02)


def test_speaker_change_starts_a_passage_once_long_enough():
    host = whisper_like([sentence(n) for n in range(8)], speaker="Alexey")  # 40 s
    guest = [Segment(40 + s.start, 40 + s.end, s.text, "Jakob") for s in whisper_like([sentence(n) for n in range(8)])]
    passages = make_passages(host + guest)
    assert [p.speaker for p in passages] == ["Alexey", "Jakob"]
    assert passages[1].start == 40


def test_mixed_passage_takes_the_dominant_speaker_or_none():
    question = [Segment(0, 5, "So what did you do next?", "Alexey")]
    answer = [Segment(5 + s.start, 5 + s.end, s.text, "Jakob") for s in whisper_like([sentence(n) for n in range(7)])]
    passages = make_passages(question + answer)
    assert len(passages) == 1 and passages[0].speaker == "Jakob"  # 35 of 40 s
    even = [Segment(0, 20, sentence(1) * 2, "A"), Segment(20, 40, sentence(2) * 2, "B")]
    assert make_passages(even)[0].speaker is None


def test_short_tail_is_merged():
    segments = whisper_like([sentence(n) for n in range(19)])  # 95 s: 45 + 45 + 5
    passages = make_passages(segments)
    assert len(passages) == 2
    assert passages[-1].end == 95


def test_untimed_transcript_is_grouped_by_length_without_times():
    segments = [Segment(0, 0, sentence(n)) for n in range(60)]
    passages = make_passages(segments)
    assert len(passages) > 3
    assert all(p.start == 0 and p.end == 0 for p in passages)
    assert " ".join(p.text for p in passages) == " ".join(s.text for s in segments)


def test_unpunctuated_transcript_is_still_cut():
    segments = whisper_like(["and then we kept going without any full stop"] * 100)  # 500 s, no sentence end
    passages = make_passages(segments)
    assert len(passages) >= 4
    assert all(p.end - p.start <= 120 for p in passages[:-1])


def test_empty_and_blank_segments():
    assert make_passages([]) == []
    assert make_passages([Segment(0, 1, "  ")]) == []


def test_real_datatalks_transcript():
    data = json.loads((DATATALKS / "transcripts" / "ab-testing-and-product-experimentation.json").read_text())
    segments = [Segment(s["startTime"], s.get("endTime", s["startTime"]), s["body"], s.get("speaker"))
                for s in data["segments"]]
    passages = make_passages(segments)
    durations = sorted(p.end - p.start for p in passages)
    assert durations[len(durations) // 2] == pytest.approx(45, abs=8)
    assert sum(1 for d in durations if d > 65) <= len(durations) * 0.05
    assert all(ends_sentence(p.text) for p in passages[:-1])
    assert {p.speaker for p in passages} >= {"Alexey", "Jakob"}
    assert "".join(p.text for p in passages).replace(" ", "") == "".join(
        s.text for s in segments).replace(" ", "")


def test_save_passages_replaces(db):
    show = db["shows"].insert({"feed_url": "file:///feed.xml"}).last_pk
    episode = db["episodes"].insert({"show_id": show, "guid": "g1"}).last_pk
    save_passages(db, episode, [Passage(0, 40, "first"), Passage(40, 80, "second")])
    rows = save_passages(db, episode, [Passage(0, 50, "only one", "Jakob")])
    assert [(r["idx"], r["text"], r["speaker"]) for r in rows] == [(0, "only one", "Jakob")]
    assert rows[0]["content_hash"] == hashlib.sha256(b"only one").hexdigest()
    assert db.execute("SELECT count(*) FROM passages").fetchone()[0] == 1
