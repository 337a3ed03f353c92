"""Download an episode's audio (streamed, resumable, size-capped, hashed) and check that it is audio.

The file is streamed to `<dest>.part` and renamed to `dest` when complete. A `.part` left by an interrupted run
is resumed with an HTTP Range request, guarded by If-Range with the validator (ETag or Last-Modified) of the
first attempt, kept beside it in `<dest>.part.json`; a server that ignores Range (200 instead of 206) or whose
file changed makes the download start again from zero. Transient failures are retried, each retry resuming
where the previous one stopped.

Callers name `dest` from the episode id (never from the URL path, which the feed controls).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import mimetypes
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import sqlite_utils

from archive.db import utcnow, write_transaction
from archive.errors import AudioError, PodarchiveError, UntrustedURLError
from archive.media_types import (  # noqa: F401 - re-exported: ingest.audio's names before the move
    ALLOWED_TYPES, AUDIO_APPLICATION_TYPES, GENERIC_TYPES, SNIFF_BYTES, accepted_audio_type, is_audio_type, media_type,
    sniff_audio)
from ingest import http, trust

MAX_AUDIO_BYTES = 2_000_000_000
# The truncation check trusts a declared duration only when this much longer than what decodes.
TRUNCATION_RATIO, TRUNCATION_SECONDS = 0.9, 2.0

Progress = Callable[[int, "int | None"], None]


@dataclass
class DownloadedAudio:
    path: Path
    sha256: str
    bytes: int
    content_type: str | None


@dataclass(frozen=True)
class MinimumRate:
    """Audio has no overall deadline (a long episode on a slow link takes what it takes), but a server that sends
    fewer than `min_bytes` in any `window` seconds is dropped, so a trickle cannot hold an ingest forever. What
    arrived is kept: the next run resumes from there."""

    min_bytes: int = 16_384
    window: float = 60.0


class _RateWatch:
    def __init__(self, rate: MinimumRate, url: str):
        self.rate, self.url = rate, url
        self.since, self.received = time.monotonic(), 0

    def add(self, size: int) -> None:
        self.received += size
        now = time.monotonic()
        if now - self.since >= self.rate.window:
            if self.received < self.rate.min_bytes:
                raise AudioError(f"{self.url} is too slow: {self.received} bytes in {now - self.since:.0f} s "
                                 f"(at least {self.rate.min_bytes} every {self.rate.window:g} s)")
            self.since, self.received = now, 0


class _Restart(Exception):
    """The partial file cannot be resumed: drop it and start from zero."""


def download_audio(url: str, dest: str | os.PathLike, client: httpx.Client, max_bytes: int = MAX_AUDIO_BYTES,
                   progress: Progress | None = None, options: http.HttpOptions | None = None,
                   policy: trust.FetchPolicy | None = None,
                   min_rate: MinimumRate = MinimumRate()) -> DownloadedAudio:
    """Download `url` to the file `dest` (an existing folder gets a file named from the URL's hash).

    `policy` is what the feed that named the URL may reach (default: the policy of the URL itself, as if the
    operator had named it). Raises AudioError for a URL the trust rules refuse, HTTP errors, a content type
    that is not audio (or, when it says nothing, first bytes that are not audio), or a file over `max_bytes`.
    """
    policy = policy or http.feed_policy(url, client=client)
    try:
        trust.check_url(url, policy)
    except PodarchiveError as exc:
        raise AudioError(str(exc)) from exc
    dest = _destination(Path(dest), url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if trust.is_file_url(url):
        return _copy_local(url, dest, max_bytes, progress, policy)
    part, meta = _part_paths(dest)

    def attempt() -> str | None:
        try:
            return _stream(url, part, meta, client, max_bytes, progress, policy, min_rate)
        except _Restart:
            _remove(part, meta)
            return _stream(url, part, meta, client, max_bytes, progress, policy, min_rate)

    try:
        content_type = http.with_retries(attempt, options)
    except http.RetryableStatus as exc:
        raise AudioError(f"could not download audio {url}: HTTP {exc.response.status_code}") from exc
    except (httpx.HTTPError, httpx.InvalidURL, _Restart) as exc:
        raise AudioError(f"could not download audio {url}: {exc or type(exc).__name__}") from exc
    except UntrustedURLError as exc:  # a redirect hop the trust rules refuse
        raise AudioError(str(exc)) from exc
    except OSError as exc:
        raise AudioError(f"could not write audio to {part}: {exc.strerror or exc}") from exc
    digest, size = _hash_file(part)
    os.replace(part, dest)
    meta.unlink(missing_ok=True)
    return DownloadedAudio(path=dest, sha256=digest, bytes=size, content_type=content_type)


def _destination(dest: Path, url: str) -> Path:
    if dest.is_dir():
        return dest / f"audio-{hashlib.sha256(url.encode()).hexdigest()[:16]}"
    return dest


def _part_paths(dest: Path) -> tuple[Path, Path]:
    return dest.with_name(dest.name + ".part"), dest.with_name(dest.name + ".part.json")


def _remove(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _resume_headers(url: str, part: Path, meta: Path) -> dict:
    """Range + If-Range for an existing partial file of the same URL; {} (start over) otherwise."""
    if not part.exists() or not meta.exists():
        _remove(part, meta)
        return {}
    try:
        saved = json.loads(meta.read_text())
    except (OSError, ValueError):
        saved = {}
    validator = saved.get("etag") or saved.get("last_modified")
    size = part.stat().st_size
    if saved.get("url") != url or not validator or size == 0:
        _remove(part, meta)
        return {}
    return {"Range": f"bytes={size}-", "If-Range": validator}


def _stream(url: str, part: Path, meta: Path, client: httpx.Client, max_bytes: int,
            progress: Progress | None, policy: trust.FetchPolicy, min_rate: MinimumRate) -> str | None:
    """One attempt: stream the (rest of the) file into `part`. Returns the normalised content type."""
    headers = {"Accept-Encoding": "identity"} | _resume_headers(url, part, meta)
    with client.stream("GET", url, headers=headers, extensions=http.policy_extensions(policy)) as response:
        status = response.status_code
        if status in http.RETRY_STATUSES:
            raise http.RetryableStatus(response)
        if status == 416 and "Range" in headers:
            raise _Restart()
        if status >= 400:
            raise AudioError(f"could not download audio {url}: HTTP {status}")
        declared_type = response.headers.get("content-type")
        if not is_audio_type(declared_type):
            raise AudioError(f"{url} is not audio: the server sent {declared_type}")
        offset = _resume_offset(response, headers, part)
        total = _total_size(response, offset)
        if total is not None and total > max_bytes:
            raise AudioError(f"{url} is {total} bytes, over the limit of {max_bytes}")
        chunks = response.iter_raw()  # as received: a dropped connection keeps every byte read
        first = _first_bytes(chunks) if not offset else b""
        head = first if not offset else _file_head(part)
        content_type = accepted_audio_type(declared_type, head, url)
        _write_meta(meta, url, response)
        done, watch = offset, _RateWatch(min_rate, url)
        with open(part, "ab" if offset else "wb") as out:
            for chunk in itertools.chain([first] if first else [], chunks):
                watch.add(len(chunk))
                done += len(chunk)
                if done > max_bytes:
                    out.close()
                    _remove(part, meta)
                    raise AudioError(f"{url} is over the limit of {max_bytes} bytes")
                out.write(chunk)
                if progress:
                    progress(done, total)
        if total is not None and done < total:
            raise httpx.ReadError(f"connection closed after {done} of {total} bytes")
    return content_type


def _first_bytes(chunks) -> bytes:
    """Enough of the body's first chunks to sniff (all of them when the body is shorter)."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break
    return head


def _file_head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(SNIFF_BYTES)


def _resume_offset(response: httpx.Response, headers: dict, part: Path) -> int:
    """Where this response's body starts in the file: the partial size for a matching 206, else 0."""
    if "Range" not in headers:
        return 0
    if response.status_code != 206:
        return 0  # the server ignored Range, or the file changed (If-Range): the full file follows
    match = re.match(r"bytes (\d+)-", response.headers.get("content-range", ""))
    if not match or int(match.group(1)) != part.stat().st_size:
        raise _Restart()
    return part.stat().st_size


def _total_size(response: httpx.Response, offset: int) -> int | None:
    match = re.search(r"/(\d+)\s*$", response.headers.get("content-range", ""))
    if match:
        return int(match.group(1))
    length = response.headers.get("content-length")
    return offset + int(length) if length and length.isdigit() else None


def _write_meta(meta: Path, url: str, response: httpx.Response) -> None:
    validators = {"etag": response.headers.get("etag"), "last_modified": response.headers.get("last-modified")}
    if validators["etag"] and validators["etag"].startswith("W/"):
        validators["etag"] = None  # weak validators cannot guard a byte range
    meta.write_text(json.dumps({"url": url, **validators}))


def _hash_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1024 * 1024):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _copy_local(url: str, dest: Path, max_bytes: int, progress: Progress | None,
                policy: trust.FetchPolicy) -> DownloadedAudio:
    """Copy a local file the policy allows (inside the feed's folder, a regular file), never past `max_bytes`."""
    part = dest.with_name(dest.name + ".part")
    try:
        source = trust.local_file(url, policy)
        with open(source, "rb") as handle, open(part, "wb") as out:
            head = handle.read(SNIFF_BYTES)
            content_type = accepted_audio_type(mimetypes.guess_type(source.name)[0], head, str(source))
            copied = 0
            while chunk := (head or handle.read(1024 * 1024)):
                head = b""
                copied += len(chunk)
                if copied > max_bytes:
                    raise AudioError(f"{source} is over the limit of {max_bytes} bytes")
                out.write(chunk)
    except (OSError, UntrustedURLError) as exc:
        _remove(part)
        raise AudioError(f"could not copy audio {url}: {getattr(exc, 'strerror', None) or exc}") from exc
    except AudioError:
        _remove(part)
        raise
    digest, size = _hash_file(part)
    os.replace(part, dest)
    if progress:
        progress(size, size)
    return DownloadedAudio(path=dest, sha256=digest, bytes=size, content_type=content_type)


def save_audio(db: sqlite_utils.Database, episode_id: int, url: str, downloaded: DownloadedAudio) -> None:
    """Record (or replace) the episode's downloaded audio file."""
    with write_transaction(db):
        db["audio"].upsert(
            {
                "episode_id": episode_id,
                "url": url,
                "path": str(downloaded.path),
                "content_type": downloaded.content_type,
                "bytes": downloaded.bytes,
                "sha256": downloaded.sha256,
                "downloaded_at": utcnow(),
            },
            pk="episode_id",
        )


# ---------------------------------------------------------------------------------------------------------
# Is it audio?


def declared_duration(container) -> float | None:
    """The duration a file's headers give (seconds), or None."""
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def probe_audio(path: str | os.PathLike) -> float:
    """Duration in seconds of an audio file whose first frames decode; AudioError for anything else.

    Cheap: only the start is decoded, so a truncated file passes here (`load_audio` decodes it all and notices).
    """
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio stream")
            decoded = 0.0
            for frame in _frames(container, limit=50):
                decoded += frame.samples / (frame.sample_rate or 1)
            if decoded == 0:
                raise AudioError(f"{path}: no audio could be decoded")
            duration = declared_duration(container)
    except av.error.FFmpegError as exc:
        raise AudioError(f"{path} is not readable audio: {exc}") from exc
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return duration if duration else decoded


def _frames(container, limit: int | None = None):
    """Decoded audio frames, skipping frames the decoder rejects (as faster-whisper does)."""
    import av

    count = 0
    iterator = container.decode(audio=0)
    while limit is None or count < limit:
        try:
            frame = next(iterator)
        except StopIteration:
            return
        except av.error.InvalidDataError:
            continue
        count += 1
        yield frame


def load_audio(path: str | os.PathLike, sampling_rate: int = 16000):
    """Decode a whole file to mono float32 samples (faster-whisper's decoder), refusing files that are not
    audio, hold no samples, or stop well before the duration their headers declare (truncated)."""
    import av
    from faster_whisper.audio import decode_audio

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioError(f"{path} has no audio stream")
            declared = declared_duration(container)
        samples = decode_audio(str(path), sampling_rate=sampling_rate)
    except av.error.FFmpegError as exc:
        raise AudioError(f"{path} is not readable audio: {exc}") from exc
    except OSError as exc:
        raise AudioError(f"cannot read {path}: {exc.strerror or exc}") from exc
    decoded = len(samples) / sampling_rate
    if decoded == 0:
        raise AudioError(f"{path}: no audio could be decoded (corrupt or not audio)")
    if declared and decoded < declared * TRUNCATION_RATIO and declared - decoded > TRUNCATION_SECONDS:
        raise AudioError(
            f"{path} is truncated or corrupt: only {decoded:.1f} s of its {declared:.1f} s decode"
        )
    return samples
