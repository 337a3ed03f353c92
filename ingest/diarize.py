"""Speaker turns ("diarization") of a Whisper transcript: who speaks each line, as "Speaker 1", "Speaker 2", ...

Whisper gives one voice. Here the audio Whisper just decoded (`transcribe_file` passes its samples: the file is
not decoded twice) is cut into windows of `SpeakerEncoder.window` seconds every `DiarizationOptions.hop` seconds,
each window inside speech (the Whisper segments) becomes a voice embedding (resemblyzer's pretrained
VoiceEncoder, behind the small `SpeakerEncoder` interface, loaded lazily once per process), and the embeddings are
clustered without being told how many speakers there are: `spectralcluster`'s SpectralClusterer with the
refinement of its ICASSP 2018 configuration (cosine affinity, blurred along time, row-wise thresholded), the
number of speakers from the eigengap, and one speaker when its GMM/BIC test on the affinities says so. Measured
against scikit-learn's agglomerative clustering with a distance threshold (the other `method`): both find the
built 2- and 3-speaker conversations, only the spectral one finds the AMI meeting's speakers
(bench/diarization.py, README). Clusters with too small a share of the speech are folded into the nearest one.

Each line then gets the speaker of the windows around it: by word when the transcript has word timings (a line
is split at the word where the speaker changes), else by time (a line is split where the windows' speaker changes,
at the space nearest that point in proportion of the text). Speakers are numbered in order of first appearance.
Figures (DER, cost against Whisper) and the choice of hop and clustering: bench/diarization.py, README. Known
limit: voices that resemblyzer hears as one stay one speaker (the Datacast fixture clip's two synthetic voices,
one speech synthesiser's en-us and en-gb, come out as one).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from archive.errors import AudioError, ModelLoadError
from archive.records import Segment

log = logging.getLogger(__name__)

SAMPLING_RATE = 16000
UNNAMED = "Speaker {}"


@dataclass
class DiarizationOptions:
    hop: float = 0.8  # seconds between windows (the encoder's window is 1.6 s): the cost and the time resolution;
    # 0.5 lost speakers in the built 3-speaker conversations, 1.0 did worse on the AMI meeting (bench, README)
    method: str = "spectral"  # spectralcluster (refined affinity, eigengap), or "agglomerative" (scikit-learn)
    threshold: float = 0.45  # agglomerative only: cosine distance (average linkage) at which clusters stay apart
    max_speakers: int = 8
    max_clustered: int = 300  # spectral: at most this many windows (evenly spaced in time) are clustered, the
    # others join the nearest speaker: its eigendecomposition grows with the cube of the windows (876 windows,
    # Datacast Episode 70: 4.3 s of CPU, against 0.6 s for every third window, the same speakers found); not
    # much under 100, where the refined affinity has too few neighbours and splits speakers
    min_share: float = 0.06  # a cluster with less of the speech windows is folded into the nearest one
    min_run: int = 3  # ... and one never this many windows running (windows across a change are mixtures)
    min_turn: float = 1.0  # seconds: a shorter run of another speaker inside a line is not a turn
    speech_overlap: float = 0.5  # a window is embedded when at least this share of it is inside a Whisper segment


class SpeakerEncoder(Protocol):
    """Turns windows of audio into voice embeddings (tests hold a fake: ToneEncoder, tests/test_diarize.py).

    `window`: seconds of audio per embedding. `embed(samples, starts)`: float32 16 kHz mono samples and the
    windows' first sample indexes -> an (n, d) array, one L2-normalised row per window. The model loads on the
    first call, never before; a model that cannot load raises ModelLoadError."""

    window: float

    def embed(self, samples: np.ndarray, starts: np.ndarray) -> np.ndarray:
        ...


_encoders: dict[str, object] = {}
_encoders_lock = threading.Lock()


def load_voice_encoder(device: str = "cpu"):
    """resemblyzer's VoiceEncoder (its pretrained weights ship in the wheel), loaded once per process."""
    with _encoders_lock:
        if device not in _encoders:
            try:
                import warnings

                with warnings.catch_warnings():  # webrtcvad imports pkg_resources, resemblyzer an old scipy path
                    warnings.simplefilter("ignore", UserWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    from resemblyzer import VoiceEncoder

                _encoders[device] = VoiceEncoder(device, verbose=False)
            except Exception as exc:  # noqa: BLE001 - import, torch and file errors all mean "cannot load"
                raise ModelLoadError(f"cannot load the speaker encoder (resemblyzer) on {device}: {exc}") from exc
        return _encoders[device]


class ResemblyzerEncoder:
    """resemblyzer's VoiceEncoder: 40-band mel frames every 10 ms, 160 frames (1.6 s) per window, a 3-layer LSTM
    to a 256-dimensional embedding. The whole file's volume is normalised once (resemblyzer's `normalize_volume`,
    -30 dBFS); its silence trimming is not used, as it would shift the times."""

    window = 1.6
    batch = 256

    def __init__(self, device: str = "cpu", threads: int = 1):
        # one torch thread: on 2 cores, 701 windows took 1.9 s of CPU with one thread and 6.9 s with two
        # (bench/diarization.py, README); the process's own setting is put back after each call
        self.device, self.threads = device, threads

    def embed(self, samples: np.ndarray, starts: np.ndarray) -> np.ndarray:
        encoder = load_voice_encoder(self.device)
        import torch
        from resemblyzer.audio import normalize_volume, wav_to_mel_spectrogram
        from resemblyzer.hparams import audio_norm_target_dBFS, mel_window_step, partials_n_frames

        if not len(samples) or not np.isfinite(samples).all():
            raise AudioError("no audio samples to find speakers in")
        wav = normalize_volume(samples.astype(np.float32), audio_norm_target_dBFS, increase_only=True)
        mel = wav_to_mel_spectrogram(wav.astype(np.float32))
        frames = (np.asarray(starts) * 1000 // (SAMPLING_RATE * mel_window_step)).astype(int)
        short = int(frames.max(initial=0)) + partials_n_frames - len(mel)
        if short > 0:
            mel = np.pad(mel, ((0, short), (0, 0)))
        mels = np.stack([mel[f:f + partials_n_frames] for f in frames])
        out, threads = [], torch.get_num_threads()
        torch.set_num_threads(self.threads or threads)
        try:
            with torch.no_grad():
                for i in range(0, len(mels), self.batch):
                    out.append(encoder(torch.from_numpy(mels[i:i + self.batch]).to(encoder.device)).cpu().numpy())
        finally:
            torch.set_num_threads(threads)
        return np.concatenate(out)


# -- windows and clusters -----------------------------------------------------------------------------------

def speech_windows(segments: list[Segment], duration: float, window: float, hop: float,
                   min_overlap: float = 0.5) -> np.ndarray:
    """Start times of the windows worth embedding: those with at least `min_overlap` of them inside a segment."""
    if duration <= window:
        return np.zeros(1)
    starts = np.arange(0.0, duration - window + 1e-9, hop)
    spans = sorted((s.start, s.end) for s in segments if s.end > s.start)
    if not spans:
        return starts
    covered = np.zeros(len(starts))
    for begin, end in spans:
        covered += np.clip(np.minimum(starts + window, end) - np.maximum(starts, begin), 0, None)
    return starts[covered >= min_overlap * window]


def cluster(embeddings: np.ndarray, options: DiarizationOptions) -> np.ndarray:
    """A cluster number per embedding; how many clusters is estimated (see the module doc)."""
    n = len(embeddings)
    if n < 3:
        return np.zeros(n, dtype=int)
    if options.method == "spectral" and n > options.max_clustered:
        step = -(-n // options.max_clustered)
        sample = embeddings[::step]
        labels = cluster(sample, replace(options, max_clustered=len(sample),
                                         min_run=max(1, -(-options.min_run // step))))
        ids = np.unique(labels)
        centroids = np.stack([_unit(sample[labels == c].mean(axis=0)) for c in ids])
        return ids[np.argmax(embeddings @ centroids.T, axis=1)]
    if options.method == "spectral":
        labels = _spectral(embeddings, options)
    elif options.method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        labels = AgglomerativeClustering(n_clusters=None, distance_threshold=options.threshold, metric="cosine",
                                         linkage="average").fit_predict(embeddings)
    else:
        raise ValueError(f"unknown clustering method {options.method!r}: agglomerative or spectral")
    return _fold_small(embeddings, np.asarray(labels), options)


def _spectral(embeddings: np.ndarray, options: DiarizationOptions) -> np.ndarray:
    from spectralcluster import FallbackOptions, SpectralClusterer
    from spectralcluster.configs import icassp2018_refinement_options

    clusterer = SpectralClusterer(min_clusters=1, max_clusters=options.max_speakers,
                                  refinement_options=icassp2018_refinement_options,
                                  fallback_options=FallbackOptions(), custom_dist="cosine")
    return clusterer.predict(embeddings)


def _longest_runs(labels: np.ndarray) -> dict:
    longest, run = {}, 0
    for i, label in enumerate(labels):
        run = run + 1 if i and labels[i - 1] == label else 1
        longest[label] = max(longest.get(label, 0), run)
    return longest


def _fold_small(embeddings: np.ndarray, labels: np.ndarray, options: DiarizationOptions) -> np.ndarray:
    """Clusters under `min_share` of the windows, those never `min_run` windows running (the windows are in time
    order), and those past `max_speakers` join the nearest kept cluster."""
    ids, counts = np.unique(labels, return_counts=True)
    order = ids[np.argsort(-counts, kind="stable")]
    runs = _longest_runs(labels)
    kept = [c for c in order if counts[list(ids).index(c)] >= options.min_share * len(labels)
            and runs[c] >= min(options.min_run, len(labels))]
    kept = kept[:options.max_speakers] or [order[0]]
    centroids = np.stack([_unit(embeddings[labels == c].mean(axis=0)) for c in kept])
    out = labels.copy()
    for i in np.flatnonzero(~np.isin(labels, kept)):
        out[i] = kept[int(np.argmax(centroids @ embeddings[i]))]
    return out


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / (np.linalg.norm(vector) or 1.0)


# -- lines ----------------------------------------------------------------------------------------------------

@dataclass
class Turns:
    """Each embedded window's centre time and cluster: the speaker at a time is the nearest window's."""

    centres: np.ndarray
    labels: np.ndarray

    def at(self, times) -> np.ndarray:
        times = np.atleast_1d(np.asarray(times, dtype=float))
        idx = np.clip(np.searchsorted(self.centres, times), 1, len(self.centres) - 1) if len(self.centres) > 1 \
            else np.zeros(len(times), dtype=int)
        if len(self.centres) > 1:
            left = self.centres[idx - 1]
            idx = np.where(np.abs(times - left) <= np.abs(self.centres[idx] - times), idx - 1, idx)
        return self.labels[idx]


def _runs(labels: list, times: list[float], min_turn: float) -> list[tuple[int, int, object]]:
    """Runs (first index, past-last index, label) of equal labels, runs shorter than `min_turn` seconds (by
    `times`, one per item and a final end) merged into their longer neighbour."""
    runs = []
    for i, label in enumerate(labels):
        if runs and runs[-1][2] == label:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1, label])
    while len(runs) > 1:
        lengths = [times[b] - times[a] for a, b, _ in runs]
        shortest = int(np.argmin(lengths))
        if lengths[shortest] >= min_turn:
            break
        a, b, _ = runs[shortest]
        if shortest == 0:
            neighbour = 1
        elif shortest == len(runs) - 1:
            neighbour = shortest - 1
        else:
            neighbour = shortest - 1 if lengths[shortest - 1] >= lengths[shortest + 1] else shortest + 1
        runs[neighbour][0], runs[neighbour][1] = min(runs[neighbour][0], a), max(runs[neighbour][1], b)
        del runs[shortest]
        merged = []
        for run in runs:  # neighbours that now have the same label become one run
            if merged and merged[-1][2] == run[2]:
                merged[-1][1] = run[1]
            else:
                merged.append(run)
        runs = merged
    return [tuple(run) for run in runs]


def _word_offsets(text: str, words: list) -> list[int] | None:
    """Where each word begins in the line's text (found in order), or None when one is not found."""
    offsets, at = [], 0
    for word in words:
        found = text.find(word.word, at)
        if found < 0:
            return None
        offsets.append(found)
        at = found + len(word.word)
    return offsets


def _split_with_words(segment: Segment, turns: Turns, min_turn: float) -> list[tuple[Segment, int]]:
    """A line with word timings: each word's speaker, the line cut before the first word of each turn (the
    line's own text is cut there, so its spelling and spacing are kept)."""
    words = segment.words
    labels = list(turns.at([(w.start + w.end) / 2 for w in words]))
    runs = _runs(labels, [w.start for w in words] + [segment.end], min_turn)
    if len(runs) == 1:
        return [(segment, int(runs[0][2]))]
    offsets = _word_offsets(segment.text, words)
    parts = []
    for a, b, label in runs:
        chunk = words[a:b]
        start = segment.start if a == 0 else chunk[0].start
        end = segment.end if b == len(words) else words[b].start
        if offsets is None:
            text = " ".join(w.word for w in chunk)
        else:
            text = segment.text[0 if a == 0 else offsets[a]:offsets[b] if b < len(words) else None].strip()
        parts.append((Segment(start, end, text, None, chunk), int(label)))
    return parts


def _split_by_time(segment: Segment, turns: Turns, hop: float, min_turn: float) -> list[tuple[Segment, int]]:
    """A line without word timings: the speaker every `hop`/2 seconds across it, split where it changes."""
    step = max(hop / 2, 0.05)
    times = list(np.arange(segment.start, segment.end, step)) or [segment.start]
    labels = list(turns.at([t + step / 2 for t in times]))
    runs = _runs(labels, times + [segment.end], min_turn)
    if len(runs) == 1:
        return [(segment, int(runs[0][2]))]
    text, parts, cut = segment.text, [], 0
    duration = (segment.end - segment.start) or 1.0
    for n, (a, b, label) in enumerate(runs):
        start = segment.start if n == 0 else times[a]
        end = segment.end if n == len(runs) - 1 else times[b]
        if n == len(runs) - 1:
            piece = text[cut:]
        else:
            target = round(len(text) * (end - segment.start) / duration)
            spaces = [i for i, ch in enumerate(text) if ch == " " and i > cut]
            if not spaces:
                piece = text[cut:]
            else:
                at = min(spaces, key=lambda i: abs(i - target))
                piece, cut_next = text[cut:at], at + 1
                cut = cut_next
        if piece.strip():
            parts.append((Segment(round(start, 3), round(end, 3), piece.strip()), int(label)))
        if cut >= len(text):
            break
    return parts or [(segment, int(runs[0][2]))]


def assign_speakers(segments: list[Segment], turns: Turns, hop: float, min_turn: float) -> list[Segment]:
    """The lines with their speakers ("Speaker 1", ... in order of first appearance), split where it changes."""
    parts: list[tuple[Segment, int]] = []
    for segment in segments:
        if segment.words:
            parts.extend(_split_with_words(segment, turns, min_turn))
        else:
            parts.extend(_split_by_time(segment, turns, hop, min_turn))
    numbers: dict[int, int] = {}
    out = []
    for segment, label in parts:
        number = numbers.setdefault(label, len(numbers) + 1)
        out.append(replace(segment, start=round(segment.start, 3), end=round(segment.end, 3),
                           speaker=UNNAMED.format(number)))
    return out


def find_turns(samples: np.ndarray, segments: list[Segment], encoder: SpeakerEncoder,
               options: DiarizationOptions | None = None) -> Turns:
    """Embed the speech windows and cluster them: the speaker at each window's centre."""
    options = options or DiarizationOptions()
    duration = len(samples) / SAMPLING_RATE
    starts = speech_windows(segments, duration, encoder.window, options.hop, options.speech_overlap)
    if not len(starts):
        return Turns(np.zeros(1), np.zeros(1, dtype=int))
    embeddings = encoder.embed(samples, (starts * SAMPLING_RATE).astype(int))
    labels = cluster(embeddings, options)
    return Turns(starts + encoder.window / 2, labels)


def diarize(samples: np.ndarray, segments: list[Segment], encoder: SpeakerEncoder | None = None,
            options: DiarizationOptions | None = None) -> list[Segment]:
    """`segments` (a Whisper transcript of `samples`, float32 16 kHz) with speakers; see the module doc.
    AudioError for samples that hold no audio; ModelLoadError when the encoder cannot load."""
    options = options or DiarizationOptions()
    if not segments:
        return []
    if samples is None or not len(samples):
        raise AudioError("no audio samples to find speakers in")
    turns = find_turns(samples, segments, encoder or ResemblyzerEncoder(), options)
    return assign_speakers(segments, turns, options.hop, options.min_turn)

