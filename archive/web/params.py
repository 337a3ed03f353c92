"""Reading query-string parameters: clean values, or a 400 that says which parameter is wrong and why."""

from __future__ import annotations

import datetime as dt
import re

from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest

SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,199}$")
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
TIMECODE = re.compile(r"^(?:(\d{1,3}):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$")
MAX_SECONDS = 100 * 3600


class BadParameter(BadRequest):
    """A query parameter the site cannot use; shown as a 400 page or a JSON error."""

    def __init__(self, name: str, message: str):
        super().__init__(description=f"Parameter '{name}': {message}")
        self.param = name


def tidy_param(value: str | None) -> str:
    """Control characters (NUL included) removed, whitespace collapsed."""
    if not value:
        return ""
    return " ".join(CONTROL_CHARS.sub(" ", value).split())


def get_int(args: MultiDict, name: str, default: int | None = None, minimum: int = 0, maximum: int = 10**9):
    raw = tidy_param(args.get(name))
    if not raw:
        return default
    if not re.fullmatch(r"[+-]?\d{1,12}", raw):
        raise BadParameter(name, f"expected a whole number, got {raw[:40]!r}")
    value = int(raw)
    if not minimum <= value <= maximum:
        raise BadParameter(name, f"must be between {minimum} and {maximum}")
    return value


def get_page(args: MultiDict) -> int:
    return get_int(args, "page", default=1, minimum=1, maximum=100_000)


def get_year(args: MultiDict) -> int | None:
    return get_int(args, "year", minimum=1800, maximum=2200)


def get_show_id(args: MultiDict) -> int | None:
    return get_int(args, "show", minimum=1)


def get_slug(args: MultiDict, name: str = "guest") -> str | None:
    raw = tidy_param(args.get(name)).lower()
    if not raw:
        return None
    if not SLUG.match(raw):
        raise BadParameter(name, "expected a person's slug such as 'jane-doe'")
    return raw


def get_mode(args: MultiDict) -> str:
    from archive.search import MODES  # here, not at import: the site loads the search code on first use

    raw = tidy_param(args.get("mode")).lower() or "hybrid"
    if raw not in MODES:
        raise BadParameter("mode", f"must be one of {', '.join(MODES)}")
    return raw


def get_date(args: MultiDict, name: str, end_of_period: bool = False) -> str | None:
    """YYYY-MM-DD, YYYY-MM or YYYY -> an ISO date; a year or month given alone means its first (or last) day."""
    raw = tidy_param(args.get(name))
    if not raw:
        return None
    try:
        if re.fullmatch(r"\d{4}", raw):
            day = dt.date(int(raw), 12, 31) if end_of_period else dt.date(int(raw), 1, 1)
        elif re.fullmatch(r"\d{4}-\d{2}", raw):
            year, month = map(int, raw.split("-"))
            day = dt.date(year, month, 1)
            if end_of_period:
                day = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
            day = dt.date.fromisoformat(raw)
        else:
            raise ValueError
    except ValueError:
        raise BadParameter(name, f"expected a date as YYYY-MM-DD, got {raw[:40]!r}") from None
    return day.isoformat()


def get_query(args: MultiDict, max_chars: int) -> tuple[str, bool]:
    """The search text, cleaned, and whether it had to be shortened to max_chars."""
    query = tidy_param(args.get("q"))
    if len(query) > max_chars:
        return query[:max_chars].rstrip(), True
    return query, False


def parse_time(value: str | None) -> float | None:
    """'123', '123.5', '2:03' or '1:02:03' -> seconds; anything else -> None (the page just starts at 0)."""
    raw = tidy_param(value)
    if not raw:
        return None
    match = TIMECODE.match(raw)
    try:
        if match:
            hours, minutes, seconds = match.groups()
            value_s = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
        elif re.fullmatch(r"\d{1,7}(?:\.\d+)?", raw):
            value_s = float(raw)
        else:
            return None
    except ValueError:
        return None
    return value_s if 0 <= value_s <= MAX_SECONDS else None
