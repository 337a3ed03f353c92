"""How many of a human's takeaways do the generated ones cover? Datacast Episode 70, its notes withheld.

The transcript is the text read aloud for episode-070.mp3 (the reference), split into sentences with synthetic
times spread over the audio's 702 s in proportion to their length (default), or Whisper tiny.en's transcript of
the audio (--whisper, about 40-100 s on two cores). Takeaways are generated offline from it, as for an episode
whose notes have none, and compared with the 11 "On ..." sections of the notes' Key Takeaways:

* text coverage: each generated takeaway is matched to the human section it is most similar to (cosine of
  all-MiniLM-L6-v2 embeddings of its text and of the section's title + text); a match counts when the cosine is
  at least --threshold (0.5). A section is covered when some generated takeaway matches it.
* time coverage (reference transcript only, where each section's time span is known exactly): a section is
  covered when a generated takeaway starts inside its span; and, for each section covered by text, how far
  the start of the first takeaway matching it lies from the section's start (the time error).
* precision: the share of generated takeaways that match some human section.
* cost: the seconds `offline_takeaways` takes once the model is loaded and the passages are embedded, and how
  many texts it embeds (sentences scored, then titles' key phrases). Noisy on a shared machine: rerun it.

Usage: .venv/bin/python bench/takeaway_coverage.py [--whisper] [--threshold 0.5] [--verbose]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from archive.embeddings import SentenceTransformerEmbedder  # noqa: E402
from archive.records import Segment  # noqa: E402
from archive.passages import make_passages, split_sentences  # noqa: E402
from ingest.notes_sections import takeaways_from_notes  # noqa: E402
from ingest.takeaways import offline_takeaways  # noqa: E402

DATACAST = ROOT.parent / "shared" / "fixtures" / "datacast"
AUDIO_SECONDS = 702.0  # episode-070.mp3 lasts 11 min 42 s


def reference_transcript(text: str, duration: float) -> tuple[list[Segment], list[tuple[str, float, float]]]:
    """Sentences of the read text as segments with times proportional to length, and each "On ..." section's
    (title, start, end). A heading read aloud ends like a sentence, as a transcript would write it."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line if re.search(r"[.!?:]$", line) else line + "." for line in lines]
    total = sum(len(line) for line in lines)
    segments, sections, clock = [], [], 0.0
    for line in lines:
        if line.startswith("On ") and len(line.split()) <= 10:
            sections.append([line.rstrip("."), clock, duration])
        for sentence in split_sentences(line):
            seconds = duration * len(sentence) / total
            segments.append(Segment(round(clock, 3), round(clock + seconds, 3), sentence))
            clock += seconds
    for current, following in zip(sections, sections[1:]):
        current[2] = following[1]
    return segments, [tuple(s) for s in sections]


def whisper_transcript() -> list[Segment]:
    from ingest.transcribe import TranscriptionOptions, transcribe_file

    segments, _ = transcribe_file(DATACAST / "episode-070.mp3", TranscriptionOptions(beam_size=1))
    return segments


def notes_sections() -> list[tuple[str, str]]:
    feed = (DATACAST / "feed.xml").read_text(encoding="utf-8")
    html = re.search(r"<content:encoded><!\[CDATA\[(.*?)\]\]>", feed, re.S).group(1)
    return takeaways_from_notes(html)


class CountingEmbedder:
    """Counts the texts embedded through it."""

    def __init__(self, inner):
        self.inner, self.name, self.texts = inner, inner.name, 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.embed(texts)


def time_errors(generated, similarity: np.ndarray, spans, threshold: float) -> list[float | None]:
    """For each section, the start of the first takeaway whose best text match it is (cosine >= threshold)
    minus the section's start; None for a section no takeaway matches."""
    errors: list[float | None] = [None] * len(spans)
    for i in sorted(range(len(generated)), key=lambda i: generated[i].start or 0):
        j = int(similarity[i].argmax())
        if similarity[i, j] >= threshold and errors[j] is None and generated[i].start is not None:
            errors[j] = generated[i].start - spans[j][1]
    return errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--whisper", action="store_true", help="transcribe the audio with tiny.en instead")
    parser.add_argument("--threshold", type=float, default=0.5, help="cosine a text match needs (0.5)")
    parser.add_argument("--verbose", action="store_true", help="print each generated takeaway")
    args = parser.parse_args()

    segments, spans = reference_transcript((DATACAST / "episode-070-audio-reference.txt").read_text(), AUDIO_SECONDS)
    if args.whisper:
        began = time.perf_counter()
        segments = whisper_transcript()
        print(f"whisper tiny.en: {len(segments)} segments in {time.perf_counter() - began:.1f} s")
        spans = None  # Whisper's clock is not the synthetic one

    embedder = CountingEmbedder(SentenceTransformerEmbedder())
    passages = make_passages(segments)
    vectors = embedder.embed([p.text for p in passages])  # the index stage's work, and the model's loading
    embedder.texts = 0
    began = time.perf_counter()
    generated = offline_takeaways(passages, vectors, embedder, segments=segments)
    seconds = time.perf_counter() - began
    embedded = embedder.texts

    human = notes_sections()
    human_vectors = embedder.embed([f"{title}. {text}" for title, text in human])
    similarity = embedder.embed([t.text for t in generated]) @ human_vectors.T
    best = similarity.argmax(axis=1)
    text_covered = {int(best[i]) for i in range(len(generated)) if similarity[i, best[i]] >= args.threshold}

    if args.verbose:
        for i, takeaway in enumerate(generated):
            print(f"  [{takeaway.start:6.1f}] {takeaway.title} -> {human[best[i]][0]} "
                  f"(cos {similarity[i, best[i]]:.2f})\n      {takeaway.text[:140]}")
    print(f"transcript: {'whisper tiny.en' if args.whisper else 'reference text, synthetic times'}; "
          f"{len(passages)} passages; {len(generated)} takeaways generated in {seconds:.2f} s "
          f"({embedded} texts embedded)")
    print(f"text coverage (cosine >= {args.threshold}, best-matching section): "
          f"{len(text_covered)}/{len(human)} human sections")
    if spans is not None:
        time_covered = {i for i, (_, start, end) in enumerate(spans)
                        for t in generated if t.start is not None and start <= t.start < end}
        print(f"time coverage (a takeaway starts inside the section): {len(time_covered)}/{len(spans)} human sections")
        errors = time_errors(generated, similarity, spans, args.threshold)
        for (title, start, _), error in zip(spans, errors):
            if error is not None:
                print(f"  {title[:50]:50s} starts {start:6.1f} s; its takeaway {error:+6.1f} s")
        found = [abs(e) for e in errors if e is not None]
        if found:
            print(f"time error over the {len(found)} covered sections: median {np.median(found):.1f} s, "
                  f"max {max(found):.1f} s")
    precision = float(np.mean(similarity.max(axis=1) >= args.threshold)) if len(generated) else 0.0
    print(f"generated takeaways matching some human section: {precision:.0%}")


if __name__ == "__main__":
    main()
