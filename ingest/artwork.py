"""Show and episode artwork, fetched at ingest under the trust rules and stored for the site to serve itself.

A page that loaded a feed's image from the feed's host would tell that host who reads the archive, and the host
could swap the image at any time. So the artwork a feed names (`shows.image`, `episodes.image`) is fetched once,
like a transcript file: only where the feed's trust policy allows (ingest/trust.py; a local feed's own folder for
file: URLs), capped in bytes and time. It is decoded by Pillow (JPEG, PNG, GIF or WebP only: never SVG, which can
carry script), checked against a pixel budget (a decompression bomb stops there), fitted into
`ArtworkOptions.max_side` pixels and re-encoded: what the site serves are the archive's own bytes, without the
stranger's metadata. One image is stored per URL (a show's artwork, shared by its episodes, is fetched once).

Re-running skips stored URLs. A failure is recorded with its reason; a passing one (network, HTTP 5xx or 429) is
tried again on the next run, a lasting one (HTTP 4xx, not an image, refused by the trust rules) only when the feed
names another URL. A host that cannot be reached, or fails `MAX_PASSING_FAILURES` times, is not asked again in
the same run, and a show's artwork gets `ArtworkOptions.seconds_per_show` a run: what is left waits for the next. Artwork never fails an ingest: a missing image only leaves the page without one.

fetch_artwork does network, prepare_artwork the image work, save_artwork / save_artwork_error the storage.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
import sqlite_utils

from archive.db import utcnow, write_transaction
from archive.errors import ArtworkError, FetchDeadlineError, PodarchiveError

from . import http, trust

log = logging.getLogger(__name__)

ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
TRANSIENT_STATUSES = {408, 425, 429} | set(range(500, 600))
# A host that fails this often in one run (timeouts, 5xx) is not asked again until the next run: a feed naming
# thousands of images on a slow host cannot hold an ingest for thousands of deadlines.
MAX_PASSING_FAILURES = 3


@dataclass(frozen=True)
class ArtworkOptions:
    max_bytes: int = 10_000_000  # what the feed's host may send for one image
    max_pixels: int = 40_000_000  # decoded size limit (an 8000 x 5000 image): past it, a decompression bomb
    max_side: int = 600  # the stored image fits in a square this many pixels wide
    jpeg_quality: int = 85
    deadline_seconds: float = 30.0
    # A show's artwork may take this long a run; what is left waits for the next run (a feed naming thousands of
    # images on hosts that never answer cannot hold an ingest for thousands of timeouts).
    seconds_per_show: float = 120.0


@dataclass(frozen=True)
class PreparedArtwork:
    data: bytes
    content_type: str
    width: int
    height: int
    sha256: str
    source_sha256: str


@dataclass
class ArtworkReport:
    stored: int = 0
    failed: int = 0
    deferred: int = 0  # left for the next run: their host was skipped or their show's time was spent
    skipped_hosts: set[str] = field(default_factory=set)
    passing_failures: dict[str, int] = field(default_factory=dict)  # per host, in this run
    errors: list[tuple[str, str]] = field(default_factory=list)  # (url, why)


class _PassingFailure(ArtworkError):
    """A failure that may pass (network, HTTP 5xx): the URL is tried again on the next run."""


class _HostUnreachable(_PassingFailure):
    """No connection to the host at all: its other images are not tried in this run."""


# ---- network ---------------------------------------------------------------------------------------------------

def fetch_artwork(url: str, client: httpx.Client, policy: trust.FetchPolicy,
                  options: ArtworkOptions = ArtworkOptions()) -> bytes:
    """The image's bytes, read only where `policy` allows. Raises ArtworkError (a `_PassingFailure` when trying
    again later may work)."""
    try:
        trust.check_url(url, policy)
        if trust.is_file_url(url):
            return trust.read_local_file(url, policy, options.max_bytes, "artwork")
        fetched = http.fetch_bytes(client, url, max_bytes=options.max_bytes, policy=policy,
                                   deadline=options.deadline_seconds, options=http.HttpOptions(attempts=1),
                                   what="artwork")
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        raise _HostUnreachable(f"could not reach {urlsplit(url).netloc}: {exc}") from exc
    except httpx.HTTPError as exc:
        raise _PassingFailure(f"could not download artwork {url}: {exc}") from exc
    except FetchDeadlineError as exc:  # a slow host today may be quicker tomorrow
        raise _PassingFailure(str(exc)) from exc
    except PodarchiveError as exc:  # refused by the trust rules, or over the size cap
        raise ArtworkError(str(exc)) from exc
    if fetched.status_code in TRANSIENT_STATUSES:
        raise _PassingFailure(f"could not download artwork {url}: HTTP {fetched.status_code}")
    if fetched.status_code >= 400:
        raise ArtworkError(f"could not download artwork {url}: HTTP {fetched.status_code}")
    return fetched.content


# ---- the image -------------------------------------------------------------------------------------------------

def prepare_artwork(data: bytes, options: ArtworkOptions = ArtworkOptions()) -> PreparedArtwork:
    """Decode, bound and re-encode an image: JPEG, or PNG when it has transparency. Raises ArtworkError for
    anything that is not a JPEG, PNG, GIF or WebP image within the pixel budget."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS) as opened:
                width, height = opened.size
                if width * height > options.max_pixels:
                    raise ArtworkError(f"artwork is {width} x {height} pixels, over the limit of "
                                       f"{options.max_pixels:,} pixels")
                opened.seek(0)  # an animation: its first frame
                if opened.format == "JPEG":  # decoded at the smallest scale (1/2 .. 1/8) still at least max_side
                    opened.draft("RGB", (options.max_side, options.max_side))
                image = ImageOps.exif_transpose(opened)
                image.load()
    except ArtworkError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ArtworkError(f"artwork is not a {', '.join(ACCEPTED_FORMATS)} image within limits: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt image data
        raise ArtworkError(f"artwork could not be decoded: {exc}") from exc
    image.thumbnail((options.max_side, options.max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if _has_transparency(image):
        image.convert("RGBA").save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        image.convert("RGB").save(out, format="JPEG", quality=options.jpeg_quality, optimize=True, progressive=True)
        content_type = "image/jpeg"
    stored = out.getvalue()
    return PreparedArtwork(stored, content_type, image.width, image.height, hashlib.sha256(stored).hexdigest(),
                           hashlib.sha256(data).hexdigest())


def _has_transparency(image) -> bool:
    if image.mode in ("RGBA", "LA"):
        return image.getextrema()[-1][0] < 255
    return image.mode == "P" and "transparency" in image.info


# ---- storage ---------------------------------------------------------------------------------------------------

def wanted_artwork(db: sqlite_utils.Database, show_ids: list[int]) -> list[tuple[str, int]]:
    """(url, show id) of the shows' and their episodes' artwork not stored yet, a show's own first; a URL whose
    last failure will not pass is left out."""
    if not show_ids:
        return []
    marks = ",".join("?" * len(show_ids))
    rows = db.execute(
        f"""SELECT url, show_id FROM (
                SELECT image AS url, id AS show_id, 0 AS rank FROM shows WHERE id IN ({marks})
                UNION ALL
                SELECT image, show_id, 1 FROM episodes WHERE show_id IN ({marks}))
            WHERE url IS NOT NULL AND url NOT IN (SELECT url FROM artwork WHERE sha256 IS NOT NULL OR retry = 0)
            ORDER BY rank, show_id""", show_ids + show_ids).fetchall()
    seen: set[str] = set()
    return [(url, show_id) for url, show_id in rows if not (url in seen or seen.add(url))]


def save_artwork(db: sqlite_utils.Database, url: str, prepared: PreparedArtwork) -> None:
    with write_transaction(db):
        db.execute(
            """INSERT INTO artwork (url, sha256, content_type, width, height, data, source_sha256, fetched_at,
                                    error, retry, attempts)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, 0, 1)
               ON CONFLICT(url) DO UPDATE SET sha256 = excluded.sha256, content_type = excluded.content_type,
                   width = excluded.width, height = excluded.height, data = excluded.data,
                   source_sha256 = excluded.source_sha256, fetched_at = excluded.fetched_at, error = NULL,
                   retry = 0, attempts = artwork.attempts + 1""",
            [url, prepared.sha256, prepared.content_type, prepared.width, prepared.height, prepared.data,
             prepared.source_sha256, utcnow()])


def save_artwork_error(db: sqlite_utils.Database, url: str, error: str, retry: bool) -> None:
    with write_transaction(db):
        db.execute(
            """INSERT INTO artwork (url, fetched_at, error, retry, attempts) VALUES (?, ?, ?, ?, 1)
               ON CONFLICT(url) DO UPDATE SET fetched_at = excluded.fetched_at, error = excluded.error,
                   retry = excluded.retry, attempts = artwork.attempts + 1""",
            [url, utcnow(), error, int(retry)])


# ---- the stage -------------------------------------------------------------------------------------------------

def store_artwork(db: sqlite_utils.Database, show_ids: list[int], client: httpx.Client, policy_for,
                  options: ArtworkOptions = ArtworkOptions()) -> ArtworkReport:
    """Fetch and store the artwork the shows and their episodes name. `policy_for(show_id)` is the trust policy
    of that show's feed."""
    report = ArtworkReport()
    spent: dict[int, float] = {}
    for url, show_id in wanted_artwork(db, show_ids):
        host = urlsplit(url).netloc
        if (host and host in report.skipped_hosts) or spent.get(show_id, 0.0) >= options.seconds_per_show:
            report.deferred += 1
            continue
        started = time.monotonic()
        try:
            prepared = prepare_artwork(fetch_artwork(url, client, policy_for(show_id), options), options)
        except ArtworkError as exc:
            passing = isinstance(exc, _PassingFailure)
            if passing and host:
                report.passing_failures[host] = report.passing_failures.get(host, 0) + 1
                if isinstance(exc, _HostUnreachable) or report.passing_failures[host] >= MAX_PASSING_FAILURES:
                    report.skipped_hosts.add(host)
            save_artwork_error(db, url, str(exc), retry=passing)
            report.failed += 1
            report.errors.append((url, str(exc)))
            log.info("artwork %s: %s", url, exc)
        else:
            save_artwork(db, url, prepared)
            report.stored += 1
        spent[show_id] = spent.get(show_id, 0.0) + time.monotonic() - started
    if report.deferred:
        log.info("artwork: %d image(s) left for the next run", report.deferred)
    return report
