"""How times, durations, dates and what feeds say read on the site (Jinja filters)."""

from __future__ import annotations

import datetime as dt

from flask import Flask

from archive.sanitize import public_guid, public_url
from archive.timefmt import clock


def timecode(seconds: float | None) -> str:
    """62.4 -> '1:02'; 3725 -> '1:02:05'."""
    return "" if seconds is None else clock(max(0, int(seconds)))


def duration_text(seconds: float | None) -> str:
    """3817 -> '1 h 3 min'; 95 -> '1 min 35 s'."""
    if not seconds or seconds <= 0:
        return ""
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if minutes < 10 and secs else f"{minutes} min"
    return f"{secs} s"


def iso_duration(seconds: float | None) -> str:
    """For <time datetime>: 3817 -> 'PT1H3M37S'."""
    if not seconds or seconds <= 0:
        return ""
    hours, rest = divmod(int(round(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    return f"PT{hours}H{minutes}M{secs}S"


def parse_iso(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def date_text(value: str | None) -> str:
    """'2022-02-27T12:00:00+00:00' -> '27 Feb 2022'."""
    parsed = parse_iso(value)
    return f"{parsed.day} {parsed:%b %Y}" if parsed else ""


def date_iso(value: str | None) -> str:
    parsed = parse_iso(value)
    return parsed.date().isoformat() if parsed else ""


def safe_url(url: str | None) -> str:
    """The URL if it is an absolute http(s) URL (`public_url`), else '': links from feeds never run script nor
    point into the machine that ingested them."""
    return public_url(url) or ""


def show_name(show: dict) -> str:
    """A show's title, else its feed's URL when that is public (never a local feed's path)."""
    return show.get("title") or public_url(show.get("feed_url")) or "Untitled show"


def init_app(app: Flask) -> None:
    app.add_template_filter(safe_url)
    app.add_template_filter(show_name)
    app.add_template_filter(public_guid)
    app.add_template_filter(timecode)
    app.add_template_filter(duration_text)
    app.add_template_filter(iso_duration)
    app.add_template_filter(date_text)
    app.add_template_filter(date_iso)
