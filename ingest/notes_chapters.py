"""Chapters from the notes' own structure: the times a producer wrote ("12:30 Testing ML models") or, failing that,
the sections of the notes ("On testing ML models") as placed in the audio. Generated chapters only fill what the
notes leave out (`fill_gaps`).

Understanding stage (ingest/understand.py calls it): it reads the notes the feed stage stored and the takeaways
placed from them, and returns chapters; it writes nothing itself.
"""

from __future__ import annotations

import re
from dataclasses import replace

from archive.records import Chapter, Takeaway

# "12:30 Topic", "[01:02:03] Topic", "(12:30) - Topic", "Topic (12:30)", "Topic - 12:30"
_TIME = r"(?:(?P<h>\d{1,2}):)?(?P<m>\d{1,2}):(?P<s>\d{2})"
LEADING_TIME = re.compile(rf"^[\s•*\-–—]*[\[(]?{_TIME}[\])]?\s*(?:[-–—:|.]\s*)?(?P<title>\S.*)$")
TRAILING_TIME = re.compile(rf"^[\s•*\-–—]*(?P<title>\S.*?)\s*(?:[-–—:|]\s*)?[\[(]?{_TIME}[\])]?\s*$")
BLOCK_END = re.compile(r"<\s*(?:br|/p|/li|/h[1-6]|/div|/tr|/dt|/dd)\b[^>]*>", re.IGNORECASE)
MIN_TIMESTAMPS = 3  # fewer is a mention of a time, not a table of contents
GAP_TO_FILL = 180.0  # seconds the notes leave uncovered (before their first chapter) before a generated one fills it
SLACK = 30.0  # a time may pass the audio's end by this much (durations in feeds are rounded or wrong)


def notes_lines(notes: str) -> list[str]:
    """The notes as lines of text: HTML blocks and <br> end a line."""
    if "<" in notes and ">" in notes:
        import lxml.html

        try:
            notes = lxml.html.fromstring(BLOCK_END.sub("\n", notes)).text_content()
        except Exception:  # noqa: BLE001 - lxml's errors on odd fragments: read it as plain text
            notes = re.sub(r"<[^>]+>", "\n", notes)
    return [line.strip() for line in notes.splitlines() if line.strip()]


def _seconds(hours: str | None, minutes: str, seconds: str) -> float | None:
    if int(seconds) >= 60 or (hours is not None and int(minutes) >= 60):
        return None
    return int(hours or 0) * 3600 + int(minutes) * 60 + int(seconds)


def _clean_title(title: str) -> str:
    return re.sub(r"\s+", " ", title).strip(" -–—:|.•*").strip()


def _timestamp(line: str) -> tuple[float, str] | None:
    """(seconds, title) of a line that starts or ends with a time; None for any other line."""
    for pattern in (LEADING_TIME, TRAILING_TIME):
        match = pattern.match(line)
        if not match:
            continue
        title = _clean_title(match.group("title"))
        at = _seconds(match.group("h"), match.group("m"), match.group("s"))
        if title and len(title) <= 200 and at is not None and re.search(r"[^\W\d_]", title):
            return float(at), title
    return None


def timestamped_chapters(notes: str | None, duration: float | None = None) -> list[Chapter]:
    """Chapters from the notes' timestamped lines, titles as written; [] unless at least MIN_TIMESTAMPS lines carry
    a time, the times rise, and none lies past the audio's end. The first chapter starts at 0 when the first time
    is within a minute of the start (notes often begin at 00:45 after an intro)."""
    if not notes:
        return []
    found = [stamp for line in notes_lines(notes) if (stamp := _timestamp(line))]
    if len(found) < MIN_TIMESTAMPS:
        return []
    times = [at for at, _ in found]
    if any(b <= a for a, b in zip(times, times[1:])):
        return []
    if duration and times[-1] > duration + SLACK:
        return []
    chapters = [Chapter(title, at, source="notes") for at, title in found]
    if 0 < chapters[0].start <= 60:
        chapters[0] = replace(chapters[0], start=0.0)
    return _ends(chapters, duration)


def section_chapters(takeaways: list[Takeaway], duration: float | None = None) -> list[Chapter]:
    """Chapters from the notes' sections placed in the audio (takeaways from the notes, in the order spoken); a
    section that could not be placed, or that lands before the one before it, is left out."""
    chapters: list[Chapter] = []
    for takeaway in takeaways:
        if takeaway.start is None or (chapters and takeaway.start <= chapters[-1].start):
            continue
        chapters.append(Chapter(_clean_title(takeaway.title), float(takeaway.start), source="notes"))
    return _ends(chapters, duration)


def fill_gaps(from_notes: list[Chapter], generated: list[Chapter], duration: float | None = None) -> list[Chapter]:
    """The notes' chapters, with generated ones only where the notes leave more than GAP_TO_FILL seconds before
    their first chapter; [] of notes chapters gives the generated ones unchanged."""
    if not from_notes:
        return generated
    first = from_notes[0].start
    if first < GAP_TO_FILL:
        if first > 0:
            from_notes = [replace(from_notes[0], start=0.0)] + from_notes[1:] if first <= 60 else \
                [Chapter("Introduction", 0.0, source="generated")] + from_notes
        return _ends(from_notes, duration)
    before = [c for c in generated if c.start < first - 60] or [Chapter("Introduction", 0.0, source="generated")]
    before[0] = replace(before[0], start=0.0)
    return _ends(before + from_notes, duration)


def _ends(chapters: list[Chapter], duration: float | None) -> list[Chapter]:
    out = []
    for i, chapter in enumerate(chapters):
        end = chapters[i + 1].start if i + 1 < len(chapters) else duration
        out.append(replace(chapter, end=end))
    return out
