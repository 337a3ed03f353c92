"""The web site and JSON API over an archive.

`create_app()` is the only entry point: nothing happens at import time. Settings come from, in order, the
defaults in SETTINGS, the PODARCHIVE_* environment variables (archive/settings.py: PODARCHIVE_DB=..., values
parsed as JSON where they can be), then the mapping given to create_app (tests, the CLI).
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Callable

from flask import Flask

from archive.settings import Settings


@dataclass(frozen=True)
class Setting:
    name: str  # the app.config key
    variable: str  # the environment variable that sets it
    default: Any
    help: str


SETTINGS = tuple(Setting(variable.site, variable.name, getattr(Settings(), attribute), variable.help)
                 for attribute, variable in Settings.variables() if variable.site)
UPLOAD_REQUEST_OVERHEAD = 1024 * 1024  # a multipart form's boundaries and other fields, beside the file


def create_app(test_config: dict | None = None) -> Flask:
    app = Flask(
        __name__,
        template_folder=str(files("archive.templates")),
        static_folder=str(files("archive.static")),
        static_url_path="/static",
    )
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True
    app.config.from_mapping(Settings.from_env().site_config())  # the defaults, then the PODARCHIVE_* environment
    if test_config:
        app.config.from_mapping(test_config)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = archive_secret_key(app.config["DATABASE"])
    elif not isinstance(app.config["SECRET_KEY"], (str, bytes)):  # PODARCHIVE_SECRET_KEY=123 reads as JSON
        app.config["SECRET_KEY"] = str(app.config["SECRET_KEY"])
    if "MAX_CONTENT_LENGTH" not in (test_config or {}):
        app.config["MAX_CONTENT_LENGTH"] = max_upload_bytes(app) + UPLOAD_REQUEST_OVERHEAD
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=int(app.config["TRUSTED_PROXIES"]))

    from . import api, auth, db, errors, exports, filters, pages, show_feeds, studio_api, urls

    urls.init_app(app)
    db.init_app(app)
    filters.init_app(app)
    errors.init_app(app)
    auth.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(exports.bp)
    app.register_blueprint(show_feeds.bp)
    app.register_blueprint(studio_api.bp)
    from . import studio  # the studio's pages (/studio): after auth, whose login_required and CSRF they use

    studio.init_app(app)

    from . import corrections  # the studio's transcript corrections

    app.register_blueprint(corrections.bp)
    from . import compression

    compression.init_app(app)
    app.after_request(security_headers)
    return app


def max_upload_bytes(app: Flask) -> int:
    """STUDIO_MAX_UPLOAD_MB in bytes (a number of MiB; fractions allowed)."""
    try:
        megabytes = float(app.config["STUDIO_MAX_UPLOAD_MB"])
    except (TypeError, ValueError):
        raise ValueError(f"STUDIO_MAX_UPLOAD_MB must be a number of MB, not "
                         f"{app.config['STUDIO_MAX_UPLOAD_MB']!r}") from None
    return max(0, int(megabytes * 1024 * 1024))


def archive_secret_key(database) -> str:
    """The secret key kept beside the archive, `<database>.secret`, made on first use (created with O_EXCL and
    mode 0600, so two processes starting at once agree on one key); random for an in-memory archive."""
    import time

    from archive.errors import SecretKeyError

    if not database or str(database) == ":memory:":
        return secrets.token_hex(32)
    path = f"{os.fspath(database)}.secret"
    for _ in range(100):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                with open(path, encoding="ascii") as file:
                    key = file.read().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise SecretKeyError(f"cannot read the secret key file {path}: {exc}") from exc
            if len(key) >= 32:
                return key
            time.sleep(0.02)  # another process has just made it and is writing the key
            continue
        except OSError as exc:
            raise SecretKeyError(f"cannot create the secret key file {path}: {exc} "
                                 "(or set PODARCHIVE_SECRET_KEY)") from exc
        key = secrets.token_hex(32)
        with os.fdopen(fd, "w", encoding="ascii") as file:
            file.write(key + "\n")
            file.flush()
            os.fsync(file.fileno())
        return key
    raise SecretKeyError(f"the secret key file {path} is empty or damaged: delete it (every producer is logged "
                         "out) or set PODARCHIVE_SECRET_KEY")


_extensions_lock = threading.Lock()


def app_extension(app: Flask, key: str, make: Callable[[], Any]) -> Any:
    """The app's one object under `key` in `app.extensions`, made by `make()` on first use (once, across threads)."""
    value = app.extensions.get(key)
    if value is None:
        with _extensions_lock:
            value = app.extensions.get(key)
            if value is None:
                value = app.extensions[key] = make()
    return value


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
