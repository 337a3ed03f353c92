"""Small value parsers for what feeds write: durations, numbers, dates, URLs, and show notes' HTML as text."""

from __future__ import annotations

import calendar
import datetime as dt
import math
import posixpath
import re
from html.parser import HTMLParser
from urllib.parse import unquote, urljoin, urlsplit

from ingest import trust


_CLOCK = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_ISO_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$",
                           re.IGNORECASE)


def parse_duration(value) -> float | None:
    """Seconds from an itunes:duration: "3723", "1234.5", "MM:SS", "HH:MM:SS(.f)" or ISO 8601 "PT1H2M3S".

    Junk, negative and empty values give None.
    """
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    clock = _CLOCK.match(text)
    if clock:
        hours, minutes, seconds = clock.groups()
        return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    iso = _ISO_DURATION.match(text)
    if iso and text.upper() not in ("P", "PT"):
        days, hours, minutes, seconds = (float(part or 0) for part in iso.groups())
        return days * 86400 + hours * 3600 + minutes * 60 + seconds
    return parse_seconds(text)


def parse_seconds(value) -> float | None:
    """A non-negative, finite number of seconds, or None."""
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_int(value) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def first_positive_int(*values) -> int | None:
    """The first value that is a positive integer: itunes:season and itunes:episode are "non-zero integers"."""
    return next((number for number in map(parse_int, values) if number is not None and number > 0), None)


def iso_date(parsed_time) -> str | None:
    if not parsed_time:
        return None
    try:
        timestamp = calendar.timegm(parsed_time)
        return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).isoformat()
    except (OverflowError, ValueError, OSError):
        return None


def tidy_feed_text(value) -> str | None:
    """A feed value as text, outer whitespace trimmed; None when nothing is left."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def resolve_url(base_url: str, url) -> str | None:
    url = tidy_feed_text(url)
    if not url:
        return None
    try:
        return urljoin(base_url, url)
    except ValueError:  # e.g. a malformed IPv6 host: keep what the feed says
        return url


def web_url(base_url: str, url) -> str | None:
    """A link or image the site may show: kept only when it resolves to an http(s) URL (never fetched)."""
    resolved = resolve_url(base_url, url)
    return resolved if resolved and trust.is_http_url(resolved) else None


def fetchable_url(base_url: str, url) -> str | None:
    """A URL the archive may fetch (artwork): an http(s) URL, or a file: URL (a local feed's own folder; the trust
    rules decide at fetch time whether it may be read). Anything else is dropped here. Re-published only through
    `archive.sanitize.public_url`, which keeps http(s) alone."""
    resolved = resolve_url(base_url, url)
    return resolved if resolved and (trust.is_http_url(resolved) or trust.is_file_url(resolved)) else None


def url_basename(url: str) -> str | None:
    name = posixpath.basename(unquote(urlsplit(url).path))
    return posixpath.splitext(name)[0] or None


_BLOCK_TAGS = {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "blockquote", "pre",
               "section", "article", "header", "footer", "figure", "hr"}
_LINE_TAGS = {"br", "li", "tr", "dt", "dd"}
_SKIP_TAGS = {"script", "style", "head", "title"}
_LOOKS_LIKE_HTML = re.compile(r"<[a-z][a-z0-9]*(?:\s[^>]*)?/?>|</[a-z][a-z0-9]*>|&[a-z#0-9]+;", re.IGNORECASE)


class _TextExtractor(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag, attrs):
        self._break(tag)
        if tag in _SKIP_TAGS:
            self.skipping += 1

    def handle_startendtag(self, tag, attrs):
        self._break(tag)

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS and self.skipping:
            self.skipping -= 1
        if tag in _BLOCK_TAGS:  # a line tag (li, br, ...) breaks before itself only
            self._break(tag)

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(re.sub(r"\s+", " ", data))

    def _break(self, tag):
        if tag in _BLOCK_TAGS:
            self.parts.append("\n\n")
        elif tag in _LINE_TAGS:
            self.parts.append("\n")


def html_to_text(html: str) -> str:
    """Plain text of show notes: tags stripped, entities decoded, paragraphs and lines kept as newlines."""
    if not _LOOKS_LIKE_HTML.search(html):
        return _tidy_lines(html)
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return _tidy_lines("".join(extractor.parts))


def _tidy_lines(text: str) -> str:
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
