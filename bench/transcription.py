"""Transcription speed and accuracy: the ingest pipeline against bare faster-whisper, same model and options.

    .venv/bin/python bench/transcription.py [--repeat N] [--beam-size N] [--word-timestamps]
                                            [--audio FILE --reference FILE]

Each run is a fresh child process (so peak memory is that run's own), the two variants alternate (ours, bare,
bare, ours, ...) so that machine load hits both alike, and the model load is not timed. Printed per run and in
summary: wall seconds, audio seconds per wall second, peak RSS, word error rate against the reference (see
bench/_common.py for the normalisation) with its deleted reference words and the longest stretch of audio
between two segments, and the ratio ours / bare of the median wall times (target <= 1.05).

With --word-timestamps, "bare" is faster-whisper's own word_timestamps=True, which on this episode skips speech
(deleted words and gaps jump), and "ours" aligns the words after decoding (same text as without them).

"ours" is the whole pipeline (`ingest_sources` on a one-episode feed: fetch, download, transcribe, save).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from _common import SHARED, normalize, peak_rss_mb, timed, word_error_rate

AUDIO = SHARED / "datacast" / "episode-070.mp3"
REFERENCE = SHARED / "datacast" / "episode-070-audio-reference.txt"


def make_options(beam_size: int | None, word_timestamps: bool, diarize: bool = False):
    from ingest.transcribe import TranscriptionOptions

    # speaker turns off unless asked: this compares Whisper in the pipeline with bare Whisper
    options = TranscriptionOptions(word_timestamps=word_timestamps, diarize=diarize)
    if beam_size:
        options.beam_size = beam_size
    return options


def prepare_ours(options):
    from ingest.transcribe import load_whisper

    return options, load_whisper(options)


def run_ours(prepared, audio: Path) -> tuple[list[tuple[float, float, str]], float]:
    """(segments as (start, end, text), audio seconds) through the whole ingest pipeline: a one-episode feed
    whose enclosure is the audio file, fetched, downloaded (copied), transcribed and saved in a new archive.
    The model is already loaded (and cached by load_whisper), as for bare faster-whisper."""
    import tempfile

    from archive.db import open_db
    from ingest.pipeline import IngestOptions, ingest_sources

    options, _model = prepared
    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed.xml"
        feed.write_text(
            '<?xml version="1.0"?><rss version="2.0"><channel><title>bench</title><item><title>bench</title>'
            f'<guid>bench</guid><enclosure url="{audio.resolve().as_uri()}" type="audio/mpeg" length="0"/>'
            "</item></channel></rss>"
        )
        db = open_db(Path(tmp) / "bench.db")
        report = ingest_sources(db, [str(feed)], IngestOptions(index=False, media_dir=Path(tmp) / "media",
                                                               transcription=options))
        if report.failures:
            raise SystemExit(f"pipeline failed: {report.failures}")
        rows = db.execute("SELECT start, end, text FROM segments ORDER BY idx").fetchall()
    return [tuple(row) for row in rows], _duration(audio)


def prepare_bare(options):
    from faster_whisper import WhisperModel

    from ingest.transcribe import whisper_model_path

    options = options.resolved()
    model = WhisperModel(whisper_model_path(options.model), device=options.device, compute_type=options.compute_type,
                         cpu_threads=options.cpu_threads)
    return options, model


def run_bare(prepared, audio: Path) -> tuple[list[tuple[float, float, str]], float]:
    """(segments as (start, end, text), audio seconds) straight from faster-whisper with the same options."""
    options, model = prepared
    segments, info = model.transcribe(str(audio), language=options.language, beam_size=options.beam_size,
                                      word_timestamps=options.word_timestamps, vad_filter=options.vad_filter)
    return [(s.start, s.end, s.text) for s in segments], info.duration  # the generator does the work


def _duration(audio: Path) -> float:
    from ingest.audio import probe_audio

    return probe_audio(audio)


VARIANTS = {"ours": (prepare_ours, run_ours), "bare": (prepare_bare, run_bare)}


def child(variant: str, args) -> None:
    import jiwer

    prepare, run = VARIANTS[variant]
    prepared = prepare(make_options(args.beam_size, args.word_timestamps, args.diarize))
    with timed() as elapsed:
        segments, audio_seconds = run(prepared, args.audio)
    text = " ".join(text for _, _, text in segments)
    reference = args.reference.read_text()
    gaps = [b[0] - a[1] for a, b in zip(segments, segments[1:])]
    print(json.dumps({
        "variant": variant,
        "wall": elapsed(),
        "audio": audio_seconds,
        "peak_rss_mb": peak_rss_mb(),
        "wer": word_error_rate([reference], [text]),
        "deleted": jiwer.process_words(normalize(reference), normalize(text)).deletions,
        "longest_gap": max(gaps, default=0.0),
    }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant (default 1)")
    parser.add_argument("--audio", type=Path, default=AUDIO)
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--beam-size", type=int, default=None, help="default: TranscriptionOptions' default")
    parser.add_argument("--word-timestamps", action="store_true")
    parser.add_argument("--diarize", action="store_true", help="speaker turns on in the pipeline (off by default here)")
    parser.add_argument("--child", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return

    order = [("ours", "bare") if i % 2 == 0 else ("bare", "ours") for i in range(args.repeat)]
    results = {"ours": [], "bare": []}
    options = make_options(args.beam_size, args.word_timestamps, args.diarize).resolved()
    print(f"audio: {args.audio.name}; runs of each variant: {args.repeat}; beam {options.beam_size}, "
          f"word timestamps {options.word_timestamps}, {options.device} {options.compute_type}")
    extra = (["--beam-size", str(args.beam_size)] if args.beam_size else []) + (
        ["--word-timestamps"] if args.word_timestamps else []) + (["--diarize"] if args.diarize else [])
    for pair in order:
        for variant in pair:
            out = subprocess.run(
                [sys.executable, __file__, "--child", variant, "--audio", str(args.audio),
                 "--reference", str(args.reference), *extra],
                capture_output=True, text=True, check=True,
            ).stdout
            result = json.loads(out.strip().splitlines()[-1])
            results[variant].append(result)
            print(f"  {variant:4}  wall {result['wall']:7.1f} s  {result['audio'] / result['wall']:5.1f} x real time"
                  f"  peak RSS {result['peak_rss_mb']:6.0f} MB  WER {result['wer']:.3f}"
                  f"  deleted {result['deleted']:3}  longest gap {result['longest_gap']:4.1f} s", flush=True)

    medians = {v: statistics.median(r["wall"] for r in rs) for v, rs in results.items()}
    audio_seconds = results["ours"][0]["audio"]
    print(f"audio seconds: {audio_seconds:.1f}")
    for variant in ("ours", "bare"):
        rs = results[variant]
        print(f"{variant:4}: median wall {medians[variant]:.1f} s, {audio_seconds / medians[variant]:.1f} x real time, "
              f"peak RSS {max(r['peak_rss_mb'] for r in rs):.0f} MB, WER {statistics.mean(r['wer'] for r in rs):.3f}")
    print(f"ratio ours / bare (median wall): {medians['ours'] / medians['bare']:.3f}  (target <= 1.05)")


if __name__ == "__main__":
    main()
