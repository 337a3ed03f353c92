"""The readable transcript (archive/transcript_reading.py): whole sentences, paragraphs, anchors for every second."""

from archive.records import Segment, Word
from archive.transcript_reading import (
    ReadingOptions, anchor_second, reading_paragraphs, reading_sentences, sentence_at,
)
from archive.transcript_store import decode_words, encode_words

# Whisper's cut: a line every few seconds, mid-sentence (Datacast episode 70's opening, as tiny.en heard it)
WHISPER = [
    Segment(0.0, 4.8, "Originally from Egypt, I joined", "Mohamed Elgendy"),
    Segment(4.8, 9.6, "an engineering oriented university after high school. After the first", "Mohamed Elgendy"),
    Segment(9.6, 14.0, "year, I was thinking about Dr. Smith's advice.", "Mohamed Elgendy"),
]


def texts(paragraphs):
    return [[sentence.text for sentence in paragraph.sentences] for paragraph in paragraphs]


def test_a_sentence_cut_across_segments_is_joined_and_a_segment_holding_two_is_split():
    sentences = reading_sentences(WHISPER)
    assert [s.text for s in sentences] == [
        "Originally from Egypt, I joined an engineering oriented university after high school.",
        "After the first year, I was thinking about Dr. Smith's advice.",  # "Dr." does not end it
    ]
    # timed from the segments: the first starts with the first segment, the second inside the second segment
    assert sentences[0].start == 0.0 and 4.8 < sentences[0].end < sentences[1].start < 9.6
    assert sentences[1].end == 14.0
    assert not sentences[0].word_timed


def test_word_times_are_used_when_they_spell_the_text_and_ignored_when_a_correction_changed_it():
    words = [Word(" Hello", 1.0, 1.4), Word(" there.", 1.5, 2.0), Word(" How", 3.1, 3.3), Word(" are", 3.3, 3.5),
             Word(" you?", 3.5, 4.0)]
    timed = reading_sentences([Segment(1.0, 4.0, "Hello there. How are you?", "Ann", words)])
    assert [(s.text, s.start, s.end) for s in timed] == [("Hello there.", 1.0, 2.0), ("How are you?", 3.1, 4.0)]
    assert all(s.word_timed for s in timed) and [w.start for w in timed[1].words] == [3.1, 3.3, 3.5]
    corrected = reading_sentences([Segment(1.0, 4.0, "Hello there. Who are you?", "Ann", words)])
    assert not any(s.word_timed for s in corrected) and corrected[1].text == "Who are you?"
    # words as the store keeps them come back the same way
    stored = Segment(1.0, 4.0, "Hello there. How are you?", "Ann", decode_words(encode_words(words)))
    assert [s.start for s in reading_sentences([stored])] == [1.0, 3.1]


def test_paragraphs_break_at_speaker_turns_and_name_the_speaker_only_when_it_changes():
    segments = [
        Segment(0.0, 3.0, "Welcome to the show. Today my guest", "James Le"),
        Segment(3.0, 6.0, "is Mohamed.", "James Le"),
        Segment(6.0, 9.0, "Thanks for having me. It is", "Mohamed Elgendy"),
        Segment(9.0, 12.0, "great to be here.", "Mohamed Elgendy"),
    ]
    paragraphs = reading_paragraphs(segments)
    assert texts(paragraphs) == [["Welcome to the show.", "Today my guest is Mohamed."],
                                 ["Thanks for having me.", "It is great to be here."]]
    assert [(p.speaker, p.speaker_changed, p.start) for p in paragraphs] == [
        ("James Le", True, 0.0), ("Mohamed Elgendy", True, 6.0)]
    # a speaker change ends a sentence even without punctuation
    unpunctuated = [Segment(0, 2, "so what do you", "A"), Segment(2, 4, "think about that", "B")]
    assert texts(reading_paragraphs(unpunctuated)) == [["so what do you"], ["think about that"]]


def test_paragraphs_break_after_a_long_pause_and_after_about_a_minute_but_never_mid_sentence():
    paused = [Segment(0, 4, "First thought here.", "A"), Segment(4, 8, "Still the first.", "A"),
              Segment(11, 14, "After a pause.", "A")]
    paragraphs = reading_paragraphs(paused)
    assert texts(paragraphs) == [["First thought here.", "Still the first."], ["After a pause."]]
    assert not paragraphs[1].speaker_changed, "the same speaker is not named again"
    # a monologue: 5 s lines, a sentence every two lines (cut mid-sentence by every line)
    monologue = [Segment(i * 5.0, i * 5.0 + 5, f"part {i} of the idea" + ("." if i % 2 else ""), "Ann")
                 for i in range(40)]
    paragraphs = reading_paragraphs(monologue)
    assert [p.start for p in paragraphs] == [0, 60, 120, 180]  # 200 s: three full minutes and the rest
    for paragraph in paragraphs:
        assert paragraph.text.startswith("part ") and paragraph.text.endswith(".")
        assert all(sentence.text.endswith(".") for sentence in paragraph.sentences)
    assert [p.speaker_changed for p in paragraphs] == [True, False, False, False]


def test_a_topic_break_starts_a_paragraph_at_the_nearest_sentence():
    segments = [Segment(i * 4.0, i * 4.0 + 4, f"Sentence {i}.", "Ann") for i in range(8)]
    assert [p.start for p in reading_paragraphs(segments, breaks=[13.0])] == [0.0, 12.0]
    assert [p.start for p in reading_paragraphs(segments, breaks=[15.5])] == [0.0, 16.0]  # 0.5 s before it


def test_a_runaway_sentence_without_punctuation_ends_at_a_segment_boundary():
    segments = [Segment(i * 10.0, i * 10.0 + 10, "and then we kept talking without any full stop", "A")
                for i in range(6)]
    sentences = reading_sentences(segments, ReadingOptions(max_sentence_seconds=30))
    assert [(s.start, s.end) for s in sentences] == [(0.0, 30.0), (30.0, 60.0)]


def test_every_second_a_link_can_name_has_one_sentence_and_it_is_the_one_spoken_then():
    segments = [
        Segment(0.0, 2.2, "One.", "A"),
        Segment(2.2, 2.8, "Two.", "A"),  # starts in second 2, as does nothing else
        Segment(2.8, 6.5, "Three starts in second two as well.", "A"),
        Segment(9.4, 12.0, "Four after a pause.", "B"),
    ]
    paragraphs = reading_paragraphs(segments)
    sentences = [s for p in paragraphs for s in p.sentences]
    owned = [second for s in sentences for second in s.anchors]
    assert owned == list(range(13)), "every second from 0 to the end, once, in order"
    anchors = {s.text: s.anchors for s in sentences}
    assert anchors["One."] == [0, 1]
    assert anchors["Two."] == [2], "the first sentence starting in a second owns it"
    assert anchors["Three starts in second two as well."] == [3, 4, 5, 6, 7, 8], "spoken then (and in the pause)"
    assert anchors["Four after a pause."] == [9, 10, 11, 12]
    # a link's time -> its anchor, kept in range; and the sentence it lands on
    assert anchor_second(paragraphs, 9.9) == 9 and anchor_second(paragraphs, 500) == 12
    assert anchor_second(paragraphs, -3) == 0 and anchor_second([], 5) is None
    assert sentence_at(paragraphs, 5.0) == (0, 2) and sentence_at(paragraphs, 9.4) == (1, 0)


def test_anchors_on_a_real_transcript_cover_every_second(tmp_path):
    from web_fixtures import read_dtc_episode

    segments, chapters = read_dtc_episode("ab-testing-and-product-experimentation")
    paragraphs = reading_paragraphs(segments, [chapter["start"] for chapter in chapters])
    sentences = [s for p in paragraphs for s in p.sentences]
    assert [second for s in sentences for second in s.anchors] == list(range(int(sentences[-1].end) + 1))
    # nothing lost or reordered: the words read back are the segments' words
    assert " ".join(s.text for s in sentences).split() == " ".join(seg.text for seg in segments).split()
    assert all(p.end - p.start < 200 for p in paragraphs)
    # a sentence owns the seconds after it starts (the first one also those before the talking starts)
    for sentence in sentences[1:]:
        for second in sentence.anchors[1:]:
            assert sentence.start < second + 1
    # this feed's lines are speaker turns already: each turn stays one paragraph unless it runs past a minute
    turns = sum(1 for a, b in zip(segments, segments[1:]) if a.speaker != b.speaker) + 1
    assert turns <= len(paragraphs) <= len(segments) + sum(int((s.end - s.start) // 60) for s in segments)
