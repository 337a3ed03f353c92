"""The absolute URLs the site makes of itself: from BASE_URL when it is set, else from the host the request
came to (which only TRUSTED_HOSTS limits)."""

from __future__ import annotations

from flask import Flask, current_app, request, url_for

from archive.sanitize import public_url


def site_root() -> str:
    """The site's public root with a trailing slash: BASE_URL, else the request's scheme, host and script root."""
    return current_app.config.get("BASE_URL") or request.host_url


def external_url(endpoint: str, **values) -> str:
    """url_for(endpoint, **values) as an absolute URL under site_root()."""
    path = url_for(endpoint, **values)[len(request.script_root):]
    return site_root().rstrip("/") + path


def init_app(app: Flask) -> None:
    """Check BASE_URL (an absolute http(s) URL; kept with one trailing slash) and offer external_url to templates."""
    base = app.config.get("BASE_URL")
    if base:
        if not public_url(base) or "?" in base or "#" in base:
            raise ValueError(
                f"BASE_URL must be an absolute http(s) URL like https://archive.example.org/, not {base!r}")
        app.config["BASE_URL"] = public_url(base).rstrip("/") + "/"
    app.add_template_global(external_url)
