"""Seconds as a clock reads them, one way for the CLI, the site, the studio and the corrections log."""

from __future__ import annotations


def clock(seconds: float, *, minute_digits: int = 1, hours: bool = False) -> str:
    """Whole seconds as h:mm:ss, or m:ss under an hour: 62.4 -> '1:02', 3725 -> '1:02:05'.

    `minute_digits=2` pads the minutes under an hour ('01:02', the CLI's columns); `hours=True` always shows
    the hours ('0:01:02')."""
    whole_hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if whole_hours or hours:
        return f"{whole_hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes:0{minute_digits}d}:{secs:02d}"
