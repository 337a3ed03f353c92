"""Shared helpers for the benchmark scripts: paths, timing, peak memory, word error rate.

Word error rate normalisation (both sides alike): Unicode NFKC, lower case, curly quotes made straight,
"%" read as "percent" and "&" as "and", hyphens, dashes and slashes split words, apostrophes dropped
("don't" -> "dont"), any other punctuation removed, whitespace collapsed. Numbers are read as spoken, because
the references spell them out ("fourteen fifty five", "fifteenth") where Whisper writes digits ("1455",
"15th"): four-digit numbers from 1100 to 1999 and 2010 to 2099 as years ("nineteen oh five", "twenty
twenty one"), other whole numbers as cardinals without "and" ("two hundred fifty"), "15th" as "fifteenth",
"2.5" as "two point five", thousands separators dropped. "mr", "mrs" and "dr" become "mister", "missus" and
"doctor".
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


ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen").split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
ORDINAL_ENDINGS = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
                   "nine": "ninth", "twelve": "twelfth"}
ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "dr": "doctor"}


def cardinal(n: int) -> str:
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            rest = n % size
            return f"{cardinal(n // size)} {name}" + (f" {cardinal(rest)}" if rest else "")
    raise AssertionError(n)


def year(n: int) -> str:
    high, low = divmod(n, 100)
    if low == 0:
        return f"{cardinal(high)} hundred"
    return f"{cardinal(high)} {'oh ' + ONES[low] if low < 10 else cardinal(low)}"


def ordinal(n: int) -> str:
    words = cardinal(n).split()
    last = words[-1]
    words[-1] = ORDINAL_ENDINGS.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join(words)


def spoken_number(match: re.Match) -> str:
    digits, fraction, suffix = match.group(1).replace(",", ""), match.group(2), match.group(3)
    n = int(digits)
    if suffix:
        return ordinal(n)
    if fraction:
        return f"{cardinal(n)} point {' '.join(ONES[int(d)] for d in fraction)}"
    if len(digits) == 4 and (1100 <= n <= 1999 or 2010 <= n <= 2099):
        return year(n)
    return cardinal(n)


def normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.replace("’", "'").replace("‘", "'").replace("%", " percent ").replace("&", " and ")
    text = re.sub(r"\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?\b", spoken_number, text)
    text = re.sub(r"[-‐‑‒–—―/]", " ", text)
    text = text.replace("'", "")
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(ABBREVIATIONS.get(word, word) for word in text.split())


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


def copy_archive(source: Path, folder: Path) -> Path:
    """A copy of the archive at `source` as `folder`/archive.db, its WAL folded in first and its side indexes
    (`<db>.index`) beside it: a benchmark measures on the copy, the kept archive never changes."""
    import shutil

    from archive.db import open_db

    target = Path(folder) / "archive.db"
    db = open_db(source)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.conn.close()
    shutil.copy(source, target)
    if Path(f"{source}.index").exists():
        shutil.copytree(f"{source}.index", f"{target}.index")
    return target
