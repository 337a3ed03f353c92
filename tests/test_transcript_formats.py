import ast
import json

import pytest
import srt
import webvtt
from conftest import ROOT, SHARED

from archive.records import Segment, TranscriptSource, Word
from archive.transcript_exports import to_json, to_srt, to_text, to_vtt
from archive.transcript_store import load_segments, save_transcript
from ingest.transcript_files import parse_transcript

SEGMENTS = [
    Segment(0.0, 2.76, "In today's episode, you'll learn <whether> or not you & I", "Sarah"),
    Segment(2.76, 6.09, "should have a podcast trailer.", "Sarah"),
    Segment(19.08, 21.45, "Hi Buzzsprout, Gillian here.", "Gillian Ó Brien"),
    Segment(3725.5, 3730.125, "Late in a long episode.", "Sarah"),
]
UNNAMED = [Segment(s.start, s.end, s.text) for s in SEGMENTS]


def essentials(segments):
    return [(round(s.start, 3), round(s.end, 3), s.text, s.speaker) for s in segments]


@pytest.mark.parametrize("render, fmt", [(to_vtt, "text/vtt"), (to_srt, "application/x-subrip"),
                                         (to_json, "application/json")])
@pytest.mark.parametrize("segments", [SEGMENTS, UNNAMED], ids=["speakers", "no-speakers"])
def test_round_trip(render, fmt, segments):
    assert essentials(parse_transcript(render(segments).encode(), fmt)) == essentials(segments)


def test_vtt_is_valid_webvtt_with_voices():
    text = to_vtt(SEGMENTS)
    assert text.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:02.760\n<v Sarah>In today's episode")
    captions = webvtt.from_string(text).captions
    assert [c.voice for c in captions] == ["Sarah", "Sarah", "Gillian Ó Brien", "Sarah"]
    assert "&lt;whether&gt;" in captions[0].raw_text and "&amp; I" in captions[0].raw_text
    assert captions[3].start == "01:02:05.500"


def test_srt_is_valid_srt_with_speaker_prefix():
    cues = list(srt.parse(to_srt(SEGMENTS)))
    assert [c.index for c in cues] == [1, 2, 3, 4]
    assert cues[2].content == "Gillian Ó Brien: Hi Buzzsprout, Gillian here."
    assert to_srt(SEGMENTS).startswith("1\n00:00:00,000 --> 00:00:02,760\n")


def test_json_follows_podcasting20_spec():
    document = json.loads(to_json(SEGMENTS + [Segment(4000, 4001, "Anonymous.")]))
    assert document["version"] == "1.0.0"
    assert document["segments"][0] == {"speaker": "Sarah", "startTime": 0.0, "endTime": 2.76,
                                       "body": "In today's episode, you'll learn <whether> or not you & I"}
    assert "speaker" not in document["segments"][-1]


def test_text_paragraphs_name_speakers_when_they_change():
    text = to_text(SEGMENTS)
    assert text.split("\n\n") == [
        "[00:00:00] Sarah: In today's episode, you'll learn <whether> or not you & I should have a podcast trailer.",
        "[00:00:19] Gillian Ó Brien: Hi Buzzsprout, Gillian here.",
        "[01:02:05] Sarah: Late in a long episode.\n",
    ]


def test_text_breaks_long_monologue_without_repeating_the_name():
    monologue = [Segment(i * 20.0, i * 20.0 + 20, f"Sentence {i}.", "Ann") for i in range(7)]
    paragraphs = to_text(monologue).strip().split("\n\n")
    assert paragraphs[0].startswith("[00:00:00] Ann: Sentence 0.")
    assert paragraphs[1].startswith("[00:01:00] Sentence 3.")
    back = parse_transcript(to_text(monologue).encode(), "text/plain")
    assert [(s.start, s.speaker) for s in back] == [(0, "Ann"), (60, "Ann"), (120, "Ann")]


def test_empty_transcript_renders_empty_documents():
    assert to_vtt([]) == "WEBVTT\n"
    assert json.loads(to_json([])) == {"version": "1.0.0", "segments": []}
    assert to_text([]) == "" and to_srt([]) == ""


def test_load_segments_from_store(db):
    show_id = db["shows"].insert({"feed_url": "https://example.com/feed.xml"}).last_pk
    episode_id = db["episodes"].insert({"show_id": show_id, "guid": "g"}).last_pk
    assert load_segments(db, episode_id) == []
    with_words = Segment(0, 1, "Hello there.", None, [Word("Hello", 0, 0.4, 0.9), Word("there.", 0.5, 1, 0.8)])
    save_transcript(db, episode_id, [with_words] + SEGMENTS, TranscriptSource(source="whisper"))
    assert load_segments(db, episode_id) == [with_words] + SEGMENTS


def test_real_transcript_survives_export_and_reimport():
    data = (SHARED / "corpus" / "datatalksclub_podcast" / "transcripts"
            / "ab-testing-and-product-experimentation.json").read_bytes()
    segments = parse_transcript(data, "application/json")
    back = parse_transcript(to_vtt(segments).encode(), "vtt")
    assert [s[:3] for s in essentials(back)] == [s[:3] for s in essentials(segments)]
    for original, read in zip(segments, back):
        # one segment has no speaker: WebVTT cannot say "nobody", so it reads as the previous speaker
        assert read.speaker == (original.speaker or read.speaker)


def test_exports_module_does_not_import_models():
    tree = ast.parse((ROOT / "archive" / "transcript_exports.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"faster_whisper", "torch", "ctranslate2", "ingest", "sentence_transformers"}
