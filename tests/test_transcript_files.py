import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass

import pytest
from conftest import ROOT, SHARED

from archive.db import open_db
from archive.errors import TranscriptFetchError, TranscriptFormatError
from archive.records import Segment, TranscriptSource, Word
from archive.transcript_store import load_segments, save_transcript
from ingest.http import make_client
from ingest.transcript_files import (
    choose_transcript,
    decode_text,
    detect_format,
    fetch_transcript_file,
    format_of,
    parse_clock,
    parse_transcript,
)

EXAMPLES = SHARED / "transcripts"
TWIML_VTT = SHARED / "corpus" / "twiml_whisper_transcripts" / "vtt"
DATATALKS = SHARED / "corpus" / "datatalksclub_podcast" / "transcripts"


@dataclass
class Link:
    url: str
    type: str | None = None
    language: str | None = None
    rel: str | None = None


def example(ext: str) -> bytes:
    return (EXAMPLES / f"podcast-namespace_example.{ext}").read_bytes()


def turns(segments):
    """Speaker turns: (speaker, start of the turn in whole seconds)."""
    return [(speaker, int(next(group).start)) for speaker, group in itertools.groupby(segments, lambda s: s.speaker)]


# -- choosing ---------------------------------------------------------------------------------------------

def test_choose_prefers_json_and_vtt_over_srt_html_text():
    links = [Link("a.txt", "text/plain"), Link("a.html", "text/html"), Link("a.srt", "application/x-subrip"),
             Link("a.vtt", "text/vtt"), Link("a.json", "application/json")]
    assert choose_transcript(links).url == "a.json"
    assert choose_transcript(links[:4]).url == "a.vtt"
    assert choose_transcript(links[:3]).url == "a.srt"
    assert choose_transcript(links[:2]).url == "a.html"
    assert choose_transcript(links[:1]).url == "a.txt"


@pytest.mark.parametrize("mime", ["application/srt", "text/srt", "application/x-subrip"])
def test_srt_types(mime):
    assert format_of(mime) == "srt"


def test_choose_uses_extension_when_type_missing_or_odd():
    links = [Link("https://x/t.html", None), Link("https://x/t.srt?sig=1", "application/octet-stream")]
    assert choose_transcript(links).url == "https://x/t.srt?sig=1"


def test_choose_skips_unknown_and_returns_none_without_readable_link():
    assert choose_transcript([Link("https://x/t.pdf", "application/pdf")]) is None
    assert choose_transcript([]) is None


def test_choose_prefers_language_among_equals():
    links = [Link("de.vtt", "text/vtt", "de"), Link("en.vtt", "text/vtt", "en-US")]
    assert choose_transcript(links, language="en").url == "en.vtt"
    assert choose_transcript(links).url == "de.vtt"


# -- the four spec examples -------------------------------------------------------------------------------

def test_vtt_example_speakers_and_times():
    segments = parse_transcript(example("vtt"), "text/vtt")
    assert len(segments) == 7
    assert Counter(s.speaker for s in segments) == {"Sarah": 5, "Gillian": 2}
    assert segments[0].start == 0.0 and segments[0].end == 2.76
    assert "Q&A" in segments[2].text  # entity decoded
    assert all("<" not in s.text for s in segments)


def test_srt_and_html_of_the_same_episode_agree():
    srt_segments = parse_transcript(example("srt"), "application/x-subrip")
    html_segments = parse_transcript(example("html"), "text/html")
    assert set(s.speaker for s in srt_segments) == {"Travis", "Sarah", "Gilon"}
    assert [speaker for speaker, _ in turns(srt_segments)] == [s.speaker for s in html_segments]
    for (_, srt_start), html_segment in zip(turns(srt_segments), html_segments):
        assert abs(srt_start - html_segment.start) <= 1
    srt_words = sum(len(s.text.split()) for s in srt_segments)
    html_words = sum(len(s.text.split()) for s in html_segments)
    assert srt_words == html_words


def test_json_word_level_merged_into_sentences_with_words_kept():
    segments = parse_transcript(example("json"), "application/json")
    assert [(s.speaker, s.text) for s in segments] == [("Darth Vader", "I am your father."), ("Luke", "Nooooo")]
    assert (segments[0].start, segments[0].end) == (0.5, 2.5)
    assert [w.word for w in segments[0].words] == ["I", "am", "your", "father."]


def test_html_times_and_speakers():
    segments = parse_transcript(example("html"), "text/html")
    assert (segments[1].speaker, segments[1].start) == ("Sarah", 53.0)
    assert segments[0].end == 53.0  # a paragraph ends where the next begins
    assert "you're" in segments[0].text  # &#39; decoded


# -- corpora ----------------------------------------------------------------------------------------------

def test_twiml_vtt_without_hours():
    path = next(TWIML_VTT.glob("100_*.vtt"))
    segments = parse_transcript(path.read_bytes(), "text/vtt")
    assert segments[0].start == 0.0 and segments[0].end == 15.92
    assert segments[0].text.startswith("Hello and welcome to another episode of Twimble Talk")
    assert all(a.start <= b.start for a, b in zip(segments, segments[1:]))
    assert segments[-1].end > 60 * 10


def test_datatalks_json_speakers_and_missing_end_time():
    data = (DATATALKS / "ab-testing-and-product-experimentation.json").read_bytes()
    raw = json.loads(data)["segments"]
    segments = parse_transcript(data, "application/json")
    assert len(segments) == len(raw)  # paragraph-level: nothing merged
    assert {"Alexey", "Jakob"} <= {s.speaker for s in segments}
    assert segments[0].start == 63.0 and segments[0].end == 83.0

    no_end = next(p for p in DATATALKS.glob("*.json") if any("endTime" not in s for s in json.loads(p.read_bytes())["segments"]))
    last = parse_transcript(no_end.read_bytes(), "application/json")[-1]
    assert last.end == last.start


def test_whole_corpora_parse():
    """Every DataTalks.Club JSON file and every 20th TWIML VTT file parses; none is empty."""
    for path in sorted(DATATALKS.glob("*.json")) + sorted(TWIML_VTT.glob("*.vtt"))[::20]:
        segments = parse_transcript(path.read_bytes(), path.suffix)
        assert segments, path.name


# -- decoding and detection -------------------------------------------------------------------------------

VTT_TEXT = "WEBVTT\n\n00:01.000 --> 00:02.500\n<v Zoë>Café <b>crème</b>, s’il vous plaît\n"


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp1252"])
def test_encodings(encoding):
    data = VTT_TEXT.encode(encoding)
    [segment] = parse_transcript(data, "text/vtt")
    assert segment.speaker == "Zoë"
    assert segment.text == "Café crème, s’il vous plaît"


def test_latin1_fallback():
    assert decode_text(b"caf\xe9 \x81") == "café \x81"


def test_declared_charset_is_used():
    assert decode_text("Grüße".encode("iso-8859-15"), "iso-8859-15") == "Grüße"


def test_signature_beats_declared_type():
    assert detect_format(VTT_TEXT.encode(), "text/plain") == "vtt"
    assert detect_format(example("srt"), "text/plain") == "srt"
    assert detect_format(example("json"), "application/octet-stream") == "json"
    assert detect_format(b"Hello there.", None, url="https://x/a.html?x=1") == "html"
    assert detect_format(b"Hello there.", "https://x/t.txt") == "text"


def test_vtt_without_header_line_is_read():
    [segment] = parse_transcript(b"00:01.000 --> 00:02.000\n<v Ann>Hello\n", "text/vtt")
    assert (segment.start, segment.end, segment.speaker, segment.text) == (1.0, 2.0, "Ann", "Hello")


def test_text_starting_with_brace_is_not_taken_for_json():
    [segment] = parse_transcript(b"{music} Welcome back.", "text/plain")
    assert segment.text == "{music} Welcome back."


def test_plain_text_paragraphs_speakers_and_estimated_times():
    text = b"Sarah: Welcome to the show, everyone.\n\nToday we talk about testing.\n\nTom: Thanks for having me."
    segments = parse_transcript(text, "text/plain")
    assert [(s.speaker, s.text) for s in segments] == [
        ("Sarah", "Welcome to the show, everyone."), ("Sarah", "Today we talk about testing."),
        ("Tom", "Thanks for having me."),
    ]
    assert segments[0].start == 0 and segments[0].end == segments[1].start == 2.0  # 5 words at 2.5 words/s
    assert all(a.end <= b.start for a, b in zip(segments, segments[1:]))


def test_plain_text_times_scaled_to_duration():
    segments = parse_transcript(b"one two three four five\n\nsix seven eight nine ten", "text", duration=100)
    assert [(s.start, s.end) for s in segments] == [(0, 50), (50, 100)]


def test_plain_text_with_timestamps():
    segments = parse_transcript(b"[00:00:05] Sarah: Hello.\n\n[00:01:10] Tom: Hi.", "text/plain")
    assert [(s.start, s.end, s.speaker) for s in segments] == [(5, 70, "Sarah"), (70, 70.4, "Tom")]


def test_parse_clock():
    assert parse_clock("1:02") == 62
    assert parse_clock("01:02:03") == 3723
    assert parse_clock("00:15.920") == pytest.approx(15.92)
    assert parse_clock("soon") is None


def test_markup_whitespace_and_empty_cues():
    data = (b"1\n00:00:01,000 --> 00:00:02,000\n<i>Hello</i>   <font color=red>world</font>\n\n"
            b"2\n00:00:02,000 --> 00:00:03,000\n<i> </i>\n\n"
            b"3\n00:00:03,000 --> 00:00:04,000\nSecond\nline\n\n")
    segments = parse_transcript(data, "srt")
    assert [s.text for s in segments] == ["Hello world", "Second line"]


@pytest.mark.parametrize("data, fmt, reason", [
    (b"", "text/vtt", "empty"),
    (b"   \n\n ", "text/plain", "empty"),
    (b"not a caption file", "text/vtt", "WebVTT"),
    (b"{broken json", "application/json", "JSON"),
    (b'{"version": "1.0.0"}', "application/json", "segments"),
    (b'{"segments": [{"body": ""}]}', "application/json", "no text"),
    (b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\n", "text/vtt", "no text"),
    (b"1\n00:00:01,000 --> garbage\nhello\n", "application/srt", "SRT"),
])
def test_bad_files_raise_named_error(data, fmt, reason):
    with pytest.raises(TranscriptFormatError, match=reason):
        parse_transcript(data, fmt)


# -- fetching and saving ----------------------------------------------------------------------------------

def test_fetch_over_http_and_file(serve):
    base = serve(EXAMPLES)
    with make_client() as client:
        data, content_type = fetch_transcript_file(f"{base}/podcast-namespace_example.vtt", client)
        assert data == example("vtt") and content_type.startswith("text/vtt")
        with pytest.raises(TranscriptFetchError, match="404"):
            fetch_transcript_file(f"{base}/missing.vtt", client)
        local, local_type = fetch_transcript_file((EXAMPLES / "podcast-namespace_example.srt").as_uri(), client)
        assert local == example("srt")
        with pytest.raises(TranscriptFetchError, match="could not read"):
            fetch_transcript_file((EXAMPLES / "missing.srt").as_uri(), client)


def add_episode(db, guid="ep-1") -> int:
    show_id = db["shows"].insert({"feed_url": f"https://example.com/{guid}.xml"}).last_pk
    return db["episodes"].insert({"show_id": show_id, "guid": guid}).last_pk


FEED = TranscriptSource(source="feed", source_url="https://x/t.vtt", format="vtt", content_hash="abc")


def test_save_replaces_previous_transcript(db):
    episode_id = add_episode(db)
    save_transcript(db, episode_id, [Segment(0, 1, "old one"), Segment(1, 2, "old two")], FEED)
    words = [Word("new", 0.0, 0.5, 0.9)]
    whisper = TranscriptSource(source="whisper", format="whisper", model="tiny.en", options={"beam_size": 5})
    second = save_transcript(db, episode_id, [Segment(0, 0.5, "new", "Ann", words)], whisper)
    assert db.execute("SELECT id FROM transcripts WHERE episode_id = ?", [episode_id]).fetchone()[0] == second
    assert db.execute("SELECT count(*) FROM transcripts").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM segments").fetchone()[0] == 1
    row = db.execute("SELECT source, model, options, segment_count FROM transcripts").fetchone()
    assert row == ("whisper", "tiny.en", '{"beam_size": 5}', 1)
    assert load_segments(db, episode_id) == [Segment(0, 0.5, "new", "Ann", words)]


def test_failed_save_keeps_old_transcript(db):
    episode_id = add_episode(db)
    save_transcript(db, episode_id, [Segment(0, 1, "old")], FEED)
    with pytest.raises(Exception):
        save_transcript(db, episode_id, [Segment(0, 1, "new"), Segment(1, 2, None)], FEED)  # NOT NULL fails
    assert [s.text for s in load_segments(db, episode_id)] == ["old"]
    assert not db.conn.in_transaction


def test_kill_mid_write_leaves_old_transcript(db_path):
    db = open_db(db_path)
    episode_id = add_episode(db)
    save_transcript(db, episode_id, [Segment(0, 1, "old")], FEED)
    db.conn.close()
    script = textwrap.dedent(f"""
        import os
        from archive.db import open_db
        from archive.records import Segment, TranscriptSource
        from archive.transcript_store import save_transcript

        def segments():
            for i in range(1000):
                if i == 500:
                    os._exit(9)  # killed mid-write
                yield Segment(i, i + 1, f"new {{i}}")

        save_transcript(open_db({str(db_path)!r}), {episode_id}, segments(), TranscriptSource(source="feed"))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=os.environ.copy())
    assert result.returncode == 9
    db = open_db(db_path)
    assert [s.text for s in load_segments(db, episode_id)] == ["old"]
    assert db.execute("SELECT count(*) FROM segments").fetchone()[0] == 1


def test_save_inside_callers_transaction_is_left_to_caller(db):
    episode_id = add_episode(db)
    db.conn.execute("BEGIN")
    db.execute("INSERT INTO stages (episode_id, stage, state) VALUES (?, 'x', 'running')", [episode_id])
    save_transcript(db, episode_id, [Segment(0, 1, "text")], FEED)
    assert db.conn.in_transaction
    db.conn.rollback()
    assert load_segments(db, episode_id) == []


def test_a_cue_that_ends_before_it_starts_is_clamped_to_its_start():
    data = b"WEBVTT\n\n09:34.720 --> 09:23.360\nit is there traditional\n\n09:35.000 --> 09:40.000\nnext\n"
    first, second = parse_transcript(data, "text/vtt")
    assert first.start == 574.72 and first.end == 574.72
    assert (second.start, second.end) == (575.0, 580.0)
