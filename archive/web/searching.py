"""The site's side of search: one embedder per app (loaded on first use), errors turned into messages,
results grouped by episode."""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field

from flask import Flask, current_app, request
from markupsafe import Markup

from archive.embeddings import Embedder, warm_up
from archive.errors import ModelLoadError, SearchError
from archive.records import SearchResult
from archive.sanitize import clean_snippet, public_guid

from .filters import timecode

log = logging.getLogger(__name__)

_EMBEDDER_KEY = "podarchive.embedder"
_LOADED_KEY = "podarchive.embedder_loaded"
_embedder_lock = threading.Lock()


class SearchProblem(Exception):
    """A search the archive could not run; the message is for the user. `status` 400: the query or filters
    given; 503: the site's side (the embedding model would not load)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def make_embedder(setting) -> Embedder:
    """EMBEDDER setting -> an embedder: a model name (or none: the default) shares archive.query_embedding's
    process-wide instance, so the CLI and any number of apps load a model once; an Embedder object (a test's
    fake, a bench's) is used as it is."""
    if not setting or isinstance(setting, str):
        from archive.query_embedding import get_embedder as shared_embedder

        return shared_embedder(setting or None)
    return setting


def get_embedder(app: Flask | None = None) -> Embedder:
    """The app's embedder, made on first use (a real model loads only when a search first embeds)."""
    from . import app_extension

    app = app or current_app._get_current_object()
    return app_extension(app, _EMBEDDER_KEY, lambda: make_embedder(app.config["EMBEDDER"]))


def loaded_embedder(app: Flask | None = None) -> Embedder:
    """The app's embedder with its model in memory and traced for queries: the first searches of a busy site
    arrive together, and the model must load once, not once per request thread."""
    app = app or current_app._get_current_object()
    embedder = get_embedder(app)
    if not app.extensions.get(_LOADED_KEY):
        with _embedder_lock:
            if not app.extensions.get(_LOADED_KEY):
                warm_up(embedder)
                app.extensions[_LOADED_KEY] = True
    return embedder


def run_search(db, query: str, mode: str, *, show=None, guest=None, since=None, until=None,
               limit: int = 40, speaker=None) -> list[SearchResult]:
    from archive.index_refresh import serving_stale
    from archive.search import search

    try:
        embedder = get_embedder() if mode == "keyword" else loaded_embedder()
        with serving_stale():  # an ingest writing to the archive must not stall the site on index rebuilds
            return search(db, query, mode=mode, show=show, guest=guest, since=since, until=until, limit=limit,
                          embedder=embedder, speaker=speaker)
    except SearchError as exc:
        raise SearchProblem(str(exc)) from exc
    except ModelLoadError as exc:
        log.error("search: %s", exc)
        raise SearchProblem("Searching by meaning is unavailable right now: choose “Exact words”.", 503) from exc
    except sqlite3.OperationalError as exc:
        # A full-text query SQLite cannot parse is the user's input, not a broken site.
        if "fts5" in str(exc) or "syntax error" in str(exc):
            raise SearchProblem("The search could not understand that query; try plain words.") from exc
        raise


@dataclass
class Moment:
    """One search result as the page shows it."""

    url: str  # opens the episode at this moment: /episodes/<id>?t=<s>#t<s>
    start: float
    clock: str
    kind: str
    speaker: str | None
    snippet: Markup  # sanitised: only <mark> survives


@dataclass
class EpisodeHits:
    episode_id: int | None
    episode_title: str
    show: str
    show_id: int | None
    published: str | None
    url: str
    moments: list[Moment] = field(default_factory=list)


def moment_of(result: SearchResult) -> Moment:
    # The library's url is the site-relative /episodes/<id>?t=<s>; the fragment lands on the transcript line.
    url = f"{request.script_root}{result.url}#t{int(result.start)}"
    return Moment(url, result.start, timecode(result.start), result.kind, result.speaker,
                  Markup(clean_snippet(result.snippet)))


def group_by_episode(results: list[SearchResult]) -> list[EpisodeHits]:
    """Moments grouped under their episode: episodes in order of their best moment, moments best first.
    Built here, not in the template: a page of forty moments is rendered on every search."""
    groups: dict[object, EpisodeHits] = {}
    for result in results:
        key = result.episode_id if result.episode_id is not None else result.episode_guid
        group = groups.get(key)
        if group is None:
            group = groups[key] = EpisodeHits(
                result.episode_id, result.episode_title, result.show, result.show_id, result.published,
                f"{request.script_root}{result.url.split('?')[0]}",
            )
        group.moments.append(moment_of(result))
    return list(groups.values())


def result_json(result: SearchResult) -> dict:
    """A result as the API gives it: the fields of `podarchive search --json` (`SearchResult.as_dict`), with the
    snippet and the guid made safe."""
    data = result.as_dict()
    data["snippet"] = clean_snippet(result.snippet)
    data["episode_guid"] = public_guid(result.episode_guid)
    return data
