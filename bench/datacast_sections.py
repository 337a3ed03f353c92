"""Does a question about Datacast Episode 70 land in the right section of the episode?

The Datacast feed (../shared/fixtures/datacast/feed.xml: Episode 70, 11 min 42 s of real audio, notes with eleven
"On ..." sections) goes through the real pipeline: Whisper tiny.en with the default options, understanding (the
notes' sections become takeaways placed on the transcript) and the index, into bench/out/datacast.db (built once,
about two minutes on two cores). Where each section is spoken comes from the audio, not from the notes: the text that
was read aloud (episode-070-audio-reference.txt) is aligned word by word to Whisper's transcript (difflib), and a
section runs from its heading's first aligned word to the next heading's.

The questions below were written from the reference text before this benchmark first ran, and nothing was tuned on
them. Each names the section that answers it; `named` ones name something specific to the episode (a company, a
product, a publisher). A result is in a section when the middle of its time span is (results are passages of about
45 s, takeaways and chapters placed on the transcript). A question lands when its first result is in the right
section. Printed per mode: landed questions, how many of those first results also start no more than GRACE seconds
before the section (the listener hears its start and little of the section before), and the MRR of the first
result in the right section.

    .venv/bin/python bench/datacast_sections.py [--verbose]
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.db import open_db  # noqa: E402
from archive.query_embedding import get_embedder  # noqa: E402
from archive.search import MODES, search  # noqa: E402
from archive.transcript_store import load_segments  # noqa: E402

DATACAST = ROOT.parent / "shared" / "fixtures" / "datacast"
ARCHIVE = ROOT / "bench" / "out" / "datacast.db"
GRACE = 5.0
AUDIO_SECONDS = 702.0  # episode-070.mp3

# (question, section title as the reference text heads it, kind)
QUESTIONS = [
    ("how do you test machine learning models before they ship", "On ML Testing Infrastructure", "topical"),
    ("breaking a test set into slices by model behaviour", "On ML Testing Infrastructure", "topical"),
    ("Amazon leadership principles", "On Amazon Culture and Leadership Principles", "named"),
    ("what is Kolena", "On Incubating Kolena", "named"),
    ("VP of engineering at Rakuten", "On Incubating Kolena", "named"),
    ("writing a book for Manning", "On Writing “Deep Learning For Vision Systems", "named"),
    ("Twilio Understand NLP product", "On Being an Engineering Manager at Twilio", "named"),
    ("X-ray images at airport security checkpoints", "On Building Computer Vision System at Synapse", "named"),
    ("labeling data with an offshore team", "On Data Labeling Challenges", "topical"),
    ("studying biomedical engineering", "On Studying Biomedical Engineering in Egypt", "topical"),
    ("why get an MBA instead of a master's in engineering", "On Moving To The US", "topical"),
    ("why teaching is worth it even if you do not enjoy it", "On The Benefits of Teaching", "topical"),
]


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("’", "'"))


def build(path: Path = ARCHIVE, rebuild: bool = False):
    """The archive of the Datacast feed, made by the real pipeline (once; reused after, unless `rebuild`). Prints
    the time from feed to searchable (fetch, download, Whisper, speaker turns, index) against the audio's length."""
    from ingest.pipeline import IngestOptions, ingest_sources

    path.parent.mkdir(parents=True, exist_ok=True)
    if rebuild:
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), Path(f"{path}.index")):
            if stale.is_dir():
                import shutil

                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
    db = open_db(path)
    if db.execute("SELECT count(*) FROM passages").fetchone()[0] == 0:
        started = time.perf_counter()
        report = ingest_sources(db, [str(DATACAST / "feed.xml")],
                                IngestOptions(media_dir=path.parent / "datacast-media"))
        if report.failures:
            raise SystemExit(f"ingest failed: {report.failures}")
        took = time.perf_counter() - started
        print(f"built {path.relative_to(ROOT)}: feed to searchable in {took:.1f} s for {AUDIO_SECONDS:.0f} s of audio "
              f"({AUDIO_SECONDS / took:.1f}x real time)")
    return db


def section_spans(segments, reference: str) -> dict[str, tuple[float, float]]:
    """Each "On ..." heading of the read text -> (start, end) in the audio, by aligning the read words to the
    transcript's words; a word's time is interpolated within its segment."""
    timed: list[tuple[str, float]] = []
    for segment in segments:
        tokens = words(segment.text)
        for i, token in enumerate(tokens):
            timed.append((token, segment.start + (segment.end - segment.start) * i / max(len(tokens), 1)))
    spoken = [token for token, _ in timed]
    read, heading_at = [], {}
    for line in (line.strip() for line in reference.splitlines()):
        if line.startswith("On ") and len(line.split()) <= 10:
            heading_at[" ".join(line.split())] = len(read)  # a no-break space in a heading reads as a space
        read.extend(words(line))
    matcher = difflib.SequenceMatcher(None, read, spoken, autojunk=False)
    aligned: dict[int, int] = {}
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            aligned[block.a + k] = block.b + k
    starts = {}
    for heading, index in heading_at.items():
        following = next(i for i in range(index, len(read)) if i in aligned)  # the first heard word from there
        starts[heading] = timed[aligned[following]][1]
    ordered = sorted(starts.items(), key=lambda item: item[1])
    end_of_audio = segments[-1].end
    return {heading: (start, ordered[i + 1][1] if i + 1 < len(ordered) else end_of_audio)
            for i, (heading, start) in enumerate(ordered)}


def report_moments(db, episode_id: int, spans: dict[str, tuple[float, float]]) -> None:
    """Where the notes' takeaways and the chapters start against where their section starts being read: the
    listener should hear the section's first words (start at most GRACE seconds before, never after)."""
    def heading_of(title: str) -> str | None:
        key = words(title)[:4]
        return next((h for h in spans if words(h)[:4] == key), None)

    for table in ("takeaways", "chapters"):
        rows = list(db.query(f"SELECT title, start FROM {table} WHERE episode_id = ? ORDER BY idx", [episode_id]))
        errors = [(row["title"], row["start"] - spans[h][0]) for row in rows
                  if row["start"] is not None and (h := heading_of(row["title"])) and spans[h][0] > 1]
        within = sum(1 for _, e in errors if -GRACE <= e <= 0)
        late = [f"{title} +{e:.1f} s" for title, e in errors if e > 0]
        print(f"moments, {table}: {len(errors)} match a section; {within} start within {GRACE:.0f} s before it, "
              f"{len(late)} after it{': ' + '; '.join(late) if late else ''} "
              f"(offsets {', '.join(f'{e:+.1f}' for _, e in errors)} s)")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="print each question's first result")
    parser.add_argument("--rebuild", action="store_true", help="make the archive again with the current pipeline")
    args = parser.parse_args(argv)
    db = build(rebuild=args.rebuild)
    episode_id = db.execute("SELECT id FROM episodes WHERE guid LIKE 'datacast-070%' "
                            "AND guid NOT LIKE '%short%'").fetchone()[0]
    spans = section_spans(load_segments(db, episode_id),
                          (DATACAST / "episode-070-audio-reference.txt").read_text(encoding="utf-8"))
    report_moments(db, episode_id, spans)
    embedder = get_embedder()
    print(f"{len(QUESTIONS)} questions, {len(spans)} sections heard; a question lands when the middle of its first "
          f"result is in the right section")
    for mode in MODES:
        landed = {"named": [0, 0], "topical": [0, 0]}
        ranks, on_time = [], 0
        for question, heading, kind in QUESTIONS:
            start, end = spans[heading]
            results = search(db, question, mode=mode, limit=10, embedder=embedder)
            rank = next((i for i, r in enumerate(results, 1)
                         if r.episode_id == episode_id and start <= (r.start + max(r.end, r.start)) / 2 < end), None)
            ranks.append(rank)
            landed[kind][0] += rank == 1
            landed[kind][1] += 1
            on_time += rank == 1 and results[0].start >= start - GRACE
            if args.verbose:
                top = results[0] if results else None
                where = f"{top.kind:8} {top.start:6.1f}-{top.end:6.1f} s" if top else "no result"
                print(f"  {mode:8} {'ok ' if rank == 1 else 'MISS'} rank {rank or '-':>2}  {where}  "
                      f"section {start:6.1f}-{end:6.1f} s  {question}")
        total = sum(n for n, _ in landed.values())
        mrr = sum(1 / r for r in ranks if r) / len(ranks)
        print(f"{mode:8}: first result in the right section {total}/{len(QUESTIONS)} "
              f"(named {landed['named'][0]}/{landed['named'][1]}, topical {landed['topical'][0]}/"
              f"{landed['topical'][1]}), {on_time} of them starting at most {GRACE:.0f} s early; "
              f"MRR of the right section {mrr:.3f}")


if __name__ == "__main__":
    main()
