"""The web site and JSON API over an archive.

`create_app()` is the only entry point: nothing happens at import time. Settings come from, in order, the
defaults in SETTINGS, environment variables prefixed PODARCHIVE_ (PODARCHIVE_DATABASE=..., values parsed as
JSON where they can be), then the mapping given to create_app (tests, the CLI).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Callable

from flask import Flask


@dataclass(frozen=True)
class Setting:
    name: str
    default: Callable[[], Any]
    help: str


SETTINGS = (
    Setting("DATABASE", lambda: os.environ.get("PODARCHIVE_DB") or "podarchive.db",
            "Path of the archive's SQLite file (default: $PODARCHIVE_DB, else podarchive.db)."),
    Setting("SECRET_KEY", lambda: secrets.token_hex(32),
            "Flask's secret key; random for each process unless set."),
    Setting("EMBEDDER", lambda: None,
            "Embedding model for semantic and hybrid search: a sentence-transformers model name or folder, "
            "'fake' for the deterministic test embedder, or an Embedder object. Default: all-MiniLM-L6-v2, "
            "loaded on the first search that needs it."),
    Setting("PER_PAGE", lambda: 25, "Episodes per page on the site and the default page size of the API."),
    Setting("MAX_PER_PAGE", lambda: 100, "Largest per_page the API accepts."),
    Setting("SEARCH_LIMIT", lambda: 40, "Most moments a search page or API call returns."),
    Setting("SEARCH_PAGE_RESULTS", lambda: 20,
            "Moments the search page shows first; its “More moments” link shows up to SEARCH_LIMIT."),
    Setting("MAX_QUERY_CHARS", lambda: 500, "Longest search query; the site shortens longer ones, the API refuses them."),
    Setting("FEED_LIMIT", lambda: 1000, "Most episodes a show's re-published feed lists, newest first."),
)


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(files("archive.templates")),
        static_folder=str(files("archive.static")),
        static_url_path="/static",
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.config.from_mapping({setting.name: setting.default() for setting in SETTINGS})
    app.config.from_prefixed_env("PODARCHIVE")
    if test_config:
        app.config.from_mapping(test_config)

    from . import api, db, errors, exports, feeds, filters, pages

    db.init_app(app)
    filters.init_app(app)
    errors.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(feeds.bp)
    app.after_request(security_headers)
    return app


CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' http: https:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def security_headers(response):
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "strict-origin-when-cross-origin")
    return response
