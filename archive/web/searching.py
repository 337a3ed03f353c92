"""The site's side of search: one embedder per app (loaded on first use), errors turned into messages,
results grouped by episode (each episode once, its best few moments, near-duplicates collapsed: see
archive/search_relevance.py), and what the results are said to be (some words only; nothing found, with the
closest episodes)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass, field

from flask import Flask, current_app, has_request_context, request, url_for
from markupsafe import Markup

from archive.embeddings import Embedder, warm_up
from archive.errors import ModelLoadError, SearchError
from archive.records import SearchResult
from archive.search_relevance import SHOWN_PER_EPISODE, SearchResults
from archive.search_relevance import group_by_episode as group_results
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
               limit: int = 40, speaker=None, episode=None) -> SearchResults:
    """The library's search with the app's embedder; `episode` searches one episode (on the search page it is
    read from the `episode` parameter when not given: the page's "more from this episode" link)."""
    from archive.index_refresh import serving_stale
    from archive.search import search

    if episode is None:
        episode = page_episode()
    try:
        embedder = get_embedder() if mode == "keyword" else loaded_embedder()
        with serving_stale():  # an ingest writing to the archive must not stall the site on index rebuilds
            return search(db, query, mode=mode, show=show, guest=guest, since=since, until=until, limit=limit,
                          embedder=embedder, speaker=speaker, episode=episode)
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


def page_episode() -> str | None:
    """The search page's `episode` filter (an episode id), None elsewhere or when not given."""
    if not has_request_context() or request.endpoint != "pages.search":
        return None
    return request.args.get("episode", "").strip() or None


@dataclass
class Moment:
    """One search result as the page shows it."""

    url: str  # opens the episode at this moment: /episodes/<id>?t=<s>#t<s>
    start: float
    clock: str
    kind: str
    speaker: str | None
    snippet: Markup  # sanitised: only <mark> survives
    some_words: bool = False  # found by some of the query's words, not all (said on the page in keyword mode)


@dataclass
class EpisodeHits:
    episode_id: int | None
    episode_title: str
    show: str
    show_id: int | None
    published: str | None
    url: str
    moments: list[Moment] = field(default_factory=list)  # shown: the best few, near-duplicates collapsed
    more: int = 0  # moments of this episode not shown (past the first few, or collapsed into a shown one)
    more_url: str | None = None  # the search again, in this episode only


class EpisodeGroups(list):
    """The page's groups (EpisodeHits, best first) and what the page says about them: `moment_count` (moments
    found), `fallback_note` (the results have only some of the words), `closest` (nothing found: the nearest
    episodes, not matches), `episode` (the page searches one episode: its title)."""

    def __init__(self, groups=(), *, moment_count: int = 0, fallback_note: str | None = None, closest=(),
                 episode: str | None = None):
        super().__init__(groups)
        self.moment_count, self.fallback_note, self.closest, self.episode = (moment_count, fallback_note,
                                                                             list(closest), episode)


def moment_of(result: SearchResult) -> Moment:
    # The library's url is the site-relative /episodes/<id>?t=<s>; the fragment lands on the transcript line.
    url = f"{request.script_root}{result.url}#t{int(result.start)}"
    return Moment(url, result.start, timecode(result.start), result.kind, result.speaker,
                  Markup(clean_snippet(result.snippet)), result.extra.get("all_words") is False)


def group_by_episode(results: list[SearchResult]) -> EpisodeGroups:
    """Moments grouped under their episode: episodes in order of their best moment, in each its best
    SHOWN_PER_EPISODE moments (near-duplicate neighbours collapsed) and a link to the rest; all of them when the
    page searches one episode. Built here, not in the template: a page of forty moments is rendered on every
    search."""
    one_episode = page_episode() is not None
    groups = []
    for found in group_results(results):
        first = found.first
        shown = found.moments if one_episode else found.moments[:SHOWN_PER_EPISODE]
        more = len(found.moments) - len(shown) + found.collapsed
        group = EpisodeHits(first.episode_id, first.episode_title, first.show, first.show_id, first.published,
                            f"{request.script_root}{first.url.split('?')[0]}", [moment_of(r) for r in shown], more)
        if more and not one_episode and first.episode_id is not None and request.args.get("q"):
            group.more_url = url_for("pages.search", q=request.args["q"], mode=request.args.get("mode", "hybrid"),
                                     episode=first.episode_id)
        groups.append(group)
    outcome = results if isinstance(results, SearchResults) else SearchResults(results)
    return EpisodeGroups(groups, moment_count=len(results), fallback_note=outcome.fallback_note(),
                         closest=[closest_json(c) for c in outcome.closest],
                         episode=results[0].episode_title if one_episode and results else None)


def closest_json(closest) -> dict:
    """A closest episode (archive.search_relevance.ClosestEpisode) as the page and the API give it."""
    return {"episode_id": closest.episode_id, "episode_title": closest.title, "show": closest.show,
            "show_id": closest.show_id, "published": closest.published, "similarity": closest.similarity,
            "url": f"{request.script_root}{closest.url}"}


def result_json(result: SearchResult) -> dict:
    """A result as the API gives it: the fields of `podarchive search --json` (`SearchResult.as_dict`), with the
    snippet and the guid made safe."""
    data = result.as_dict()
    data["snippet"] = clean_snippet(result.snippet)
    data["episode_guid"] = public_guid(result.episode_guid)
    return data
