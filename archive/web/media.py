"""Stored media as the site serves and re-publishes it: where an episode's downloaded audio is, the type it is
sent as, and the enclosure a re-published feed gives."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flask import current_app

from archive.sanitize import public_url

from .urls import external_url

FALLBACK_TYPE = "application/octet-stream"
# RFC 6838 restricted names; only audio and video are served as what they say they are.
MEDIA_TYPE = re.compile(r"(audio|video)/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# A stored file is a stranger's bytes: never sniffed, and sandboxed should a browser open it as a document.
MEDIA_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}


def media_type(value: str | None) -> str:
    """'Audio/MPEG; charset=x' -> 'audio/mpeg'; anything but a well-formed audio or video type -> octet-stream."""
    essence = (value or "").split(";", 1)[0].strip().lower()
    return essence if MEDIA_TYPE.fullmatch(essence) else FALLBACK_TYPE


def local_audio_path(audio: dict | None) -> Path | None:
    """The downloaded copy of an episode's audio, when it is still on disk."""
    if not audio or not audio.get("path"):
        return None
    path = Path(audio["path"])
    candidates = [path] if path.is_absolute() else [
        Path.cwd() / path, Path(current_app.config["DATABASE"]).resolve().parent / path,
    ]
    return next((candidate for candidate in candidates if candidate.is_file()), None)


@dataclass(frozen=True)
class Enclosure:
    url: str
    type: str
    length: int


def enclosure(episode: dict, audio: dict | None) -> Enclosure | None:
    """What a re-published feed offers as the episode's audio: its http(s) enclosure as the feed gave it; else
    (a local feed's file, anything not http(s)) the copy this site serves, at its absolute URL with its real
    length; else nothing."""
    url = public_url(episode.get("enclosure_url"))
    if url:
        return Enclosure(url, episode.get("enclosure_type") or "audio/mpeg", episode.get("enclosure_length") or 0)
    path = local_audio_path(audio)
    if path is None:
        return None
    return Enclosure(
        external_url("pages.episode_audio", episode_id=episode["id"]),
        media_type(audio.get("content_type") or episode.get("enclosure_type")),
        audio.get("bytes") or path.stat().st_size,
    )
