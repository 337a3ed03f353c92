"""Give an archive's passages real embeddings, timing the embedding: the load bench's archive, and the cost of
embedding the whole TWIML corpus, measured rather than extrapolated.

    .venv/bin/python bench/embed_archive.py [--backend B]  # bench/out/web_load_fake.db -> bench/out/web_load.db

bench/web_load.py's archive (the TWIML and DataTalks.Club corpora, ingested and indexed with the pipeline and the
test embedder: bench/out/web_load_fake.db) is copied to bench/out/web_load.db, where every passage gets an
all-MiniLM-L6-v2 vector: taken from the DataTalks.Club quality archive (bench/out/datatalks.db, same passages,
same content hashes) where it has one, otherwise embedded here with `archive.vectors.ensure_embeddings`, the
embeddings stage's own code, in its batches. That second part is all of TWIML's passages: it prints their number, the time
and the rate. Takeaways, chapters and topics stay those made with the test embedder (the load bench does not
judge them). The side indexes are left to be rebuilt by the first search.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from archive.db import open_db  # noqa: E402
from archive.embeddings import SentenceTransformerEmbedder  # noqa: E402
from archive.vectors import ensure_embeddings  # noqa: E402

OUT = ROOT / "bench" / "out"


def copy_archive(source: Path, target: Path) -> None:
    db = open_db(source)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.rmtree(f"{target}.index", ignore_errors=True)
    shutil.copy(source, target)


def reuse_vectors(db, donor: Path, model: str) -> int:
    db.execute("ATTACH DATABASE ? AS donor", [str(donor)])
    with db.conn:
        db.execute(
            "INSERT OR REPLACE INTO embeddings (model, content_hash, dims, vector) "
            "SELECT d.model, d.content_hash, d.dims, d.vector FROM donor.embeddings d "
            "WHERE d.model = ? AND d.content_hash IN (SELECT content_hash FROM passages)", [model])
    db.execute("DETACH DATABASE donor")
    return int(db.execute("SELECT count(*) FROM embeddings WHERE model = ?", [model]).fetchone()[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=OUT / "web_load_fake.db")
    parser.add_argument("--target", type=Path, default=OUT / "web_load.db")
    parser.add_argument("--donor", type=Path, default=OUT / "datatalks.db")
    parser.add_argument("--backend", default=None, help="openvino, onnx or torch (default: the setting, openvino)")
    args = parser.parse_args()
    embedder = SentenceTransformerEmbedder(backend=args.backend)
    copy_archive(args.source, args.target)
    db = open_db(args.target)
    with db.conn:
        db.execute("DELETE FROM embeddings WHERE model <> ?", [embedder.name])
    reused = reuse_vectors(db, args.donor, embedder.name)
    rows = list(db.query("SELECT content_hash, text FROM passages ORDER BY id"))
    missing = len({r["content_hash"] for r in rows}) - reused
    print(f"{len(rows)} passages; {reused} vectors reused from {args.donor.name}; {missing} to embed "
          f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f})", flush=True)
    embedder.embed(["load the model before the clock starts"])
    started = time.perf_counter()
    ensure_embeddings(db, rows, embedder)
    elapsed = time.perf_counter() - started
    print(f"embedded {missing} passages in {elapsed / 60:.1f} min: {missing / elapsed:.1f} passages/s, backend "
          f"{embedder.backend_used} (load average {os.getloadavg()[0]:.1f} at end)")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


if __name__ == "__main__":
    main()
