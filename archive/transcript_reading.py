"""A transcript for reading: whole sentences grouped into paragraphs, every sentence (and word) timed.

The store keeps a transcript as Whisper (or the feed) cut it: lines of a few seconds that break mid-sentence
(archive/transcript_store.py `load_segments`). `reading_paragraphs` turns them into what a reader wants:

* **Sentences kept whole.** The segments' text is read as one stream of words per speaker; a sentence cut
  across segments is joined, and a segment holding two sentences is split (`archive.passages.split_sentences`
  decides where a sentence ends, minding abbreviations and initials). A sentence with no end in sight (a
  transcript without punctuation) closes at a segment boundary once it is `max_sentence_seconds` long.
* **Timed.** Each word takes its time from the segment's word timings when it has them (and they still match
  the text: a producer's correction of the line leaves stale words, which are then not used); else its time is
  interpolated from its position in the segment's text. A sentence runs from its first word's start to its last
  word's end.
* **Paragraphs** break at a sentence boundary when the speaker changes, after a pause of `pause_seconds`, when
  the paragraph has run `paragraph_seconds`, or at a topic shift when one is given (`breaks`: chapter starts).
* **Anchors.** `#t<second>` links (search hits, takeaways, chapters, shared moments: /episodes/1?t=619#t619)
  must land on the sentence being spoken at that second, with or without JavaScript. Every whole second from 0 to
  the transcript's end has one owner (`Sentence.anchors`): the first sentence starting in that second, else the
  sentence being spoken then (the last to start before it). The page gives each owned second an id.

Pure functions over Segment records: no database, no web.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

from archive.passages import split_sentences
from archive.records import Segment


@dataclass(frozen=True)
class ReadingOptions:
    pause_seconds: float = 2.0  # a silence this long between sentences starts a new paragraph
    paragraph_seconds: float = 60.0  # a paragraph this long ends at the next sentence boundary
    max_sentence_seconds: float = 30.0  # an unpunctuated run this long ends at the next segment boundary
    break_tolerance: float = 1.5  # a topic break (chapter start) moves to a sentence starting this close before it


@dataclass(slots=True)
class ReadingWord:
    text: str
    start: float
    end: float
    timed: bool  # from the transcript's word timings (True) or interpolated from the segment's text (False)


@dataclass
class Sentence:
    words: list[ReadingWord]
    speaker: str | None
    anchors: list[int] = field(default_factory=list)  # the whole seconds whose #t links land here

    @property
    def start(self) -> float:
        return self.words[0].start

    @property
    def end(self) -> float:
        return self.words[-1].end

    @property
    def text(self) -> str:
        return " ".join(word.text for word in self.words)

    @property
    def word_timed(self) -> bool:
        return all(word.timed for word in self.words)


@dataclass
class Paragraph:
    sentences: list[Sentence]
    speaker: str | None
    speaker_changed: bool = False  # the speaker is named (known, and not the previous paragraph's)

    @property
    def start(self) -> float:
        return self.sentences[0].start

    @property
    def end(self) -> float:
        return self.sentences[-1].end

    @property
    def text(self) -> str:
        return " ".join(sentence.text for sentence in self.sentences)


def _segment_words(segment: Segment) -> list[ReadingWord]:
    """A segment's words with times: its word timings when they spell its text, else interpolated."""
    texts = segment.text.split()
    if not texts:
        return []
    start, end = float(segment.start), max(float(segment.end), float(segment.start))
    if segment.words:
        timed = [(w.word.strip(), float(w.start), float(w.end)) for w in segment.words if w.word.strip()]
        if [text for text, _, _ in timed] == texts:
            return [ReadingWord(text, w_start, max(w_start, w_end), True) for text, w_start, w_end in timed]
    total = sum(len(text) for text in texts) + len(texts) - 1
    words, offset = [], 0
    for text in texts:
        words.append(ReadingWord(text, start + (end - start) * offset / total,
                                 start + (end - start) * (offset + len(text)) / total, False))
        offset += len(text) + 1
    return words


_MAY_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def _ends_sentence(word: ReadingWord, following: ReadingWord) -> bool:
    if not _MAY_END.search(word.text):  # most words: no need to ask split_sentences
        return False
    return len(split_sentences(f"{word.text} {following.text}")) == 2


def reading_sentences(segments: list[Segment], options: ReadingOptions = ReadingOptions()) -> list[Sentence]:
    """The segments' words as whole sentences, in order (a speaker change always ends one)."""
    flat: list[tuple[ReadingWord, str | None, bool]] = []  # word, speaker, last of its segment
    for segment in segments:
        words = _segment_words(segment)
        speaker, last = segment.speaker or None, len(words) - 1
        flat.extend((word, speaker, number == last) for number, word in enumerate(words))
    sentences: list[Sentence] = []
    current: list[ReadingWord] = []
    for index, (word, speaker, segment_end) in enumerate(flat):
        current.append(word)
        if index + 1 < len(flat):
            following, following_speaker, _ = flat[index + 1]
            runaway = segment_end and word.end - current[0].start >= options.max_sentence_seconds
            if following_speaker == speaker and not runaway and not _ends_sentence(word, following):
                continue
        sentences.append(Sentence(current, speaker))
        current = []
    return sentences


def _new_paragraph(paragraph: Paragraph, sentence: Sentence, previous: Sentence, breaks: list[float],
                   options: ReadingOptions) -> bool:
    if sentence.speaker != paragraph.speaker:
        return True
    if sentence.start - previous.end >= options.pause_seconds:
        return True
    if sentence.start - paragraph.start >= options.paragraph_seconds:
        return True
    # a topic break at this sentence's start or since the previous one's (each window shifted by the tolerance,
    # so every break falls in exactly one)
    tolerance = options.break_tolerance
    first_after = bisect_right(breaks, previous.start + tolerance)
    return first_after < len(breaks) and breaks[first_after] <= sentence.start + tolerance


def reading_paragraphs(segments: list[Segment], breaks: list[float] | None = None,
                       options: ReadingOptions = ReadingOptions()) -> list[Paragraph]:
    """The transcript as paragraphs of whole sentences, with each second's anchor assigned (see the module doc).
    `breaks`: times of topic shifts (chapter starts), each starting a paragraph at the nearest sentence."""
    points = sorted(float(point) for point in breaks or [] if point and point > 0)
    paragraphs: list[Paragraph] = []
    previous: Sentence | None = None
    for sentence in reading_sentences(segments, options):
        if previous is None or _new_paragraph(paragraphs[-1], sentence, previous, points, options):
            named = bool(sentence.speaker) and (not paragraphs or paragraphs[-1].speaker != sentence.speaker)
            paragraphs.append(Paragraph([], sentence.speaker, named))
        paragraphs[-1].sentences.append(sentence)
        previous = sentence
    assign_anchors([sentence for paragraph in paragraphs for sentence in paragraph.sentences])
    return paragraphs


def assign_anchors(sentences: list[Sentence]) -> None:
    """Give every whole second from 0 to the last sentence's end one owner: the first sentence starting in that
    second, else the last sentence starting before it (the first sentence owns the seconds before it starts)."""
    for sentence in sentences:
        sentence.anchors = []
    if not sentences:
        return
    last_second = int(max(sentences[-1].end, sentences[-1].start))
    index = 0
    for second in range(last_second + 1):
        # advance to the last sentence starting before second + 1 ...
        while index + 1 < len(sentences) and sentences[index + 1].start < second + 1:
            index += 1
        owner = index
        # ... then back to the first sentence that starts within this second, if several do
        while owner > 0 and int(sentences[owner - 1].start) == second:
            owner -= 1
        sentences[owner].anchors.append(second)


def anchor_second(paragraphs: list[Paragraph], seconds: float | None) -> int | None:
    """The whole second a link to `seconds` names, kept within the anchored range (None without a transcript)."""
    if seconds is None or not paragraphs:
        return None
    return min(max(0, int(seconds)), last_anchor(paragraphs))


def last_anchor(paragraphs: list[Paragraph]) -> int | None:
    """The last whole second with an anchor (None without a transcript): links to later times land there."""
    if not paragraphs:
        return None
    last = paragraphs[-1].sentences[-1]
    return last.anchors[-1] if last.anchors else int(last.start)


def sentence_at(paragraphs: list[Paragraph], seconds: float) -> tuple[int, int] | None:
    """(paragraph index, sentence index) of the sentence whose anchors hold `seconds` (clamped to the range)."""
    second = anchor_second(paragraphs, seconds)
    if second is None:
        return None
    for p_index, paragraph in enumerate(paragraphs):
        for s_index, sentence in enumerate(paragraph.sentences):
            if sentence.anchors and sentence.anchors[0] <= second <= sentence.anchors[-1]:
                return p_index, s_index
    return None
