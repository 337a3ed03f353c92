"""Shared helpers for the benchmark scripts: paths, timing, peak memory, word error rate.

Word error rate normalisation (both sides alike): Unicode NFKC, lower case, curly quotes made straight,
"%" read as "percent" and "&" as "and", hyphens, dashes and slashes split words, apostrophes dropped
("don't" -> "dont"), any other punctuation removed, whitespace collapsed. Numbers are left as written: no
digits-to-words conversion, so "3" against "three" counts as an error (the human references under
fixtures/audio spell numbers out and Whisper mostly does too for read speech; the Datacast reference keeps
digits, which Whisper also writes as digits).
"""

from __future__ import annotations

import re
import resource
import sys
import time
import unicodedata
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # run as `python bench/x.py` from anywhere


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'").replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"[-‐‑‒–—―/]", " ", text)
    text = text.replace("'", "")
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus-level WER: all errors over all reference words."""
    import jiwer

    return jiwer.wer([normalize(r) for r in references], [normalize(h) for h in hypotheses])


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def timed():
    """with timed() as t: ...; t() -> wall seconds."""
    start = time.perf_counter()
    result = {"seconds": None}
    yield lambda: result["seconds"] if result["seconds"] is not None else time.perf_counter() - start
    result["seconds"] = time.perf_counter() - start
