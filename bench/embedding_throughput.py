"""Embedding throughput of the default embedder, and what indexing the whole TWIML corpus costs.

    .venv/bin/python bench/embedding_throughput.py [--sample 256] [--episodes 12] [--backend openvino|onnx|torch]
    .venv/bin/python bench/embedding_throughput.py --compare [--sample 1000]   # each backend against torch

1. Passages: all 537 TWIML Whisper transcripts (/work/shared/fixtures/corpus/twiml_whisper_transcripts/vtt) parsed
   and cut into passages exactly as the pipeline does; prints how many there are.
2. Throughput: the default embedder (all-MiniLM-L6-v2, its default batch; `--backend`, else the
   PODARCHIVE_EMBEDDING_BACKEND setting, openvino) on a random sample of those passages.
   bench/index_speed.py measures the whole index stage against bare embedding, in one run.
3. Cost: `--episodes` episodes of the TWIML feed go through the whole pipeline (ingest_sources: feed, transcript,
   passages, embeddings, chapters, takeaways, guests, FTS) into a fresh archive; time and database size per
   passage, multiplied by the corpus's passage count, estimate the full run (the output says it is
   extrapolated; the time includes loading the model once, a few seconds).
   bench/embed_archive.py measures the embedding part over the whole corpus.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.embeddings import SentenceTransformerEmbedder  # noqa: E402
from archive.passages import make_passages  # noqa: E402
from ingest.transcript_files import parse_transcript  # noqa: E402

TWIML = ROOT.parent / "shared" / "fixtures" / "corpus" / "twiml_whisper_transcripts"


def corpus_passages() -> list[str]:
    texts = []
    for path in sorted((TWIML / "vtt").glob("*.vtt")):
        texts.extend(p.text for p in make_passages(parse_transcript(path.read_bytes(), "text/vtt")))
    return texts


def throughput(texts: list[str], sample: int, backend: str | None = None) -> tuple[float, int]:
    embedder = SentenceTransformerEmbedder(backend=backend)
    embedder.embed(["load the model first", "and the backend's export"])
    chosen = random.Random(7).sample(texts, min(sample, len(texts)))
    started = time.perf_counter()
    embedder.embed(chosen)
    return len(chosen) / (time.perf_counter() - started), len(chosen)


def compare_backends(texts: list[str], sample: int) -> None:
    """Each backend against torch on the same random passages, their sentences and two-word phrases (what the
    index embeds: passages, takeaway statements, key phrases): rate, largest absolute difference, lowest cosine."""
    import numpy as np

    chosen = random.Random(7).sample(texts, min(sample, len(texts)))
    groups = {
        "passages": chosen,
        "sentences": [s for t in chosen for s in re.split(r"(?<=[.?!])\s+", t) if len(s.split()) > 5][:sample],
        "phrases": sorted({" ".join(pair) for t in chosen for pair in zip(t.split(), t.split()[1:])})[:sample],
    }
    embedders = {name: SentenceTransformerEmbedder(backend=name) for name in ("torch", "openvino", "onnx")}
    for embedder in embedders.values():
        embedder.embed(["load the model first", "and the backend's export"])
    for group, items in groups.items():
        line, reference = f"{group:9s} {len(items):4d} texts:", None
        for name, embedder in embedders.items():
            started = time.perf_counter()
            vectors = embedder.embed(items)
            rate = len(items) / (time.perf_counter() - started)
            line += f"  {embedder.backend_used} {rate:.1f}/s"
            if reference is None:
                reference = vectors
            else:
                line += (f" (max abs diff {np.abs(vectors - reference).max():.1e}, "
                         f"min cosine {(vectors * reference).sum(axis=1).min():.7f})")
        print(line, flush=True)


def trimmed_feed(dest: Path, count: int) -> Path:
    """The TWIML feed's first `count` items, transcript URLs made absolute (file://) so the copy reads them."""
    xml = (TWIML / "feed.xml").read_text()
    items = re.findall(r"<item>.*?</item>", xml, flags=re.S)[:count]
    head = xml.split("<item>", 1)[0]
    body = "".join(items).replace('url="vtt/', f'url="{(TWIML / "vtt").as_uri()}/')
    dest.write_text(head + body + "\n  </channel>\n</rss>\n")
    return dest


def pipeline_cost(count: int) -> dict:
    from archive.db import open_db
    from ingest.pipeline import IngestOptions, ingest_sources

    with tempfile.TemporaryDirectory() as tmp:
        feed = trimmed_feed(Path(tmp) / "feed.xml", count)
        path = Path(tmp) / "twiml.db"
        db = open_db(path)
        started = time.perf_counter()
        report = ingest_sources(db, [str(feed)], IngestOptions(media_dir=Path(tmp) / "media"))
        elapsed = time.perf_counter() - started
        passages = db.execute("SELECT count(*) FROM passages").fetchone()[0]
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.conn.close()
        size = sum(p.stat().st_size for p in Path(tmp).glob("twiml.db*"))
        return {"episodes": count, "passages": passages, "seconds": elapsed, "bytes": size,
                "failures": len(report.failures)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=256, help="passages embedded to measure throughput")
    parser.add_argument("--episodes", type=int, default=12, help="episodes run through the whole pipeline")
    parser.add_argument("--backend", default=None, help="openvino, onnx or torch (default: the setting, openvino)")
    parser.add_argument("--compare", action="store_true",
                        help="only compare each backend with torch on --sample passages (rates and differences)")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    started = time.perf_counter()
    texts = corpus_passages()
    print(f"TWIML corpus: 537 transcripts -> {len(texts)} passages, {sum(map(len, texts)) / 1e6:.1f} M characters "
          f"(parsed and cut in {time.perf_counter() - started:.0f} s)")
    if args.compare:
        compare_backends(texts, args.sample)
        return
    rate, sampled = throughput(texts, args.sample, args.backend)
    print(f"default embedder: {rate:.1f} passages/s ({sampled} random passages) "
          f"-> embeddings alone for the corpus: {len(texts) / rate / 60:.0f} min")
    cost = pipeline_cost(args.episodes)
    per_passage_s = cost["seconds"] / max(1, cost["passages"])
    per_passage_bytes = cost["bytes"] / max(1, cost["passages"])
    print(f"whole pipeline on {cost['episodes']} episodes: {cost['passages']} passages in {cost['seconds']:.0f} s, "
          f"archive {cost['bytes'] / 2**20:.1f} MiB, {cost['failures']} failures")
    print(f"EXTRAPOLATED to the whole corpus ({len(texts)} passages): "
          f"{per_passage_s * len(texts) / 3600:.1f} h of indexing, archive about "
          f"{per_passage_bytes * len(texts) / 2**20:.0f} MiB (measured: {cost['episodes']} episodes)")
    print(f"load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
