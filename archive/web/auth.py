"""Producers logging in to the studio: sessions, CSRF on every form, bearer tokens for the studio API.

What other views use:

- `g.producer`: the `archive.producers.Producer` signed in with a session cookie, None when anonymous; loaded
  before every request. Under /api/studio/ a session cookie counts for nothing: `g.producer` stays None until
  `token_required` sets it from the request's bearer token.
- `@login_required`: for studio pages (flaskr's auth.login_required). An anonymous GET is sent to
  /login?next=<the page>; any other method gets 401 before the view runs.
- `@token_required`: for the studio JSON API (URL prefix /api/studio/). Only `Authorization: Bearer <token>`
  authenticates there; a missing, unknown or revoked token gets 401 JSON and a `WWW-Authenticate: Bearer`
  header.
- `require_show(show_id)`: 401 without a producer, 403 when `g.producer` may not edit the show.

CSRF: flask-wtf checks the token of every POST, PUT, PATCH and DELETE (form field `csrf_token`, or an
`X-CSRFToken` header), except under /api/studio/: that API ignores cookies, so a request forged by another site
has no credentials to ride on. A failed check is a 400 before any view runs. Forms put `{{ csrf_token() }}` in
a hidden `csrf_token` field.
"""

from __future__ import annotations

import functools
import logging
import math
from urllib.parse import urlsplit

from flask import (Blueprint, Flask, abort, current_app, g, make_response, redirect, render_template, request,
                   session, url_for)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import Unauthorized

from archive import producers
from archive.producers import Producer

from .db import get_db
from .errors import error_response

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)
csrf = CSRFProtect()
login_manager = LoginManager()

TOKEN_API_PREFIX = "/api/studio/"  # bearer tokens only, no cookies, no CSRF token
STUDIO_PATH = "/studio"  # where a login goes without a `next`


class SessionUser(UserMixin):
    """What flask-login keeps for a signed-in producer: their id and session token (see
    `producers.session_id`), so a new password ends the sessions made with the old one."""

    def __init__(self, producer: Producer, session_id: str):
        self.producer = producer
        self.id = session_id


@login_manager.user_loader
def load_user(user_id: str) -> SessionUser | None:
    if request.path.startswith(TOKEN_API_PREFIX):
        return None  # the studio API takes bearer tokens only
    producer = producers.producer_for_session(get_db(), user_id)
    return SessionUser(producer, user_id) if producer else None


def init_app(app: Flask) -> None:
    # Always: scripts cannot read the session cookie, other sites' forms and frames do not send it.
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=bool(app.config.get("SESSION_COOKIE_SECURE")),
        WTF_CSRF_CHECK_DEFAULT=False,  # check_csrf below decides, by path
    )
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # a form is good for the whole session: long edits survive
    csrf.init_app(app)
    # Anonymous pages must not read the session: that alone adds `Vary: Cookie` to the response (and caches
    # keep such pages apart per visitor). So no `current_user` in templates (they use g.producer), and no
    # remember-me upkeep after each request: the studio offers no "remember me", so there is no such cookie.
    login_manager.init_app(app, add_context_processor=False)
    app.after_request_funcs[None].remove(login_manager._update_remember_cookie)
    login_manager.session_protection = "basic"
    app.before_request(load_producer)
    app.before_request(check_csrf)
    app.context_processor(lambda: {"studio_url": request.script_root + STUDIO_PATH})
    app.register_blueprint(bp)


def load_producer() -> None:
    """g.producer: the producer of the request's session, or None. Requests without a session cookie (most of
    them) do not touch the session at all, so their responses need no `Vary: Cookie`."""
    g.producer = None
    if request.path.startswith(TOKEN_API_PREFIX):
        return
    if current_app.config["SESSION_COOKIE_NAME"] not in request.cookies:
        return
    if current_user.is_authenticated:
        g.producer = current_user.producer


def check_csrf() -> None:
    if not current_app.config["WTF_CSRF_ENABLED"] or request.path.startswith(TOKEN_API_PREFIX):
        return
    csrf.protect(apply_exemptions=True)


# --- decorators for other views ---

def login_required(view):
    """Refuse anonymous requests before the view runs: GET and HEAD go to the login page, anything else is 401."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.get("producer") is None:
            if request.method in ("GET", "HEAD"):
                here = request.script_root + (request.full_path if request.query_string else request.path)
                return redirect(url_for("auth.login", next=here))
            abort(401, description="Log in to do this.")
        return view(*args, **kwargs)

    return wrapped


def token_required(view):
    """The studio API's views: the producer named by `Authorization: Bearer <token>` on g.producer, else 401."""

    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        token = bearer_token()
        producer = producers.producer_for_token(get_db(), token) if token else None
        if producer is None:
            message = ("This API needs an 'Authorization: Bearer <token>' header (make a token with "
                       "`podarchive producer token NAME`)." if token is None else
                       "The API token is unknown or revoked.")
            response, code = error_response(Unauthorized(description=message))
            response = make_response(response, code)
            response.headers["WWW-Authenticate"] = 'Bearer realm="podarchive studio"'
            return response
        g.producer = producer
        return view(*args, **kwargs)

    return wrapped


def bearer_token() -> str | None:
    """The token of an `Authorization: Bearer ...` header; None without one ('' for a malformed one)."""
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def require_show(show_id: int) -> None:
    """Abort unless g.producer may edit the show: 401 when nobody is signed in, 403 when they may not."""
    producer = g.get("producer")
    if producer is None:
        abort(401, description="Log in to do this.")
    if not producers.can_edit(get_db(), producer, show_id):
        abort(403, description="You may not edit this show.")


# --- views ---

@bp.route("/login", methods=("GET", "POST"))
def login():
    next_url = local_path(request.values.get("next"))
    if request.method == "GET":
        if g.producer is not None:
            return redirect(next_url or request.script_root + STUDIO_PATH)
        return login_page(next_url)
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not name or not password:
        return login_page(next_url, name, "Enter your name and your password.", 400)
    db = get_db()
    address = request.remote_addr or ""
    outcome = producers.attempt_login(db, name, password, address)
    if outcome.retry_after > 0:
        message = f"Too many failed logins: try again in {describe_wait(outcome.retry_after)}."
        response = login_page(next_url, name, message, 429)
        response.headers["Retry-After"] = str(math.ceil(outcome.retry_after))
        return response
    producer = outcome.producer
    if producer is None:
        log.info("failed login from %s", address)
        return login_page(next_url, name, "Wrong name or password.", 401)
    session.clear()  # nothing from before the login (an old CSRF secret) carries over
    login_user(SessionUser(producer, producers.session_id(db, producer)))
    g.producer = producer
    return redirect(next_url or request.script_root + STUDIO_PATH)


@bp.get("/logout")
def logout_form():
    return render_template("logout.html")  # a button (POST with the CSRF token), or "you are not logged in"


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    session.clear()
    g.producer = None
    return redirect(url_for("pages.home"))


def login_page(next_url: str | None, name: str = "", message: str | None = None, status: int = 200):
    response = make_response(render_template("login.html", next_url=next_url, name=name, message=message), status)
    response.headers["Cache-Control"] = "no-store"
    return response


def local_path(target: str | None) -> str | None:
    """`target` when it is a path on this site ("/studio?x=1"), else None: never another site ("//evil.example",
    "https://evil.example", "/\\evil.example")."""
    if not target or len(target) > 2000 or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def describe_wait(seconds: float) -> str:
    seconds = math.ceil(seconds)
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"
