"""Audio a producer uploads, stored in the archive's media folder.

`save_upload` streams the bytes into `<media_dir>/uploads/<random token>.part` and, once they are all there,
renames the file to `<token>.<extension of the sniffed type>`: the client's file name never becomes a path (it is
kept as metadata only, cleaned). The upload is cut off at `max_bytes` and refused unless its first bytes are a
known audio format; either way nothing of it is left on disk. The stored path is what `archive.studio`
takes as an episode's `audio_url` (a file inside the media folder).

No Flask here: the web layer hands over a request's stream and turns `UploadError` into a response.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import UploadError, UploadTooLargeError
from .media_types import SNIFF_BYTES, is_audio_type, sniff_audio
from .sanitize import strip_unsafe_characters

UPLOADS_FOLDER = "uploads"  # inside the media folder
CHUNK_BYTES = 1024 * 1024
MAX_NAME_CHARS = 255
# The file extension of each type `sniff_audio` knows (what `mimetypes` maps back to an audio type).
EXTENSIONS = {
    "audio/mpeg": ".mp3", "audio/ogg": ".ogg", "audio/flac": ".flac", "audio/wav": ".wav", "audio/aiff": ".aiff",
    "audio/mp4": ".m4a", "audio/webm": ".webm", "audio/amr": ".amr", "audio/aac": ".aac",
}


@dataclass(frozen=True)
class StoredUpload:
    path: Path  # absolute: <media_dir>/uploads/<token>.<ext>
    content_type: str  # as sniffed from the first bytes
    bytes: int
    sha256: str
    declared_name: str | None = None  # the client's file name, cleaned; metadata only, never a path


def save_upload(stream: BinaryIO, media_dir: str | os.PathLike, max_bytes: int, *, declared_name: str | None = None,
                declared_type: str | None = None) -> StoredUpload:
    """Store the bytes of `stream` (anything with `.read(n)`) as a new file in `<media_dir>/uploads/`.

    Reads at most `max_bytes + 1` bytes. Raises UploadTooLargeError past `max_bytes`, UploadError when the upload
    is empty, `declared_type` (the client's Content-Type, when given) is not an audio type, the first bytes are
    not a known audio format, or the file cannot be written. Nothing is left behind on any error (the stream's
    own errors, a client that went away, included)."""
    if max_bytes < 1:
        raise UploadError("uploads are switched off (the size cap is 0)")
    if declared_type and not is_audio_type(declared_type):
        raise UploadError(f"an upload must be audio, not {declared_type[:100]}")
    folder = Path(media_dir).resolve() / UPLOADS_FOLDER
    token = secrets.token_hex(16)
    part = folder / f"{token}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(part, "xb") as out:
            content_type, size, digest = _copy(stream, out, max_bytes)
            out.flush()
            os.fsync(out.fileno())
        path = folder / f"{token}{EXTENSIONS[content_type]}"
        os.replace(part, path)
    except OSError as exc:
        part.unlink(missing_ok=True)
        raise UploadError(f"could not store the upload: {exc.strerror or exc}") from exc
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return StoredUpload(path=path, content_type=content_type, bytes=size, sha256=digest,
                        declared_name=clean_file_name(declared_name))


def _copy(stream: BinaryIO, out: BinaryIO, max_bytes: int) -> tuple[str, int, str]:
    """Copy until the stream ends, sniffing its start; (content type, size, sha256)."""
    digest, size, head, content_type = hashlib.sha256(), 0, b"", None
    while True:
        chunk = stream.read(min(CHUNK_BYTES, max_bytes + 1 - size))
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise UploadTooLargeError(f"the upload is over the limit of {describe_size(max_bytes)}")
        if content_type is None:
            head += chunk[:SNIFF_BYTES]
            if len(head) >= SNIFF_BYTES:
                content_type = _sniffed(head)
        digest.update(chunk)
        out.write(chunk)
    if size == 0:
        raise UploadError("the upload is empty")
    if content_type is None:
        content_type = _sniffed(head)
    return content_type, size, digest.hexdigest()


def _sniffed(head: bytes) -> str:
    kind = sniff_audio(head)
    if kind is None:
        raise UploadError("the upload is not audio: its first bytes are not a known audio format (MP3, AAC, "
                          "M4A, Ogg, FLAC, WAV, AIFF, WebM, AMR)")
    return kind


def clean_file_name(name: str | None) -> str | None:
    """The last part of a client's file name, without control characters, at most MAX_NAME_CHARS; None when
    nothing is left. Metadata only: never joined to a path."""
    if not name:
        return None
    base = re.split(r"[\\/]", strip_unsafe_characters(str(name)))[-1].strip()
    base = base.encode("utf-8", "replace").decode("utf-8")[:MAX_NAME_CHARS]
    return None if base in ("", ".", "..") else base


def describe_size(count: int) -> str:
    """1048576 -> '1 MB'; sizes in MiB, as STUDIO_MAX_UPLOAD_MB counts them."""
    megabytes = count / (1024 * 1024)
    if megabytes >= 1:
        return f"{megabytes:,.0f} MB" if megabytes == int(megabytes) else f"{megabytes:,.1f} MB"
    return f"{count:,} bytes"
