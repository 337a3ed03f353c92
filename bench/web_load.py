"""Web latency under load: the search page and the episode page, 20 concurrent clients, while an ingest writes.

The archive holds the TWIML (537 episodes) and DataTalks.Club (200 episodes) corpora, ingested once with the
pipeline into bench/out/web_load.db (kept for later runs; --rebuild makes it again). The site runs as
`podarchive serve` in its own process on loopback (with --embedder fake, this script serves it the same way in a
process of its own, handing the bench's FakeEmbedder to the app, which ships no fake). A writer process keeps
writing to the same file meanwhile (WAL mode), the way an ingest does: episodes with transcripts and segments ten
times a second, passages once a second, stage updates. Client threads (httpx) ask for search pages (a mix of
topics and modes) and episode pages (random transcribed episodes), back to back or with a think time. The run is
bounded by --requests and --max-seconds; the first requests (model load, caches) are made before the clock
starts and not counted.

Run:  .venv/bin/python bench/web_load.py [--clients 20] [--think 0] [--requests 4000] [--max-seconds 120]
      [--embedder fake --db bench/out/web_load_fake.db]   (an archive indexed with the test embedder: quick to build)
Prints p50/p95/p99/max latency and errors per page kind (search also per mode), throughput, how much the writer
wrote, the slowest requests and the side-index rebuilds that ran meanwhile.
Goal: p95 <= 100 ms and no errors.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import multiprocessing as mp
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import copy_archive  # noqa: E402
from archive.db import connect, open_db, utcnow  # noqa: E402
from fake_embedder import FakeEmbedder, bench_embedder  # noqa: E402

CORPUS = ROOT.parent / "shared" / "fixtures" / "corpus"
DEFAULT_DB = ROOT / "bench" / "out" / "web_load.db"
TOPICS = [
    "feature stores", "data drift in production", "how to become a data engineer", "A/B testing sample size",
    "reinforcement learning for robotics", "transformers and attention", "MLOps tooling", "hiring data scientists",
    "career switch from academia", "computer vision in healthcare", "recommender systems", "time series forecasting",
    "kaggle competitions", "data quality checks", "causal inference", "graph neural networks",
    "natural language processing", "self-driving cars", "model monitoring", "building a data team",
    "fairness and bias", "speech recognition", "freelancing as a data scientist", "dbt and analytics engineering",
    "GPU training at scale", "explainability of models", "startups and product management", "Bayesian statistics",
    "data mesh", "privacy and federated learning", "generative adversarial networks", "deep learning hardware",
    "open source maintainers", "interview preparation", "streaming data with kafka", "LLM evaluation",
]
MODES = ["hybrid", "hybrid", "keyword", "semantic"]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def build_archive(path: Path, embedder_name: str | None = None) -> None:
    """Ingest both corpora's feeds (over loopback HTTP, as any feed) with the pipeline, then index them with
    the given embedder ('fake' for the test embedder; default all-MiniLM-L6-v2)."""
    from ingest.index_run import build_index
    from ingest.pipeline import IngestOptions, ingest_sources

    handler = functools.partial(QuietHandler, directory=str(CORPUS))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    db = open_db(path)
    with tempfile.TemporaryDirectory() as media:
        report = ingest_sources(
            db, [f"{base}/datatalksclub_podcast/feed.xml", f"{base}/twiml_whisper_transcripts/feed.xml"],
            IngestOptions(media_dir=Path(media), index=False, progress=True),
        )
        index = build_index(db, embedder=bench_embedder(embedder_name), progress=True)
    db.conn.close()
    server.shutdown()
    print(f"built {path} in {time.perf_counter() - started:.0f} s, ingest failures: {len(report.failures)}, "
          f"index failures: {len(index.failures)}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_site(db_path: Path, embedder_name: str | None, log_path: Path,
               workers: int | None = None) -> tuple[str, subprocess.Popen]:
    port = free_port()
    if embedder_name == "fake":  # this script serves it: see serve_with_fake_embedder
        command = [sys.executable, __file__, "--db", str(db_path), "--serve-with-fake-embedder", str(port)]
    else:
        command = [str(Path(sys.executable).parent / "podarchive"), "serve", "--db", str(db_path), "--port",
                   str(port)]
        if not Path(command[0]).exists():
            command = [sys.executable, "-m", "archive.cli", *command[1:]]
    if workers:
        command += ["--workers", str(workers)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if embedder_name and embedder_name != "fake":
        env["PODARCHIVE_EMBEDDING_MODEL"] = embedder_name
    # The server logs every request: to a file, never an unread pipe (a full pipe would stall the server).
    log = open(log_path, "wb")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/", timeout=2).status_code == 200:
                return base, process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"the site did not start: {log_path.read_text(errors='replace')[-2000:]}")


def serve_with_fake_embedder(db_path: Path, port: int, workers: int | None) -> None:
    """The site as `podarchive serve --no-worker` runs it (gunicorn; werkzeug's threaded server for one worker),
    the FakeEmbedder given to create_app. No background worker: nothing is queued in this archive."""
    from archive.web import create_app

    config = {"DATABASE": str(db_path.resolve()), "EMBEDDER": FakeEmbedder()}
    workers = workers or max(2, os.cpu_count() or 1)
    if workers == 1:
        from werkzeug.serving import run_simple

        run_simple("127.0.0.1", port, create_app(config), threaded=True, use_reloader=False)
        return
    from archive.web.server import run_gunicorn

    run_gunicorn(lambda: create_app(config), "127.0.0.1", port, workers)


def writer(db_path: str, stop, counts, interval: float, passages_every: int) -> None:
    """Write like an ingest does. The transcript stage: an episode with its transcript and segments per
    transaction, every `interval` seconds. The index stage: the passages of the last `passages_every` episodes
    in one transaction (which moves the search indexes' version on)."""
    db = connect(db_path)
    show_id = db["shows"].insert({"feed_url": f"bench://writer/{os.getpid()}", "title": "Load-test writer",
                                  "created_at": utcnow()}).last_pk
    number = 0
    pending: list[tuple[int, int]] = []
    while not stop.is_set():
        number += 1
        with db.conn:
            episode_id = db["episodes"].insert({
                "show_id": show_id, "guid": f"writer-{number}", "title": f"Writer episode {number}",
                "published": utcnow(), "duration": 600.0, "created_at": utcnow(), "updated_at": utcnow(),
            }).last_pk
            transcript_id = db["transcripts"].insert({
                "episode_id": episode_id, "source": "feed", "format": "vtt", "segment_count": 60,
                "created_at": utcnow(),
            }).last_pk
            db["segments"].insert_all(
                {"transcript_id": transcript_id, "idx": i, "start": i * 10.0, "end": i * 10.0 + 9.5,
                 "text": f"segment {i} of writer episode {number} about data pipelines and model training"}
                for i in range(60)
            )
            db["stages"].upsert({"episode_id": episode_id, "stage": "transcript", "state": "done",
                                 "attempts": 1, "updated_at": utcnow()}, pk=("episode_id", "stage"))
        counts["transactions"] += 1
        counts["episodes"] += 1
        pending.append((episode_id, number))
        if len(pending) >= passages_every:
            with db.conn:
                db["passages"].insert_all(
                    {"episode_id": episode_id, "idx": i, "start": i * 60.0, "end": i * 60.0 + 59.0,
                     "text": f"passage {i} of writer episode {n} about data pipelines",
                     "content_hash": f"writer-{n}-{i}"}
                    for episode_id, n in pending for i in range(10)
                )
                db["stages"].upsert_all([
                    {"episode_id": episode_id, "stage": "passages", "state": "done", "attempts": 1,
                     "updated_at": utcnow()} for episode_id, _ in pending], pk=("episode_id", "stage"))
            counts["transactions"] += 1
            counts["passage_batches"] += 1
            pending.clear()
        time.sleep(interval)
    db.conn.close()


def pick_request(rng: random.Random, episode_ids: list[int]) -> tuple[str, str]:
    if rng.random() < 0.5:
        query = rng.choice(TOPICS)
        return "search", f"/search?{httpx.QueryParams({'q': query, 'mode': rng.choice(MODES)})}"
    return "episode", f"/episodes/{rng.choice(episode_ids)}"


def client_loop(base: str, episode_ids: list[int], seed: int, budget, deadline: float, results: list, lock,
                think: float) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=30) as client:
        while time.monotonic() < deadline:
            with lock:
                if budget[0] <= 0:
                    return
                budget[0] -= 1
            kind, url = pick_request(rng, episode_ids)
            started = time.perf_counter()
            at = time.monotonic()
            try:
                response = client.get(url)
                ok = response.status_code == 200
                detail = "" if ok else f"{response.status_code} {url}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{type(exc).__name__} {url}"
            results.append((kind, time.perf_counter() - started, ok, detail or url, at))
            if think:  # a person reads the page before the next click: 0.5 to 1.5 times `think`
                time.sleep(think * rng.uniform(0.5, 1.5))


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def report(results: list, elapsed: float) -> None:
    for kind in ("search", *(f"search/{mode}" for mode in sorted(set(MODES))), "episode", "all"):
        rows = [r for r in results if kind == "all" or r[0] == kind
                or (r[0] == "search" and kind == f"search/{_mode_of(r[3])}")]
        if not rows:
            continue
        ms = [r[1] * 1000 for r in rows]
        errors = [r[3] for r in rows if not r[2]]
        print(f"{kind:15s} n={len(rows):5d}  p50={percentile(ms, 50):6.1f} ms  p95={percentile(ms, 95):6.1f} ms  "
              f"p99={percentile(ms, 99):6.1f} ms  max={max(ms):7.1f} ms  mean={statistics.mean(ms):6.1f} ms  "
              f"errors={len(errors)}")
        for detail in sorted(set(errors))[:5]:
            print(f"          error: {detail}")
    print(f"throughput: {len(results) / elapsed:.1f} requests/s over {elapsed:.1f} s")


def _mode_of(url: str) -> str:
    return httpx.URL(url.split(" ")[-1]).params.get("mode", "hybrid")


def report_slowest(results: list, started: float, rebuilds: list, count: int = 5) -> None:
    """The slowest requests (when, what) and the side-index rebuilds the site ran meanwhile, to tell them apart."""
    for kind, seconds, _, url, at in sorted(results, key=lambda r: -r[1])[:count]:
        print(f"slow: {seconds * 1000:7.1f} ms at {at - started:5.1f} s  {url[:90]}")
    for begin, end, what in rebuilds:
        print(f"index rebuild in a child process: {begin - started:5.1f} s to {end - started:5.1f} s  ({what})")


def descendants(pid: int) -> list[int]:
    found = []
    for children in Path(f"/proc/{pid}").glob("task/*/children"):
        try:
            pids = [int(p) for p in children.read_text().split()]
        except OSError:
            continue
        for child in pids:
            found += [child, *descendants(child)]
    return found


def watch_rebuilds(site_pid: int, stop, rebuilds: list) -> None:
    """Record when the site's child processes (`python -m archive.index_refresh ...`) run."""
    running: dict[int, tuple[float, str]] = {}
    while not stop.is_set():
        seen = {}
        for pid in descendants(site_pid):
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"archive.index_refresh" in command:
                seen[pid] = b" ".join(part for part in command[-3:] if part).decode(errors="replace")
        now = time.monotonic()
        for pid, what in seen.items():
            running.setdefault(pid, (now, what))
        for pid in [p for p in running if p not in seen]:
            begin, what = running.pop(pid)
            rebuilds.append((begin, now, what))
        time.sleep(0.2)
    rebuilds.extend((begin, time.monotonic(), what + ", still running") for begin, what in running.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB, help="archive to serve (built if missing)")
    parser.add_argument("--rebuild", action="store_true", help="build the archive again")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean pause of each client between requests, in seconds (0: back to back, the "
                             "hardest case; 1: a person clicking through)")
    parser.add_argument("--requests", type=int, default=4000, help="total requests (bound)")
    parser.add_argument("--max-seconds", type=float, default=120, help="time bound of the measured run")
    parser.add_argument("--write-interval", type=float, default=0.1, help="writer's pause between episodes (s)")
    parser.add_argument("--passages-every", type=int, default=10,
                        help="the writer adds passages (the index stage) once every this many episodes")
    parser.add_argument("--no-writer", action="store_true", help="measure without the concurrent writer")
    parser.add_argument("--workers", type=int, default=None, help="`serve --workers` (default: serve's own)")
    parser.add_argument("--embedder", default=None,
                        help="embedding model of the archive and the site: a model name, or 'fake' (default: "
                             "all-MiniLM-L6-v2)")
    parser.add_argument("--serve-with-fake-embedder", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_with_fake_embedder:  # the site of a run with --embedder fake (start_site)
        serve_with_fake_embedder(args.db, args.serve_with_fake_embedder, args.workers)
        return

    if args.rebuild or not args.db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        shutil.rmtree(f"{args.db}.index", ignore_errors=True)
        build_archive(args.db, args.embedder)
    with tempfile.TemporaryDirectory() as tmp:
        # Measure on a copy: the writer's episodes never pile up in the kept archive.
        run(copy_archive(args.db, Path(tmp)), args)


def run(db_path: Path, args) -> None:
    db = connect(db_path)
    episode_ids = [row["episode_id"] for row in db.query("SELECT episode_id FROM transcripts")]
    sizes = {name: db[name].count for name in ("episodes", "segments", "passages")}
    db.conn.close()
    print(f"archive: {sizes['episodes']} episodes, {sizes['segments']} segments, {sizes['passages']} passages")
    base, site = start_site(db_path, args.embedder, db_path.parent / "site.log", args.workers)
    try:
        warm = time.perf_counter()
        for path in ("/search?q=warm+up&mode=hybrid", "/search?q=warm+up&mode=semantic",
                     f"/episodes/{episode_ids[0]}"):
            httpx.get(base + path, timeout=300).raise_for_status()
        print(f"warm-up (model load, first searches): {time.perf_counter() - warm:.1f} s, not counted")

        manager = mp.Manager()
        counts = manager.dict(transactions=0, episodes=0, passage_batches=0)
        stop = mp.Event()
        writer_process = None
        if not args.no_writer:
            writer_process = mp.Process(target=writer, args=(str(db_path), stop, counts, args.write_interval,
                                                             args.passages_every))
            writer_process.start()
            time.sleep(0.5)

        results: list = []
        rebuilds: list = []
        watching = threading.Event()
        watcher = threading.Thread(target=watch_rebuilds, args=(site.pid, watching, rebuilds), daemon=True)
        watcher.start()
        lock = threading.Lock()
        budget = [args.requests]
        started = time.monotonic()
        deadline = started + args.max_seconds
        threads = [threading.Thread(target=client_loop,
                                    args=(base, episode_ids, seed, budget, deadline, results, lock, args.think))
                   for seed in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
        watching.set()
        watcher.join(5)
        stop.set()
        if writer_process:
            writer_process.join(10)
        print(f"{args.clients} clients, think time {args.think} s, writer: "
              + ("off" if args.no_writer else f"{counts['episodes']} episodes, {counts['passage_batches']} passage "
                                              f"batches, {counts['transactions']} transactions"))
        report(results, elapsed)
        report_slowest(results, started, rebuilds)
    finally:
        site.terminate()
        site.wait(10)


if __name__ == "__main__":
    main()
