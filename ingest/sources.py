"""What a SOURCE names (an http(s) URL or a local file), and the key its show is stored under."""

from __future__ import annotations

from ingest import trust


def is_url(source: str) -> bool:
    return source.split(":", 1)[0].lower() in ("http", "https") and "://" in source


def canonical_feed_url(source: str) -> str:
    """The show's natural key for a SOURCE: an http(s) URL as given, a local file as the file:// URI of its path."""
    return source if is_url(source) else trust.local_path(source).resolve().as_uri()
