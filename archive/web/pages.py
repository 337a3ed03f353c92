"""The site's HTML pages: home, episodes, one episode (read and play), search, guests, shows."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from flask import Blueprint, Response, abort, current_app, render_template, request, send_file, url_for

from archive import queries
from archive.errors import NotFoundError
from archive.people import find_people
from archive.sanitize import clean_notes, public_url

from . import params
from .db import get_db
from .episode_view import (ReadingView, artwork, show_artwork, soundbites, takeaway_parts, transcript_cache,
                           transcript_view, trim_notes)
from .media import MEDIA_HEADERS, local_audio_path, media_type
from .searching import SearchProblem, group_by_episode, run_search

bp = Blueprint("pages", __name__)

PAGINATION_KEEPS = ("show", "guest", "year", "q")


@dataclass
class Pagination:
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def url(self, page: int) -> str:
        kept = {name: value for name, value in request.args.items() if name in PAGINATION_KEEPS and value}
        return url_for(request.endpoint, **(request.view_args or {}), **kept, page=page)


def moment_url(episode_id: int, seconds: float | None) -> str:
    """The site URL of a moment: /episodes/<id>?t=<s>#t<s>, or the episode itself when there is no time."""
    if seconds is None:
        return url_for("pages.episode", episode_id=episode_id)
    second = int(seconds)
    return url_for("pages.episode", episode_id=episode_id, t=second, _anchor=f"t{second}")


bp.add_app_template_global(moment_url)


@bp.get("/")
def home():
    db = get_db()
    shows = queries.list_shows(db)
    return render_template(
        "home.html",
        shows=shows,
        artworks={show["id"]: show_artwork(db, show) for show in shows},
        latest=queries.list_episodes(db, limit=10),
        total_episodes=queries.count_episodes(db),
    )


@bp.get("/episodes")
def episodes():
    db = get_db()
    show_id = params.get_show_id(request.args)
    guest = params.get_slug(request.args, "guest")
    year = params.get_year(request.args)
    page = params.get_page(request.args)
    pagination = Pagination(page, current_app.config["PER_PAGE"], queries.count_episodes(db, show_id, guest, year))
    rows = queries.list_episodes(db, show_id, guest, year, limit=pagination.per_page, offset=pagination.offset)
    return render_template(
        "episodes.html",
        episodes=rows,
        people=queries.people_by_episode(db, [row["id"] for row in rows]),
        pagination=pagination,
        shows=queries.list_shows(db),
        years=queries.episode_years(db, show_id),
        filters={"show": show_id, "guest": guest, "year": year},
        guest=_person_or_none(db, guest),
    )


def _person_or_none(db, slug: str | None) -> dict | None:
    if not slug:
        return None
    try:
        return queries.get_person(db, slug)
    except NotFoundError:
        return None


@bp.get("/episodes/<int:episode_id>")
def episode(episode_id: int):
    db = get_db()
    details = queries.episode_details(db, episode_id)
    row, transcript = details.episode, details.transcript
    # chapter starts are topic shifts: a paragraph starts at each; rendered once per version of the transcript
    view = transcript_view(db, episode_id, [chapter["start"] for chapter in details.chapters],
                           transcript_cache(current_app)) if transcript else ReadingView()
    start_at = params.parse_time(request.args.get("t"))
    takeaways = [{**item, **takeaway_parts(item["text"])} for item in details.takeaways]
    return render_template(
        "episode.html",
        episode=row,
        guests=details.guests,
        hosts=details.hosts,
        notes=trim_notes(clean_notes(row["notes_html"] or row["description"]), details.takeaways),
        takeaways=takeaways,
        chapters=details.chapters,
        soundbites=soundbites(db, episode_id),
        artwork=artwork(db, row),
        transcript=transcript,
        has_transcript=bool(view),
        transcript_html=view.html(start_at),
        anchor_for=view.anchor_for,
        start_at=start_at,
        audio=audio_source(db, row),
    )


def audio_source(db, episode: dict) -> dict | None:
    """What the player plays: the archived copy (served here, seekable), else the feed's enclosure."""
    audio = queries.get_audio(db, episode["id"])
    if local_audio_path(audio):
        return {
            "url": url_for("pages.episode_audio", episode_id=episode["id"]),
            "type": media_type(audio["content_type"] or episode["enclosure_type"]),
            "local": True,
        }
    url = public_url(episode["enclosure_url"])
    if url:
        return {"url": url, "type": episode["enclosure_type"], "local": False}
    return None


@bp.get("/episodes/<int:episode_id>/audio")
def episode_audio(episode_id: int):
    db = get_db()
    episode = queries.get_episode(db, episode_id)
    audio = queries.get_audio(db, episode_id)
    path = local_audio_path(audio)
    if path is None:
        abort(404, description="This episode's audio is not stored in the archive.")
    content_type = media_type(audio["content_type"] or episode["enclosure_type"])
    response = send_file(path, mimetype=content_type, conditional=True, max_age=3600)
    response.headers.update(MEDIA_HEADERS)
    return response


@bp.get("/artwork/<digest>")
def artwork_image(digest: str):
    """An image stored at ingest (ingest/artwork.py), by the digest of its bytes: it never changes."""
    row = None
    if re.fullmatch(r"[0-9a-f]{64}", digest):
        row = get_db().execute("SELECT content_type, data FROM artwork WHERE sha256 = ? LIMIT 1", [digest]).fetchone()
    if row is None:
        abort(404, description="No such artwork in this archive.")
    response = Response(row[1], mimetype=row[0])
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers.update(MEDIA_HEADERS)
    response.set_etag(digest)
    return response.make_conditional(request)


@bp.get("/search")
def search():
    db = get_db()
    config = current_app.config
    query, shortened = params.get_query(request.args, config["MAX_QUERY_CHARS"])
    problems = [f"Your query was shortened to {config['MAX_QUERY_CHARS']} characters."] if shortened else []
    form = {
        "q": query,
        "mode": _lenient(params.get_mode, request.args, problems, "hybrid"),
        "show": _lenient(params.get_show_id, request.args, problems, None),
        "guest": params.tidy_param(request.args.get("guest"))[:200],
        "since": _lenient(lambda a: params.get_date(a, "since"), request.args, problems, None),
        "until": _lenient(lambda a: params.get_date(a, "until", end_of_period=True), request.args, problems, None),
    }
    person = find_person(db, form["guest"]) if form["guest"] else None
    if form["guest"] and person is None:
        problems.append(f"No guest called “{form['guest']}” in this archive; searching everyone.")
    groups, results, status = [], [], 200
    limit = config["SEARCH_LIMIT"] if request.args.get("more") else config["SEARCH_PAGE_RESULTS"]
    if query:
        try:
            results = run_search(
                db, query, form["mode"], show=form["show"], guest=person["slug"] if person else None,
                since=form["since"], until=form["until"], limit=limit,
            )
        except SearchProblem as exc:
            problems.append(str(exc))
            status = exc.status
        groups = group_by_episode(results)
    more = len(results) == limit < config["SEARCH_LIMIT"]  # a full first page: there may be more
    more_url = url_for("pages.search", **{**request.args, "more": 1}) if more else None
    html = render_template(
        "search.html", form=form, person=person, groups=groups, result_count=len(results), problems=problems,
        shows=queries.list_shows(db), more_url=more_url,
    )
    return html, status


def _lenient(read, args, problems: list[str], default):
    """Read one filter; a bad value is reported on the page and left out, the search still runs."""
    try:
        return read(args)
    except params.BadParameter as exc:
        problems.append(f"{exc.description} — ignored.")
        return default


def find_person(db, text: str) -> dict | None:
    """A person by slug, by name, or by the only name that contains the text."""
    named = find_people(db, text, queries.PERSON_SHOWN)
    if named:
        return named[0]
    matches = queries.list_people(db, name_contains=text)
    return matches[0] if len(matches) == 1 else None


@bp.get("/guests")
def guests():
    db = get_db()
    name = params.tidy_param(request.args.get("q"))[:200]
    people = queries.list_people(db, name_contains=name or None)
    return render_template("guests.html", people=people, name=name)


@bp.get("/guests/<slug>")
def guest(slug: str):
    db = get_db()
    details = queries.person_details(db, slug)
    person = details.person
    query, shortened = params.get_query(request.args, current_app.config["MAX_QUERY_CHARS"])
    problems = [f"Your query was shortened to {current_app.config['MAX_QUERY_CHARS']} characters."] if shortened else []
    mode = _lenient(params.get_mode, request.args, problems, "hybrid")
    groups, status = [], 200
    if query:
        try:
            groups = group_by_episode(
                run_search(db, query, mode, speaker=person["slug"], limit=current_app.config["SEARCH_LIMIT"])
            )
        except SearchProblem as exc:
            problems.append(str(exc))
            status = exc.status
    html = render_template(
        "guest.html", person=person, episodes=details.episodes, takeaways=details.takeaways, query=query,
        mode=mode, groups=groups, problems=problems,
    )
    return html, status


@bp.get("/shows/<int:show_id>")
def show(show_id: int):
    db = get_db()
    row = queries.get_show(db, show_id)
    year = params.get_year(request.args)
    page = params.get_page(request.args)
    pagination = Pagination(page, current_app.config["PER_PAGE"], queries.count_episodes(db, show_id, None, year))
    rows = queries.list_episodes(db, show_id, None, year, limit=pagination.per_page, offset=pagination.offset)
    return render_template(
        "show.html", show=row, artwork=show_artwork(db, row), episodes=rows, people=queries.people_by_episode(db, [r["id"] for r in rows]),
        pagination=pagination, years=queries.episode_years(db, show_id), year=year,
    )
