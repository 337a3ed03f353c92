"""A transcript's segments as WebVTT, SRT, Podcasting 2.0 JSON or readable text (CLI and web exports).

The segments come from the store (archive/transcript_store.py `load_segments`); no Whisper, no torch.

- `to_vtt`: a `<v Speaker>` voice span on every cue whose speaker is known.
- `to_srt`: a `Speaker: ` prefix on every cue whose speaker is known (the Podcasting 2.0 convention).
- `to_json`: {"version": "1.0.0", "segments": [{"speaker", "startTime", "endTime", "body"}]}, one entry per
  segment (sentence-level; "speaker" left out when unknown).
- `to_text`: paragraphs for reading (archive/transcript_reading.py: whole sentences, a new paragraph when the
  speaker changes, after a pause or after about a minute, never mid-sentence); each begins with its start time
  in brackets and, when the speaker changed, the speaker's name:
  `[00:01:02] Sarah: In today's episode ...`. `ingest.transcript_files.parse_transcript` reads this back.

The three timed formats round-trip through `parse_transcript`: times (to the millisecond), text and speakers
come back equal (an unnamed cue after a named one is read as the same speaker, as the spec intends).
"""

from __future__ import annotations

import datetime as dt
import json

import srt

from archive.records import Segment
from archive.transcript_reading import reading_paragraphs


def _clock(seconds: float, separator: str = ".") -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, rest = divmod(milliseconds, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs, millis = divmod(rest, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def _escape_vtt(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _voice(speaker: str) -> str:
    # A voice annotation ends at '>' and cannot hold a line break.
    return " ".join(_escape_vtt(speaker).split())


def to_vtt(segments: list[Segment]) -> str:
    blocks = ["WEBVTT"]
    for segment in segments:
        voice = f"<v {_voice(segment.speaker)}>" if segment.speaker else ""
        blocks.append(
            f"{_clock(segment.start)} --> {_clock(max(segment.end, segment.start))}\n"
            f"{voice}{_escape_vtt(' '.join(segment.text.split()))}"
        )
    return "\n\n".join(blocks) + "\n"


def to_srt(segments: list[Segment]) -> str:
    cues = [
        srt.Subtitle(
            index=number,
            start=dt.timedelta(milliseconds=round(segment.start * 1000)),
            end=dt.timedelta(milliseconds=round(max(segment.end, segment.start) * 1000)),
            content=(f"{segment.speaker}: " if segment.speaker else "") + " ".join(segment.text.split()),
        )
        for number, segment in enumerate(segments, start=1)
    ]
    return srt.compose(cues, reindex=False)


def to_json(segments: list[Segment]) -> str:
    items = []
    for segment in segments:
        item = {"speaker": segment.speaker} if segment.speaker else {}
        item.update(startTime=round(segment.start, 3), endTime=round(max(segment.end, segment.start), 3),
                    body=segment.text)
        items.append(item)
    return json.dumps({"version": "1.0.0", "segments": items}, ensure_ascii=False, indent=2) + "\n"


def to_text(segments: list[Segment]) -> str:
    lines = []
    for paragraph in reading_paragraphs(segments):
        label = f"{paragraph.speaker}: " if paragraph.speaker_changed else ""
        lines.append(f"[{_clock(paragraph.start)[:8]}] {label}{paragraph.text}")
    return "\n\n".join(lines) + ("\n" if lines else "")
