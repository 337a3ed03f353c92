"""Chapters from the notes' own structure (ingest/notes_chapters.py): timestamped lines, or the notes' sections as
placed in the audio; generated chapters only fill what the notes leave out."""

from __future__ import annotations

import pytest

from archive.records import Chapter, Takeaway
from ingest.notes_chapters import fill_gaps, notes_lines, section_chapters, timestamped_chapters

HTML_NOTES = """<p>Mohamed talks about testing.</p><p><strong>Timestamps</strong></p>
<ul><li>(00:42) Introduction and background</li><li>05:10 - Moving from research to product</li>
<li>[12:30] Testing ML models</li><li>Building Kolena – 01:02:03</li></ul><p>Links: <a href="x">site</a> 3:1</p>"""


def titles_and_starts(chapters):
    return [(c.title, c.start) for c in chapters]


def test_timestamped_lines_become_chapters_with_their_titles_as_written():
    chapters = timestamped_chapters(HTML_NOTES, duration=4000)
    assert titles_and_starts(chapters) == [("Introduction and background", 0.0),  # 0:42 is the intro: from 0
                                           ("Moving from research to product", 310.0),
                                           ("Testing ML models", 750.0), ("Building Kolena", 3723.0)]
    assert [c.end for c in chapters] == [310.0, 750.0, 3723.0, 4000]
    assert {c.source for c in chapters} == {"notes"}


def test_plain_text_notes_and_line_breaks():
    text = "Episode notes\n0:00 Welcome\n14:05 Data contracts\n27:40 Hiring\nThanks for listening"
    assert titles_and_starts(timestamped_chapters(text)) == [("Welcome", 0.0), ("Data contracts", 845.0),
                                                            ("Hiring", 1660.0)]
    assert notes_lines("<p>a<br>b</p><h3>c</h3>") == ["a", "b", "c"]


@pytest.mark.parametrize("notes, duration", [
    ("Released 12:30 today\nWe met at 9:15\n", None),  # two mentions of a time: not a table of contents
    ("00:10 A\n05:00 B\n03:00 C\n", None),  # times that go back
    ("00:10 A\n05:00 B\n59:00 C\n", 600),  # past the audio's end
    ("12:61 A\n13:70 B\n14:99 C\n", None),  # not times
    ("", None), (None, None),
])
def test_notes_that_are_not_a_table_of_contents_give_no_chapters(notes, duration):
    assert timestamped_chapters(notes, duration) == []


def test_sections_placed_in_the_audio_become_chapters_in_the_order_spoken():
    takeaways = [Takeaway("On testing ML models", "…", 95.0, None, "notes"),
                 Takeaway("On data drift", "…", None, None, "notes"),  # not placed: left out
                 Takeaway("On Kolena", "…", 300.5, None, "notes"),
                 Takeaway("On hiring", "…", 200.0, None, "notes")]  # before the one before it: left out
    chapters = section_chapters(takeaways, duration=702)
    assert titles_and_starts(chapters) == [("On testing ML models", 95.0), ("On Kolena", 300.5)]
    assert chapters[-1].end == 702


def test_generated_chapters_fill_only_a_long_stretch_the_notes_leave_out():
    generated = [Chapter("Welcome and background", 0.0, source="generated"),
                 Chapter("Early career", 150.0, source="generated"),
                 Chapter("Testing models", 400.0, source="generated")]
    late = [Chapter("On testing", 420.0, source="notes"), Chapter("On Kolena", 600.0, source="notes")]
    assert titles_and_starts(fill_gaps(late, generated, 900)) == [
        ("Welcome and background", 0.0), ("Early career", 150.0), ("On testing", 420.0), ("On Kolena", 600.0)]
    early = [Chapter("On testing", 95.0, source="notes"), Chapter("On Kolena", 300.0, source="notes")]
    assert titles_and_starts(fill_gaps(early, generated, 900)) == [
        ("Introduction", 0.0), ("On testing", 95.0), ("On Kolena", 300.0)]
    at_start = [Chapter("On testing", 20.0, source="notes")]
    assert titles_and_starts(fill_gaps(at_start, generated, 900)) == [("On testing", 0.0)]
    assert fill_gaps([], generated, 900) == generated
