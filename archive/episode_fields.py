"""What a producer may write about an episode in the studio: the editable fields, as a typed record, and the
checks every value passes before it is stored (archive/studio.py writes them).

`validate_changes` turns what a form or an API call sent into what the archive stores, or raises
`ValidationError` naming the field (`takeaways[2].start`) and saying what is wrong; a field that is not editable
raises `NotEditableError`. Text loses control characters and bidirectional overrides (archive/sanitize.py); a
title is one line; numbers are positive whole numbers; times are seconds or clock times; dates are stored as
ISO 8601 in UTC; audio is an http(s) URL or a file already in the archive's media folder.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import asdict, dataclass, field, fields as dataclass_fields
from pathlib import Path
from typing import Any

from .errors import NotEditableError, ValidationError
from .people import display_name, normalise_name
from .sanitize import public_url, strip_unsafe_characters
from .settings import Settings

MAX_TITLE_CHARS = 300
MAX_NOTES_BYTES = 200_000  # UTF-8 bytes of a notes_markdown (and of a show's description)
MAX_TEXT_CHARS = 10_000  # a takeaway's text
MAX_NAME_CHARS = 200  # a guest's name
MAX_ITEMS = 500  # guests, takeaways or chapters of one episode
MAX_NUMBER = 1_000_000  # episode and season numbers
MAX_SECONDS = 7 * 24 * 3600.0  # a start time
SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Takeaway:
    title: str
    text: str
    start: float | None = None  # seconds; None: not placed in the episode


@dataclass(frozen=True)
class Chapter:
    title: str
    start: float  # seconds


@dataclass
class EpisodeFields:
    """What a producer edits. As an argument to `create_episode`, a field left None (or an empty list) is not
    set; `update_episode` takes a dict of only the fields that change."""

    title: str | None = None
    episode_number: int | None = None
    season: int | None = None
    published: str | None = None  # ISO 8601 UTC ("2024-05-01T00:00:00+00:00"); a date or datetime is accepted
    guests: list[str] = field(default_factory=list)  # names
    audio_url: str | None = None  # an http(s) URL, or a file stored in the media folder (PODARCHIVE_MEDIA_DIR)
    notes_markdown: str | None = None
    takeaways: list[Takeaway] = field(default_factory=list)  # or dicts {title, text, start?}
    chapters: list[Chapter] = field(default_factory=list)  # or dicts {title, start}


EDITABLE: tuple[str, ...] = tuple(f.name for f in dataclass_fields(EpisodeFields))


# -- validation ---------------------------------------------------------------------------------------------

def validate_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The changes normalised to what is stored (JSON-able: takeaways and chapters as dicts). Raises
    NotEditableError for a field that is not editable, ValidationError for a value that is not acceptable."""
    if not isinstance(changes, dict):
        raise NotEditableError("changes must be a mapping of field names to values")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise NotEditableError(f"not editable in the studio: {', '.join(map(str, unknown))} "
                               f"(editable: {', '.join(EDITABLE)})")
    return {name: VALIDATORS[name](value, name) for name, value in changes.items()}


def check_text(value, name: str, limit: int, *, required: bool = False, multiline: bool = False) -> str | None:
    """A text field as stored: unsafe characters removed, NFC, trimmed, whitespace collapsed unless `multiline`;
    None when empty. Raises ValidationError (naming the field) for non-text, a lone surrogate, a missing required
    value or more than `limit` characters."""
    if value is None:
        text = ""
    elif isinstance(value, str):
        if SURROGATE.search(value):  # JSON may carry "\ud800": no UTF-8 for it, SQLite would refuse it
            raise ValidationError(name, "holds a lone surrogate (\\ud800-\\udfff): not valid Unicode text")
        text = unicodedata.normalize("NFC", strip_unsafe_characters(value))
        if not multiline:
            text = " ".join(text.split())
    else:
        raise ValidationError(name, f"must be text, not {type(value).__name__}")
    text = text.strip()
    if not text:
        if required:
            raise ValidationError(name, "is required")
        return None
    if len(text) > limit:
        raise ValidationError(name, f"is {len(text):,} characters long; at most {limit:,}")
    return text


def check_title(value, name: str) -> str:
    return check_text(value, name, MAX_TITLE_CHARS, required=True)


def check_notes(value, name: str) -> str | None:
    if isinstance(value, str) and len(value.encode("utf-8", "surrogatepass")) > MAX_NOTES_BYTES:
        raise ValidationError(name, f"is {len(value.encode('utf-8', 'surrogatepass')):,} bytes; at most "
                                    f"{MAX_NOTES_BYTES:,} ({MAX_NOTES_BYTES // 1000} KB)")
    return check_text(value, name, MAX_NOTES_BYTES, multiline=True)


def _number(value, name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValidationError(name, "must be a whole number")
    if isinstance(value, str):
        if not re.fullmatch(r"\s*\d+\s*", value):
            raise ValidationError(name, f"must be a whole number, not {value[:40]!r}")
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(name, "must be a whole number")
    if not 1 <= value <= MAX_NUMBER:
        raise ValidationError(name, f"must be between 1 and {MAX_NUMBER:,}")
    return value


def _seconds(value, name: str, *, required: bool) -> float | None:
    """Seconds from a number or a clock ("1:02:03", "12:30")."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ValidationError(name, "is required")
        return None
    if isinstance(value, bool):
        raise ValidationError(name, "must be a time in seconds")
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"\d+(\.\d+)?|(\d+:)?\d{1,2}:\d{1,2}(\.\d+)?", text):
            raise ValidationError(name, f"must be seconds or a time like 1:02:03, not {text[:40]!r}")
        seconds = 0.0
        for part in text.split(":"):
            seconds = seconds * 60 + float(part)
        value = seconds
    if not isinstance(value, (int, float)) or value != value:  # NaN
        raise ValidationError(name, "must be a time in seconds")
    if not 0 <= value <= MAX_SECONDS:
        raise ValidationError(name, "must not be negative" if value < 0 else "is longer than a week")
    return round(float(value), 3)


def to_utc_iso(value, name: str = "published") -> str | None:
    """A date, datetime or ISO 8601 text as the archive stores times: ISO 8601 in UTC, to the second. A date is
    its midnight UTC; a datetime without zone is taken as UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValidationError(name, f"must be a date like 2024-05-01 or a time like 2024-05-01T09:00:00Z, "
                                        f"not {text[:40]!r}") from None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc)
    if not isinstance(value, dt.datetime):
        raise ValidationError(name, "must be a date or a time")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).replace(microsecond=0).isoformat()


def _published(value, name: str) -> str | None:
    return to_utc_iso(value, name)


def _items(value, name: str) -> list:
    if value is None:
        return []
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise ValidationError(name, "must be a list")
    items = list(value)
    if len(items) > MAX_ITEMS:
        raise ValidationError(name, f"has {len(items):,} items; at most {MAX_ITEMS}")
    return items


def _record(item, name: str) -> dict:
    if isinstance(item, (Takeaway, Chapter)):
        return asdict(item)
    if isinstance(item, dict):
        return item
    raise ValidationError(name, "must be an object with a title")


def _guests(value, name: str) -> list[str]:
    names, seen = [], set()
    for i, item in enumerate(_items(value, name)):
        where = f"{name}[{i}]"
        text = check_text(item, where, MAX_NAME_CHARS, required=True)
        shown, key = display_name(text), normalise_name(text)
        if not key:
            raise ValidationError(where, f"{text[:40]!r} is not a name")
        if key not in seen:
            seen.add(key)
            names.append(shown)
    return names


def _takeaways(value, name: str) -> list[dict]:
    takeaways = []
    for i, item in enumerate(_items(value, name)):
        where, record = f"{name}[{i}]", _record(item, f"{name}[{i}]")
        takeaways.append({
            "title": check_text(record.get("title"), f"{where}.title", MAX_TITLE_CHARS, required=True),
            "text": check_text(record.get("text"), f"{where}.text", MAX_TEXT_CHARS, multiline=True) or "",
            "start": _seconds(record.get("start"), f"{where}.start", required=False),
        })
    return takeaways


def _chapters(value, name: str) -> list[dict]:
    chapters = []
    for i, item in enumerate(_items(value, name)):
        where, record = f"{name}[{i}]", _record(item, f"{name}[{i}]")
        chapters.append({
            "title": check_text(record.get("title"), f"{where}.title", MAX_TITLE_CHARS, required=True),
            "start": _seconds(record.get("start"), f"{where}.start", required=True),
        })
    return sorted(chapters, key=lambda c: c["start"])


def _audio_url(value, name: str) -> str | None:
    text = check_text(value, name, 2000)
    if text is None:
        return None
    url = public_url(text)
    if url:
        return url
    if re.match(r"^[a-z][a-z0-9+.-]*:", text, re.IGNORECASE) and not re.match(r"^[A-Za-z]:[/\\]", text):
        raise ValidationError(name, "must be an http or https URL, or an uploaded file")
    media = Settings.from_env().media_dir.resolve()
    uploads = media / "uploads"  # only uploads: never the pipeline's downloads of another show's audio
    path = Path(text) if Path(text).is_absolute() else media / text
    path = path.resolve()
    if not path.is_relative_to(uploads):
        raise ValidationError(name, "an uploaded file must be in the archive's uploads folder")
    if not path.is_file():
        raise ValidationError(name, "no such uploaded file")
    return str(path)


VALIDATORS = {
    "title": check_title,
    "episode_number": _number,
    "season": _number,
    "published": _published,
    "guests": _guests,
    "audio_url": _audio_url,
    "notes_markdown": check_notes,
    "takeaways": _takeaways,
    "chapters": _chapters,
}
