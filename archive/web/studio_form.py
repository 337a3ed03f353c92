"""The studio's episode editor form: what the page shows, and what a POST of it sent turned into the changes
`archive.studio` takes.

The form works without JavaScript: takeaways and chapters are numbered rows (`takeaways-3-title`, ...) with a
position and a remove checkbox, and a few blank rows to fill; blank rows are ignored. Values are checked field
by field with the studio's own validators, so every field's error is shown at once, next to the field
(`errors` keys: a field name, or `takeaways-<row>-<part>` for a row). A field whose value is the same as the
episode's (after the validators normalise both) is not sent: a producer saving a feed episode takes over only the
fields they changed.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from werkzeug.datastructures import MultiDict

from archive.episode_fields import MAX_ITEMS, validate_changes
from archive.errors import ValidationError
from archive.people import normalise_name
from archive.timefmt import clock

ROW_PARTS = {"takeaways": ("title", "text", "start"), "chapters": ("title", "start")}
BLANK_ROWS = 2  # blank rows under the filled ones, for adding without JavaScript
ADDED_ROWS = 3  # more blank rows after "Add another"
MAX_ROWS = MAX_ITEMS + 100
ROW_KEY = re.compile(r"^(takeaways|chapters)-(\d{1,4})-(title|text|start|position|remove)$")
ERROR_FIELD = re.compile(r"^(\w+)(?:\[(\d+)\](?:\.(\w+))?)?$")
TEXT_FIELDS = ("title", "episode_number", "season", "published", "notes_markdown")

LABELS = {
    "title": "Title", "episode_number": "Number", "season": "Season", "published": "Date", "guests": "Guests",
    "audio_url": "Audio", "notes_markdown": "Notes", "takeaways": "Takeaways", "chapters": "Chapters",
    "text": "Text", "start": "Time", "publish_at": "Publication time",
}


@dataclass
class Row:
    """One takeaway or chapter row as typed (chapters have no text)."""

    title: str = ""
    text: str = ""
    start: str = ""
    remove: bool = False

    @property
    def blank(self) -> bool:
        return not (self.title.strip() or self.text.strip() or self.start.strip())


@dataclass
class EpisodeForm:
    title: str = ""
    episode_number: str = ""
    season: str = ""
    published: str = ""  # datetime-local, UTC: 2024-05-01T09:30
    guests: str = ""  # one name per line (or comma separated)
    guest_add: str = ""  # one more name, picked from the datalist
    audio_url: str = ""
    audio_upload: str = ""  # signed name of a file uploaded with an earlier post of this form
    audio_upload_name: str = ""  # its name as the producer's computer called it
    audio_remove: bool = False
    notes_markdown: str = ""
    takeaways: list[Row] = field(default_factory=list)
    chapters: list[Row] = field(default_factory=list)
    publish_at: str = ""  # datetime-local, UTC
    revision: str = ""  # the episode's last revision when the form was opened

    def with_blank_rows(self, takeaways: int = BLANK_ROWS, chapters: int = BLANK_ROWS) -> "EpisodeForm":
        """The form to show: filled rows, then blank ones to add with."""
        self.takeaways = [row for row in self.takeaways if not row.blank] + [Row() for _ in range(takeaways)]
        self.chapters = [row for row in self.chapters if not row.blank] + [Row() for _ in range(chapters)]
        return self


# -- showing --------------------------------------------------------------------------------------------------

def exact_clock(seconds: float | None) -> str:
    """Seconds as the form shows them, exactly: 754 -> '12:34', 3725.5 -> '1:02:05.5'."""
    if seconds is None:
        return ""
    seconds = round(float(seconds), 3)
    whole = math.floor(seconds)
    fraction = f"{seconds - whole:.3f}".rstrip("0").rstrip(".")[1:]  # ".5" or ""
    return clock(whole) + fraction


def local_input(iso: str | None) -> str:
    """A stored UTC time as a datetime-local value: '2024-05-01T09:30:00+00:00' -> '2024-05-01T09:30'."""
    if not iso:
        return ""
    text = iso.replace("Z", "+00:00")
    text = text[:-6] if text.endswith("+00:00") else text
    return text[:16] if text.endswith(":00") and len(text) == 19 else text


def form_from_episode(episode: dict) -> EpisodeForm:
    """The form of `archive.studio.studio_episode(...)`."""
    fields = episode["fields"]
    audio = fields["audio_url"] or ""
    last = episode.get("last_change") or {}
    return EpisodeForm(
        title=fields["title"] or "",
        episode_number=str(fields["episode_number"] or ""),
        season=str(fields["season"] or ""),
        published=local_input(fields["published"]),
        guests="\n".join(fields["guests"]),
        audio_url=audio if is_web_url(audio) else "",
        notes_markdown=fields["notes_markdown"] or "",
        takeaways=[Row(t["title"] or "", t["text"] or "", exact_clock(t["start"])) for t in fields["takeaways"]],
        chapters=[Row(c["title"] or "", "", exact_clock(c["start"])) for c in fields["chapters"]],
        publish_at=local_input(episode.get("publish_at")),
        revision=str(last.get("revision_id") or ""),
    )


def is_web_url(value: str | None) -> bool:
    return bool(value) and value.lower().startswith(("http://", "https://"))


# -- reading a POST ---------------------------------------------------------------------------------------------

def form_from_request(data: MultiDict) -> EpisodeForm:
    """The form as posted; rows in the order of their positions (unnumbered ones keep their place)."""
    form = EpisodeForm(**{name: data.get(name, "") for name in (
        *TEXT_FIELDS, "guests", "guest_add", "audio_url", "audio_upload", "audio_upload_name", "publish_at",
        "revision")})
    form.audio_remove = bool(data.get("audio_remove"))
    rows: dict[str, dict[int, dict]] = {"takeaways": {}, "chapters": {}}
    for key in data:
        match = ROW_KEY.match(key)
        if match and (int(match[2]) in rows[match[1]] or len(rows[match[1]]) < MAX_ROWS):
            rows[match[1]].setdefault(int(match[2]), {})[match[3]] = data.get(key, "")
    for name in ROW_PARTS:
        numbered = sorted(rows[name].items(), key=lambda item: (_position(item[1].get("position")), item[0]))
        setattr(form, name, [Row(title=values.get("title", ""), text=values.get("text", ""),
                                 start=values.get("start", ""), remove=bool(values.get("remove")))
                             for _, values in numbered])
    return form


def _position(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.inf
    except ValueError:
        return math.inf


def move_row(rows: list[Row], index: int, direction: str) -> None:
    """Move a filled row one place up or down among the filled rows."""
    filled = [row for row in rows if not row.blank]
    other = index - 1 if direction == "up" else index + 1
    if 0 <= index < len(filled) and 0 <= other < len(filled):
        filled[index], filled[other] = filled[other], filled[index]
        rows[:] = filled + [row for row in rows if row.blank]


def split_names(text: str) -> list[str]:
    return [name.strip() for name in re.split(r"[\n,;]", text or "") if name.strip()]


def raw_values(form: EpisodeForm) -> tuple[dict, dict[str, list[int]]]:
    """The editable fields as `validate_changes` takes them (audio apart: the view decides it), and for
    takeaways and chapters, which form row each item of the list came from."""
    values = {name: getattr(form, name) for name in TEXT_FIELDS}
    values["guests"] = split_names(form.guests) + split_names(form.guest_add)
    rows_of: dict[str, list[int]] = {}
    for name, parts in ROW_PARTS.items():
        items, rows_of[name] = [], []
        for number, row in enumerate(form_rows(form, name)):
            if row.remove:
                continue
            items.append({part: getattr(row, part) for part in parts})
            rows_of[name].append(number)
        values[name] = items
    return values, rows_of


def form_rows(form: EpisodeForm, name: str) -> list[Row]:
    """The filled rows, in the order the page shows them after a post (blank ones are dropped)."""
    return [row for row in getattr(form, name) if not row.blank]


def changes(form: EpisodeForm, current: dict | None) -> tuple[dict, dict[str, str]]:
    """What the producer changed: ({field: value as posted}, {error key: message}). With `current` (the
    episode's fields) None, every field is given (a new episode)."""
    values, rows_of = raw_values(form)
    found, errors = {}, {}
    for name, value in values.items():
        if current is not None and same(name, value, current.get(name)):
            continue
        problems = row_errors(name, value, rows_of) if name in ROW_PARTS else {}
        if not problems:
            try:
                validate_changes({name: value})
            except ValidationError as exc:
                problems = {error_key(exc.field, rows_of): message(exc)}
        if problems:
            errors.update((key, text) for key, text in problems.items() if key not in errors)
            continue
        found[name] = value
    return found, errors


PLACEHOLDERS = {"takeaways": {"title": "x", "text": "", "start": None}, "chapters": {"title": "x", "start": 0}}


def row_errors(name: str, items: list[dict], rows_of: dict[str, list[int]]) -> dict[str, str]:
    """Every row's every wrong part (the validators stop at the first)."""
    errors = {}
    for index, item in enumerate(items[:MAX_ITEMS]):
        for part, value in item.items():
            try:
                validate_changes({name: [{**PLACEHOLDERS[name], part: value}]})
            except ValidationError as exc:
                field_name = exc.field.replace(f"{name}[0]", f"{name}[{index}]", 1)
                errors[error_key(field_name, rows_of)] = message(exc)
    return errors


def same(name: str, posted, stored) -> bool:
    """Whether a posted value is the stored one (both normalised by the studio's validators)."""
    if _empty(posted) and _empty(stored):
        return True
    try:
        mine, theirs = validate_changes({name: posted})[name], validate_changes({name: stored})[name]
    except ValidationError:
        return False
    if name == "guests":
        return sorted(map(normalise_name, mine)) == sorted(map(normalise_name, theirs))
    return mine == theirs


def _empty(value) -> bool:
    return value is None or value == [] or (isinstance(value, str) and not value.strip())


def error_key(field_name: str, rows_of: dict[str, list[int]]) -> str:
    """A ValidationError's field (`takeaways[2].start`) as the key of the form element it is about."""
    match = ERROR_FIELD.match(field_name or "")
    if not match:
        return "form"
    name, index, part = match[1], match[2], match[3]
    if name in ROW_PARTS and index is not None and int(index) < len(rows_of.get(name, [])):
        return f"{name}-{rows_of[name][int(index)]}-{part or 'title'}"
    return name


def message(exc: ValidationError) -> str:
    """'Season must be a whole number', 'Time is required'."""
    match = ERROR_FIELD.match(exc.field or "")
    part = (match[3] or match[1]) if match else ""
    if match and match[1] in ROW_PARTS and not match[3] and match[2] is None:
        part = match[1]
    label = LABELS.get(part, part.replace("_", " ").capitalize() or "This field")
    if match and match[1] == "guests" and match[2] is not None:
        label = f"Guest {int(match[2]) + 1}"
    return f"{label} {exc.message}"
