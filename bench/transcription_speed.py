"""Faster decoding set-ups against today's default: speed and word error rate, same run, interleaved.

    .venv/bin/python bench/transcription_speed.py [--variants default,vad,batched-4,batched-8] [--repeat N]
                                                  [--no-episode] [--no-clips]

Variants (all with the bundled tiny.en, int8 on CPU, beam 5, language "en", one model loaded once):
- default: today's `ingest.transcribe.transcribe_file` with default options (sequential, no VAD).
- vad: the same with `vad_filter=True` (faster-whisper's bundled Silero VAD drops non-speech first).
- batched-N: faster-whisper's `BatchedInferencePipeline` with batch_size N (its default VAD on: it cuts the
  audio into speech chunks of up to 30 s and decodes N chunks at once; windows are not conditioned on the
  previous text, and with its default `without_timestamps=True` each segment is one whole chunk, so segment
  times are coarse (per chunk, not per sentence). batched-N-ts: the same with `without_timestamps=False`
  (Whisper's timestamp tokens: sentence-sized segments). No word alignment is run in any variant.

Measured on ../shared/fixtures/datacast/episode-070.mp3 (702 s, reference episode-070-audio-reference.txt) and
on the 41 real speech clips of bench/wer.py (same references). Each variant's wall time includes decoding the
audio file. The order of the variants rotates per repeat and per set, so load from other jobs spreads over them
all. WER: bench/_common.py word_error_rate (corpus-level, same normalisation as bench/wer.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from _common import SHARED, timed, word_error_rate

sys.path.insert(0, str(Path(__file__).resolve().parent))
import wer as wer_sets  # noqa: E402

AUDIO = SHARED / "datacast" / "episode-070.mp3"
REFERENCE = SHARED / "datacast" / "episode-070-audio-reference.txt"


def make_runner(variant: str, model):
    """A function path -> the variant's segments as (start, end, text)."""
    from ingest.transcribe import SAMPLING_RATE, TranscriptionOptions, transcribe_file

    if variant == "default":
        options = TranscriptionOptions()
        return lambda path: [(s.start, s.end, s.text) for s in transcribe_file(path, options, model=model)[0]]
    if variant == "vad":
        options = TranscriptionOptions(vad_filter=True)
        return lambda path: [(s.start, s.end, s.text) for s in transcribe_file(path, options, model=model)[0]]
    if variant.startswith("batched-"):
        from faster_whisper import BatchedInferencePipeline

        from ingest.audio import load_audio

        batch = int(variant.split("-")[1])
        timestamps = variant.endswith("-ts")
        pipeline = BatchedInferencePipeline(model)
        base = TranscriptionOptions()

        def run(path):
            samples = load_audio(path, SAMPLING_RATE)
            segments, _info = pipeline.transcribe(samples, language=base.language, beam_size=base.beam_size,
                                                  batch_size=batch, without_timestamps=not timestamps)
            return [(s.start, s.end, " ".join(s.text.split())) for s in segments]

        return run
    raise SystemExit(f"unknown variant {variant!r}: default, vad, batched-N or batched-N-ts")


def audio_seconds(path: Path) -> float:
    from ingest.audio import probe_audio

    return probe_audio(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", default="default,vad,batched-4,batched-8")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each variant on the episode (default 1)")
    parser.add_argument("--no-episode", action="store_true")
    parser.add_argument("--no-clips", action="store_true")
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]

    from ingest.transcribe import TranscriptionOptions, load_whisper

    model = load_whisper(TranscriptionOptions())
    runners = {v: make_runner(v, model) for v in variants}
    runners[variants[0]](SHARED / "audio" / "jfk" / "jfk.wav")  # warm-up, not timed
    for v in variants[1:]:
        runners[v](SHARED / "audio" / "jfk" / "jfk.wav")

    def rotated(i: int) -> list[str]:
        k = i % len(variants)
        order = variants[k:] + variants[:k]
        return order if i % 2 == 0 else order[::-1]

    summary: dict[str, dict] = {v: {} for v in variants}
    if not args.no_episode:
        reference = REFERENCE.read_text()
        seconds = audio_seconds(AUDIO)
        print(f"episode {AUDIO.name}: {seconds:.1f} s of audio", flush=True)
        walls: dict[str, list[float]] = {v: [] for v in variants}
        wers: dict[str, list[float]] = {v: [] for v in variants}
        for i in range(args.repeat):
            for v in rotated(i):
                with timed() as elapsed:
                    segments = runners[v](AUDIO)
                wall = elapsed()
                text = " ".join(t for _, _, t in segments)
                lengths = [end - start for start, end, _ in segments]
                walls[v].append(wall)
                wers[v].append(word_error_rate([reference], [text]))
                print(f"  {v:10} wall {wall:6.1f} s  {seconds / wall:5.1f} x real time  WER {wers[v][-1]:.4f}"
                      f"  segments {len(segments)} (median {statistics.median(lengths):.1f} s, "
                      f"longest {max(lengths):.1f} s)",
                      flush=True)
        for v in variants:
            wall = statistics.median(walls[v])
            summary[v]["episode"] = (wall, seconds / wall, statistics.mean(wers[v]))

    if not args.no_clips:
        clips = [(name, path, ref) for name, make in wer_sets.SETS.items() for path, ref in make()]
        seconds = sum(audio_seconds(path) for _, path, ref in clips)
        print(f"clips: {len(clips)} from bench/wer.py, {seconds:.1f} s of audio", flush=True)
        for v in rotated(1):
            refs, hyps = [], []
            with timed() as elapsed:
                for _, path, ref in clips:
                    refs.append(ref)
                    hyps.append(" ".join(t for _, _, t in runners[v](path)))
            wall = elapsed()
            error = word_error_rate(refs, hyps)
            summary[v]["clips"] = (wall, seconds / wall, error)
            print(f"  {v:10} wall {wall:6.1f} s  {seconds / wall:5.1f} x real time  WER {error:.4f}", flush=True)

    print("summary (median wall s, x real time, WER):")
    for v in variants:
        parts = [f"{where} {wall:.1f} s, {speed:.1f}x, WER {error:.2%}"
                 for where, (wall, speed, error) in summary[v].items()]
        print(f"  {v:10} " + "; ".join(parts))


if __name__ == "__main__":
    main()
