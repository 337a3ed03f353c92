"""What the index stage costs beside its floor, bare embedding, measured in one run on TWIML.

    .venv/bin/python bench/index_speed.py [--episodes 40] [--backend openvino|onnx|torch] [--profile out.prof]
    .venv/bin/python bench/index_speed.py --all        # the whole corpus end to end (ingest + index), then the floor

The first `--episodes` episodes of the TWIML feed (537 WebVTT transcripts, /work/shared/fixtures/corpus/
twiml_whisper_transcripts; `--all`: every one) are ingested over a local HTTP server into a fresh archive with
the real embedder (all-MiniLM-L6-v2, the backend `--backend` names, else PODARCHIVE_EMBEDDING_BACKEND), index
stage included, as `podarchive ingest` does; the clock includes loading the model (and exporting it, the first
time). The index stage's time is split into its sub-stages (passages, embeddings, chapters, takeaways, guests,
search indexes; topics is the topic segmentation and key phrases the phrase re-ranking inside chapters and
takeaways, and "model calls" the embedder's time within each), by timing the stage functions in place. Then,
in the same process, the same distinct passage texts are embedded with bare `SentenceTransformer.encode` (torch,
its default batch of 32, model loaded before the clock starts): the floor. It prints the index stage time over
that floor (the issue's target: 1.3 or less) and, with `--all`, the whole run against the 20 min target (the
floor then takes about as long again: `--no-bare` skips it).
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import re
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest_twiml import peak_rss_mb, serve  # noqa: E402

TWIML = ROOT.parent / "shared" / "fixtures" / "corpus" / "twiml_whisper_transcripts"


class Clock:
    """Seconds spent per named part, the outermost part active at a time owning the embedder's calls."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.stack: list[str] = []

    @contextmanager
    def part(self, name: str):
        self.stack.append(name)
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started
            self.calls[name] += 1
            self.stack.pop()

    def wrap(self, module, attribute: str, name: str) -> None:
        original = getattr(module, attribute)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            with self.part(name):
                return original(*args, **kwargs)

        setattr(module, attribute, timed)


class TimedEmbedder:
    """The real embedder, its calls' time and text count charged to the stage that made them."""

    def __init__(self, embedder, clock: Clock):
        self.inner, self.clock = embedder, clock
        self.name = embedder.name
        self.texts: dict[str, int] = defaultdict(int)
        self.seen: set[str] = set()
        self.repeated = 0  # texts embedded before in the run (a memo would save them)

    @property
    def dims(self) -> int:
        return self.inner.dims

    def embed(self, texts):
        owner = self.clock.stack[1] if len(self.clock.stack) > 1 else "other"
        self.texts[owner] += len(texts)
        self.repeated += sum(1 for text in texts if text in self.seen)
        self.seen.update(texts)
        if "key phrases" in self.clock.stack:
            self.texts["key phrases"] += len(texts)
        with self.clock.part(f"model calls in {owner}"):
            if "key phrases" in self.clock.stack:
                with self.clock.part("model calls in key phrases"):
                    return self.inner.embed(texts)
            return self.inner.embed(texts)


def instrument(clock: Clock) -> None:
    import ingest.chapter_titles
    import ingest.chapters
    import ingest.topics
    import ingest.index_run
    import ingest.takeaways
    import ingest.understand

    clock.wrap(ingest.index_run, "build_index", "index stage")
    clock.wrap(ingest.index_run, "make_episode_passages", "passages")
    clock.wrap(ingest.index_run, "embed_passages", "embeddings")
    clock.wrap(ingest.understand, "_chapters_stage", "chapters")
    clock.wrap(ingest.understand, "_takeaways_stage", "takeaways")
    clock.wrap(ingest.understand, "_guests_stage", "guests")
    clock.wrap(ingest.chapters, "topic_segments", "topics")
    clock.wrap(ingest.takeaways, "topic_segments", "topics")
    clock.wrap(ingest.index_run, "update_search_indexes", "search indexes")
    clock.wrap(ingest.topics, "_rerank_by_meaning", "key phrases")
    clock.wrap(ingest.chapter_titles, "_rerank_by_meaning", "key phrases")


def feed_folder(dest: Path, count: int | None) -> Path:
    """A folder to serve: the TWIML feed (its first `count` items) beside a link to its transcripts."""
    xml = (TWIML / "feed.xml").read_text()
    if count is not None:
        items = re.findall(r"<item>.*?</item>", xml, flags=re.S)[:count]
        xml = xml.split("<item>", 1)[0] + "".join(items) + "\n  </channel>\n</rss>\n"
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "feed.xml").write_text(xml)
    (dest / "vtt").symlink_to(TWIML / "vtt", target_is_directory=True)
    return dest


def bare_encode(texts: list[str]) -> float:
    """Seconds for plain SentenceTransformer.encode (torch) over `texts`, the model loaded beforehand."""
    from sentence_transformers import SentenceTransformer

    from archive.embeddings import DEFAULT_MODEL, model_location

    model = SentenceTransformer(model_location(DEFAULT_MODEL), device="cpu")
    model.encode(["load the model before the clock starts"], show_progress_bar=False)
    started = time.perf_counter()
    model.encode(texts, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=40, help="the first N episodes of the feed (default 40)")
    parser.add_argument("--all", action="store_true", help="every episode (537): the whole corpus, end to end")
    parser.add_argument("--backend", default=None,
                        help="embedding backend: openvino, onnx or torch (default: the setting, openvino)")
    parser.add_argument("--profile", type=Path, default=None, help="write a cProfile of the ingest to this file")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare-encode floor")
    args = parser.parse_args()

    from archive.db import open_db
    from archive.embeddings import SentenceTransformerEmbedder
    from ingest.pipeline import IngestOptions, ingest_sources

    clock = Clock()
    instrument(clock)
    embedder = TimedEmbedder(SentenceTransformerEmbedder(backend=args.backend), clock)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"embedder {embedder.name} backend {embedder.inner.backend}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        base, server = serve(feed_folder(Path(tmp) / "site", None if args.all else args.episodes))
        db = open_db(Path(tmp) / "twiml.db")
        profiler = cProfile.Profile() if args.profile else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        report = ingest_sources(db, [f"{base}/feed.xml"], IngestOptions(media_dir=Path(tmp) / "media"),
                                embedder=embedder)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile)
        total = time.perf_counter() - started
        server.shutdown()
        episodes = db["transcripts"].count
        passages = db.execute("SELECT count(*) FROM passages").fetchone()[0]
        texts = [row[0] for row in db.execute("SELECT min(text) FROM passages GROUP BY content_hash")]
        index = clock.seconds["index stage"]
        print(f"{episodes} episodes, {passages} passages ({len(texts)} distinct), failures {len(report.failures)}")
        print(f"ingest + index: {total:8.1f} s   (feed + transcripts {total - index:.1f} s, index stage {index:.1f} s)")
        for name in ("passages", "embeddings", "chapters", "takeaways", "guests", "topics", "key phrases",
                     "search indexes"):
            model = clock.seconds.get(f"model calls in {name}", 0.0)
            extra = f"  of which model calls {model:7.1f} s on {embedder.texts[name]} texts" if model else ""
            print(f"  {name:15s} {clock.seconds.get(name, 0.0):8.1f} s{extra}")
        rest = index - sum(clock.seconds.get(n, 0.0) for n in
                           ("passages", "embeddings", "chapters", "takeaways", "guests", "search indexes"))
        print(f"  {'other':15s} {rest:8.1f} s   (topics and key phrases are inside chapters and takeaways)")
        print(f"  texts embedded {sum(v for k, v in embedder.texts.items() if k != 'key phrases')}, of which "
              f"{embedder.repeated} had been embedded before in this run")
    if not args.no_bare:
        floor = bare_encode(texts)
        print(f"bare SentenceTransformer.encode (torch, batch 32) of the {len(texts)} distinct passages: {floor:.1f} s "
              f"({len(texts) / floor:.1f} passages/s)")
        print(f"RATIO index stage / bare embedding = {index / floor:.2f}  (target <= 1.3)")
    if args.all:
        print(f"WHOLE CORPUS ingest + index: {total / 60:.1f} min (target <= 20 min)")
    print(f"peak RSS {peak_rss_mb():.0f} MB; load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
