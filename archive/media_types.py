"""Is it audio? Declared media types parsed strictly, and the first bytes of a file sniffed.

Pure functions, no I/O: the pipeline's downloads (ingest/audio.py) and producers' uploads (archive/uploads.py)
both ask them before keeping a stranger's bytes.
"""

from __future__ import annotations

import re

from .errors import AudioError

# Types that say nothing about the bytes: accepted only when the first bytes sniff as audio.
GENERIC_TYPES = {"application/octet-stream", "binary/octet-stream"}
AUDIO_APPLICATION_TYPES = {"application/ogg", "application/mp4", "application/x-mpegaudio"}
ALLOWED_TYPES = GENERIC_TYPES | AUDIO_APPLICATION_TYPES
_TOKEN = r"[a-z0-9][a-z0-9!#$&^_.+-]*"
_MEDIA_TYPE = re.compile(rf"^\s*({_TOKEN})/({_TOKEN})\s*(?:;\s*{_TOKEN}\s*=\s*(?:{_TOKEN}|\"[^\"]*\")\s*)*;?\s*$",
                         re.IGNORECASE)
SNIFF_BYTES = 64  # enough of a file's start for `sniff_audio`


def media_type(content_type: str | None) -> str | None:
    """The `type/subtype` of a well-formed Content-Type, lower case, parameters dropped; None when malformed
    (`audio/mpeg,text/html` is two types, not one)."""
    match = _MEDIA_TYPE.match(content_type or "")
    return f"{match.group(1)}/{match.group(2)}".lower() if match else None


def is_audio_type(content_type: str | None) -> bool:
    """Whether a declared type may be audio: a well-formed audio/* or video/* type, an audio container type, or
    a type that says nothing (missing, octet-stream), which `accepted_audio_type` then checks by sniffing."""
    if not content_type or not content_type.strip():
        return True
    kind = media_type(content_type)
    return bool(kind) and (kind.split("/")[0] in ("audio", "video") or kind in ALLOWED_TYPES)


def accepted_audio_type(content_type: str | None, head: bytes, source: str) -> str:
    """The normalised media type to store for a file with this declared type and these first bytes.

    Raises AudioError when the type is malformed or not audio, or when a type that says nothing (missing,
    octet-stream) comes with bytes that do not sniff as audio.
    """
    if not is_audio_type(content_type):
        raise AudioError(f"{source} is not audio: the server sent {content_type}")
    kind = media_type(content_type)
    if kind and kind not in GENERIC_TYPES:
        return kind
    sniffed = sniff_audio(head)
    if sniffed is None:
        raise AudioError(f"{source} is not audio: {content_type or 'no content type'}, and its first bytes are not "
                         "a known audio format")
    return sniffed


def sniff_audio(head: bytes) -> str | None:
    """The audio type the first bytes of a file announce, or None."""
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if head[:4] == b"OggS":
        return "audio/ogg"
    if head[:4] == b"fLaC":
        return "audio/flac"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "audio/aiff"
    if head[4:8] == b"ftyp":
        return "audio/mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "audio/webm"
    if head[:5] == b"#!AMR":
        return "audio/amr"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06:
        return "audio/mpeg"  # an MPEG audio frame header (layer bits not 00)
    return None
