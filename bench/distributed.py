"""Transcription on Celery workers against the embedded mode, on the same episodes and the same machine.

    .venv/bin/python bench/distributed.py [--beam-size N] [--full] [--json OUT]

Episodes: the Datacast clip (53 s) and real speech clips from ../shared/fixtures/audio (JFK, three LibriVox
sonnets, four LJSpeech lines, the AMI meeting mixture), as one feed served over loopback HTTP; `--full` adds the
whole Datacast episode (702 s). Three modes, each into a fresh archive, `--no-index`:

- embedded: `ingest_sources` in this process (the single-machine default);
- 1 worker, 2 workers: `podarchive worker --concurrency 1` processes on a Redis of our own, this process the
  coordinator (`DistributedPipeline`).

The model is loaded before timing in every mode (the workers do a warm-up task first). Printed: wall seconds,
audio seconds per wall second, and the coordinator's own time per task in ms (sending, polling the result
backend every 0.2 s while tasks run, storing the result: everything but waiting), and its parts. Then a model of what N machines like this one (one worker
each) take for 1,000 hours of audio, from the measured figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, SHARED

CLIPS = [SHARED / "datacast" / "episode-070-short.mp3", SHARED / "audio" / "jfk" / "jfk.mp3",
         *sorted((SHARED / "audio" / "librivox_sonnets").glob("sonnet_p00*.mp3")),
         *sorted((SHARED / "audio" / "ljspeech").glob("LJ001-000[1-4].mp3")),
         SHARED / "audio" / "ami_meeting_mixture" / "mixture.wav"]
FULL = SHARED / "datacast" / "episode-070.mp3"
PODARCHIVE = [sys.executable, "-m", "archive.cli"]


def write_feed(folder: Path, clips: list[Path], name: str = "feed.xml") -> None:
    items = []
    for n, clip in enumerate(clips):
        target = f"{n:02d}-{clip.name}"
        shutil.copy(clip, folder / target)
        kind = "audio/wav" if clip.suffix == ".wav" else "audio/mpeg"
        items.append(f'<item><title>{clip.stem}</title><guid>{n}-{clip.stem}</guid>'
                     f'<enclosure url="{target}" type="{kind}"/></item>')
    (folder / name).write_text('<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>'
                               + "".join(items) + "</channel></rss>")


def serve(folder: Path):
    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import serve_directory

    return serve_directory(folder)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def start_workers(broker: str, n: int, folder: Path) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        log = folder / f"worker{i}.log"
        procs.append(subprocess.Popen([*PODARCHIVE, "worker", "--broker", broker, "--concurrency", "1",
                                       "--name", f"bench{i}"], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                      start_new_session=True))
    for i in range(n):
        while b"ready." not in (folder / f"worker{i}.log").read_bytes():
            time.sleep(0.1)
    return procs


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=30)


def run_embedded(feed: str, folder: Path, options) -> dict:
    from archive.db import open_db
    from ingest.pipeline import IngestOptions, ingest_sources
    from ingest.transcribe import load_whisper

    load_whisper(options)
    db = open_db(folder / "embedded.db")
    began = time.monotonic()
    report = ingest_sources(db, [feed], IngestOptions(media_dir=folder / "media-embedded", index=False,
                                                      transcription=options))
    wall = time.monotonic() - began
    assert report.ok, report.failures
    return {"wall": wall, "tasks": report.transcripts_made, "segments": segments(db)}


def run_distributed(feed: str, warm_feed: str, folder: Path, options, broker: str, n: int) -> dict:
    from archive.db import open_db
    from ingest.distributed import DistributedPipeline, make_app
    from ingest.pipeline import IngestOptions
    from ingest.transcribe import WhisperTranscriber

    app = make_app(broker)
    procs = start_workers(broker, n, folder)
    try:
        # warm-up: two tasks at once, one per worker (one task prefetched each): each loads its model untimed
        warm = open_db(folder / f"warm{n}.db")
        DistributedPipeline(warm, IngestOptions(index=False), transcriber=WhisperTranscriber(options),
                            app=app).run([warm_feed])
        db = open_db(folder / f"workers{n}.db")
        pipeline = DistributedPipeline(db, IngestOptions(index=False), transcriber=WhisperTranscriber(options),
                                       app=app)
        began = time.monotonic()
        report = pipeline.run([feed])
        wall = time.monotonic() - began
        assert report.ok, report.failures
        per_worker = {row[0]: row[1:] for row in db.execute(
            "SELECT worker, COUNT(*), SUM(audio_seconds), SUM(work_seconds) FROM transcription_tasks GROUP BY worker")}
        return {"wall": wall, "tasks": report.transcripts_made, "segments": segments(db),
                "overhead_ms_per_task": 1000 * sum(pipeline.timings.values()) / max(1, report.transcripts_made),
                **{f"{k}_ms_per_task": 1000 * v / max(1, report.transcripts_made) for k, v in pipeline.timings.items()},
                "workers": per_worker}
    finally:
        stop(procs)


def segments(db) -> list:
    return [tuple(row) for row in db.execute(
        """SELECT e.guid, s.start, s.end, s.text FROM segments s JOIN transcripts t ON t.id = s.transcript_id
           JOIN episodes e ON e.id = t.episode_id ORDER BY e.guid, s.idx""")]


def model_1000_hours(rate_one: float, overhead_ms: float, episode_hours: float = 1.0) -> list[tuple[int, float]]:
    """Hours of wall time for 1,000 hours of audio on N machines like this one, one worker each: the audio
    divided by N times one worker's rate, plus the coordinator's per-task time (serial) for 1,000/episode_hours
    tasks. Downloads are not in it (local files here)."""
    audio = 1000 * 3600
    tasks = 1000 / episode_hours
    return [(n, (audio / (n * rate_one) + tasks * overhead_ms / 1000) / 3600) for n in (1, 2, 4, 8, 16, 32, 64)]


def main() -> None:
    from ingest.audio import probe_audio
    from ingest.transcribe import TranscriptionOptions

    parser = argparse.ArgumentParser()
    parser.add_argument("--beam-size", type=int, default=5)
    parser.add_argument("--full", action="store_true", help="add the whole Datacast episode (702 s)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    clips = CLIPS + ([FULL] if args.full else [])
    options = TranscriptionOptions(beam_size=args.beam_size)
    total = sum(probe_audio(clip) for clip in clips)
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        folder = Path(tmp)
        site = folder / "site"
        site.mkdir()
        write_feed(site, clips)
        write_feed(site, [SHARED / "audio" / "ljspeech" / f"LJ001-000{5 + i}.mp3" for i in range(2)], "warm.xml")
        base, server = serve(site)
        redis, broker = start_redis(folder)
        try:
            results = {"embedded": run_embedded(f"{base}/feed.xml", folder, options)}
            for n in (1, 2):
                results[f"{n} worker(s)"] = run_distributed(f"{base}/feed.xml", f"{base}/warm.xml", folder, options,
                                                            broker, n)
        finally:
            server.shutdown()
            redis.terminate()
    print(f"{len(clips)} episodes, {total:.0f} s of audio, tiny.en int8 beam {args.beam_size}, "
          f"{os.cpu_count()} CPU cores")
    print(f"{'mode':<14}{'wall s':>8}{'audio s/s':>11}{'coord. ms/task':>16}  same segments as embedded")
    reference = results["embedded"]["segments"]
    for mode, r in results.items():
        overhead = r.get("overhead_ms_per_task")
        print(f"{mode:<14}{r['wall']:>8.1f}{total / r['wall']:>11.2f}"
              f"{(f'{overhead:.1f}' if overhead is not None else '-'):>16}  {r['segments'] == reference}")
    for mode, r in results.items():
        if "send_ms_per_task" in r:
            print(f"  {mode}: coordinator per task: send {r['send_ms_per_task']:.1f} ms, store "
                  f"{r['store_ms_per_task']:.1f} ms, polling the backend {r['poll_ms_per_task']:.1f} ms "
                  f"(every 0.2 s while the tasks run)")
    for mode, r in results.items():
        for worker, (tasks, audio, work) in (r.get("workers") or {}).items():
            print(f"  {mode}: {worker}: {tasks} tasks, {audio:.0f} s audio in {work:.1f} s busy: "
                  f"{audio / work:.2f} audio s per s")
    rate_one = total / results["1 worker(s)"]["wall"]
    overhead = results["2 worker(s)"]["overhead_ms_per_task"]
    print("\n1,000 hours of audio (1-hour episodes) on N machines like this one, one worker each:")
    for n, hours in model_1000_hours(rate_one, overhead):
        print(f"  N={n:<3} {hours:8.1f} h  ({hours / 24:.2f} days)")
    if args.json:
        args.json.write_text(json.dumps({mode: {k: v for k, v in r.items() if k != "segments"}
                                         for mode, r in results.items()}, indent=2, default=str))


if __name__ == "__main__":
    main()
