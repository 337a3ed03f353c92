"""Whisper transcription with the real bundled model (tiny.en, int8, CPU), plus the fake used by pipeline tests.

Measured on 2 shared cores while writing these tests (see bench/transcription.py for speed):
- episode-070-short.mp3 (53 s, two synthetic voices), default options (beam 5): WER 4.4%; beam 1: 8.0%.
- jfk.wav: WER 0% with beam 1 and 5, with and without word timestamps.
"""

import sys
from dataclasses import asdict

import numpy as np
import pytest
from conftest import ROOT, SHARED

sys.path.insert(0, str(ROOT / "bench"))
from _common import normalize, word_error_rate  # noqa: E402

from archive.errors import AudioError, ModelLoadError, TranscriptionError  # noqa: E402
from fakes import FakeTranscriber  # noqa: E402
from ingest.audio import load_audio  # noqa: E402
from ingest.transcribe import (  # noqa: E402
    TranscriptionOptions,
    WhisperTranscriber,
    default_model_path,
    load_whisper,
    transcribe_file,
    whisper_model_path,
)

SHORT = SHARED / "datacast" / "episode-070-short.mp3"
SHORT_REFERENCE = (SHARED / "datacast" / "episode-070-short-reference.txt").read_text()
JFK = SHARED / "audio" / "jfk" / "jfk.wav"
JFK_REFERENCE = (SHARED / "audio" / "jfk" / "reference.txt").read_text()
DURATION = 52.93

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model():
    return load_whisper(TranscriptionOptions())


@pytest.fixture(scope="module")
def short_default(model):
    progress = []
    segments, source = transcribe_file(SHORT, TranscriptionOptions(), model=model,
                                       progress=lambda done, total: progress.append((done, total)))
    return segments, source, progress


@pytest.fixture(scope="module")
def short_with_words(model):
    return transcribe_file(SHORT, TranscriptionOptions(word_timestamps=True), model=model)


def text_of(segments):
    return " ".join(s.text for s in segments)


def test_default_options_are_documented_choices():
    options = TranscriptionOptions()
    assert (options.model, options.device, options.beam_size, options.word_timestamps, options.language,
            options.vad_filter, options.cpu_threads) == (None, "cpu", 5, False, "en", False, 0)
    assert options.resolved().compute_type == "int8"
    assert TranscriptionOptions(device="cuda").resolved().compute_type == "default"
    assert whisper_model_path(None) == whisper_model_path("tiny.en") == str(default_model_path())


def test_short_clip_word_error_rate(short_default):
    segments, _, _ = short_default
    assert word_error_rate([SHORT_REFERENCE], [text_of(segments)]) < 0.15  # measured 0.044


def test_short_clip_times_are_ordered_and_inside_the_audio(short_default):
    segments, _, _ = short_default
    assert len(segments) >= 5
    assert all(0 <= s.start <= s.end <= DURATION for s in segments)
    assert all(a.start <= b.start and a.end <= b.start + 0.01 for a, b in zip(segments, segments[1:]))
    assert segments[-1].end > DURATION - 5
    assert all(s.text == s.text.strip() and s.text and s.words is None for s in segments)


def test_progress_reports_audio_seconds(short_default):
    _, _, progress = short_default
    done = [d for d, _ in progress]
    assert done == sorted(done)
    assert progress[-1] == (pytest.approx(DURATION, abs=0.05), pytest.approx(DURATION, abs=0.05))


def test_source_records_model_and_options(short_default):
    _, source, _ = short_default
    assert (source.source, source.format, source.model, source.language) == ("whisper", "whisper", "tiny.en", "en")
    assert source.options == asdict(TranscriptionOptions().resolved())
    assert len(source.content_hash) == 64


def test_word_timestamps_keep_the_text_of_a_run_without_them(short_default, short_with_words):
    """Our word timestamps are aligned after decoding, so they cannot change (or drop) any text."""
    plain, _, _ = short_default
    with_words, source = short_with_words
    assert text_of(with_words) == text_of(plain)
    assert source.options["word_timestamps"] is True and source.options["beam_size"] == 5


def test_encoder_tap_is_removed_after_transcription(model, short_with_words):
    assert "encode" not in vars(model)


def test_word_timestamps_are_plausible(short_with_words):
    segments, _ = short_with_words
    words = [w for s in segments for w in s.words]
    assert normalize(" ".join(w.word for w in words)) == normalize(text_of(segments))
    assert all(0 <= w.start <= w.end <= DURATION for w in words)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))
    for segment in segments:
        assert segment.words[0].start >= segment.start - 1.0 and segment.words[-1].end <= segment.end + 1.0
    assert all(0 <= w.probability <= 1 for w in words)


@pytest.mark.parametrize("clip, reference", [(SHORT, SHORT_REFERENCE), (JFK, JFK_REFERENCE)], ids=["short", "jfk"])
def test_library_word_timestamps_with_beam_1_lose_no_phrase_on_short_clips(model, clip, reference):
    """What faster-whisper's own word_timestamps=True does at beam 1, measured. On these short clips: no phrase
    lost (short clip: one word differs, 'they were doing' -> 'network-doing'; JFK: identical). On the 11 min 42 s
    episode-070.mp3 it does lose phrases, with beam 1 (deleted reference words 17 -> 47) and beam 5 (20 -> 43):
    each next 30 s window starts at the last aligned word's end, which tiny.en stretches; that takes the whole
    episode to show, so `bench/transcription.py --word-timestamps` measures it rather than a test. Our own word
    timestamps are aligned after decoding and keep the text of a run without them (test above)."""
    import jiwer

    samples = load_audio(clip)

    def deletions(word_timestamps):
        segments, _ = model.transcribe(samples, language="en", beam_size=1, word_timestamps=word_timestamps,
                                       vad_filter=False)
        return jiwer.process_words(normalize(reference), normalize(text_of(segments))).deletions

    assert deletions(True) <= deletions(False) + 2


def test_jfk_with_words_and_beam_1(model):
    segments, source = transcribe_file(JFK, TranscriptionOptions(beam_size=1, word_timestamps=True), model=model)
    assert word_error_rate([JFK_REFERENCE], [text_of(segments)]) == 0
    assert [w.word.strip(",.").lower() for s in segments for w in s.words][:4] == ["and", "so", "my", "fellow"]
    assert source.options["beam_size"] == 1


def test_vad_filter_with_words_uses_library_word_timestamps(model):
    options = TranscriptionOptions(beam_size=1, word_timestamps=True, vad_filter=True)
    segments, _ = transcribe_file(JFK, options, model=model)
    assert word_error_rate([JFK_REFERENCE], [text_of(segments)]) == 0
    words = [w for s in segments for w in s.words]
    assert words[0].start < 1.5 and 9 < words[-1].end <= 11.0  # times on the original audio's clock


def test_whisper_transcriber_interface(model):
    segments, source = WhisperTranscriber(TranscriptionOptions(beam_size=1)).transcribe(JFK)
    assert "ask not what your country can do for you" in normalize(text_of(segments))


@pytest.mark.parametrize("content", ["random", "truncated", "html"])
def test_corrupt_audio_raises_audio_error(tmp_path, model, content):
    path = tmp_path / "episode.mp3"
    data = {
        "random": np.random.default_rng(3).bytes(200_000),
        "truncated": SHORT.read_bytes()[:60_000],
        "html": b"<!DOCTYPE html><html><head><title>Moved</title></head><body>Gone</body></html>",
    }[content]
    path.write_bytes(data)
    with pytest.raises(AudioError):
        transcribe_file(path, TranscriptionOptions(), model=model)


def test_failure_inside_whisper_is_transcription_error(tmp_path):
    class Broken:
        def transcribe(self, audio, **options):
            def segments():
                raise RuntimeError("CUDA out of memory")
                yield

            return segments(), type("Info", (), {"duration": 11.0, "language": "en"})()

    with pytest.raises(TranscriptionError, match="RuntimeError: CUDA out of memory"):
        transcribe_file(JFK, TranscriptionOptions(), model=Broken())


def test_bad_model_is_model_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no model.bin"):
        load_whisper(TranscriptionOptions(model=str(tmp_path)))
    with pytest.raises(ModelLoadError, match="cannot load"):
        load_whisper(TranscriptionOptions(model="no-such-model-name"))  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(ModelLoadError, match="unknown device"):
        load_whisper(TranscriptionOptions(device="tpu"))


def test_models_are_cached(model):
    assert load_whisper(TranscriptionOptions()) is model
    assert load_whisper(TranscriptionOptions(beam_size=1, word_timestamps=True)) is model


def test_fake_transcriber_is_deterministic(tmp_path):
    fake = FakeTranscriber(segment_seconds=4.0)
    first, source = fake.transcribe(JFK)
    second, _ = fake.transcribe(JFK)
    assert first == second and len(first) == 3
    assert (first[0].start, first[-1].end) == (0.0, 11.0)
    assert source.model == "fake" and fake.calls == [str(JFK), str(JFK)]
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"<html></html>")
    with pytest.raises(AudioError):
        fake.transcribe(bad)
    with pytest.raises(TranscriptionError):
        FakeTranscriber(fail_for={"jfk.wav"}).transcribe(JFK)
