"""Deterministic stand-ins for the heavy models, for tests that need *a* transcript or *a* vector, not a good one.

`FakeEmbedder` keeps archive.embeddings.Embedder's promise, `FakeTranscriber` keeps ingest.transcribe.Transcriber's;
the real models keep their own tests (tests/test_transcribe.py, the slow search and pipeline tests).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from archive.errors import TranscriptionError
from archive.records import Segment, TranscriptSource
from ingest.audio import probe_audio
from ingest.transcribe import TranscriptionOptions


class FakeEmbedder:
    """Deterministic bag-of-words hashing embedder: shared words give similar vectors."""

    name = "fake-hash-embedder"

    def __init__(self, dims: int = 64):
        self.dims = dims

    def embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dims), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                word = word.strip(".,;:!?\"'()[]")
                if not word:
                    continue
                digest = hashlib.sha256(word.encode()).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dims] += 1.0
            norm = np.linalg.norm(out[row])
            if norm:
                out[row] /= norm
        return out



class RecordingEmbedder(FakeEmbedder):
    """The fake embedder, keeping every text it was asked to embed, in order (`texts`)."""

    def __init__(self, dims: int = 64):
        super().__init__(dims)
        self.texts: list[str] = []

    def embed(self, texts):
        self.texts.extend(texts)
        return super().embed(texts)


class FakeTranscriber:
    """One segment every `segment_seconds` of the file's real duration, its text cycling through `sentences`.
    Files that are not audio raise AudioError, as the real one does; names in `fail_for` raise
    TranscriptionError. Calls are recorded."""

    DEFAULT_SENTENCES = (
        "Welcome to the show.",
        "Today we talk about testing machine learning systems.",
        "Data quality matters more than model choice.",
        "Thanks for listening.",
    )

    def __init__(self, sentences: tuple[str, ...] | list[str] = DEFAULT_SENTENCES, segment_seconds: float = 5.0,
                 fail_for: set[str] | None = None):
        self.sentences = list(sentences)
        self.segment_seconds = segment_seconds
        self.fail_for = set(fail_for or ())
        self.options = TranscriptionOptions(model="fake")
        self.calls: list[str] = []

    def transcribe(self, path, progress=None, prompt=None, content_hash=None):
        self.calls.append(str(path))
        if Path(path).name in self.fail_for:
            raise TranscriptionError(f"fake failure for {Path(path).name}")
        duration = probe_audio(path)
        segments, start, index = [], 0.0, 0
        while start < duration:
            end = min(start + self.segment_seconds, duration)
            segments.append(Segment(round(start, 3), round(end, 3), self.sentences[index % len(self.sentences)]))
            if progress:
                progress(end, duration)
            start, index = end, index + 1
        options = {"segment_seconds": self.segment_seconds, **({"initial_prompt": prompt} if prompt else {})}
        source = TranscriptSource(source="whisper", format="whisper", model="fake", options=options, language="en",
                                  content_hash=content_hash or hashlib.sha256(Path(path).read_bytes()).hexdigest())
        return segments, source
