"""The JSON API (documented in docs/API.md): field names here are a contract, change them only by adding.

What feeds said is given as the site re-publishes it: URLs only when they are absolute http(s) URLs
(`public_url`, else null), notes as sanitised HTML, descriptions as plain text."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import NotFound, ServiceUnavailable

from archive import queries
from archive.sanitize import clean_notes, plain_text, public_guid, public_url

from . import params
from .db import get_db
from .episode_view import stored_artwork
from .media import local_audio_path
from .searching import SearchProblem, closest_json, result_json, run_search
from .urls import external_url

bp = Blueprint("api", __name__, url_prefix="/api")


def show_json(row: dict) -> dict:
    return {
        "id": row["id"],
        "title": row["title"],
        "link": public_url(row["link"]),
        "description": plain_text(row["description"]),
        "language": row["language"],
        "author": row["author"],
        "image": public_url(row["image"]),
        "artwork_url": artwork_url(row["image"]),
        "source_feed_url": public_url(row["feed_url"]),
        "episode_count": row["episode_count"],
        "url": external_url("pages.show", show_id=row["id"]),
        "feed_url": external_url("show_feeds.show_feed", show_id=row["id"]),
        "api_url": external_url("api.show", show_id=row["id"]),
    }


def episode_json(row: dict) -> dict:
    enclosure_url = public_url(row["enclosure_url"])
    return {
        "id": row["id"],
        "show_id": row["show_id"],
        "show_title": row["show_title"],
        "guid": public_guid(row["guid"]),
        "title": row["title"],
        "published": row["published"],
        "season": row["season"],
        "episode_number": row["episode_number"],
        "episode_type": row["episode_type"],
        "duration": row["duration"],
        "link": public_url(row["link"]),
        "enclosure_url": enclosure_url,
        "enclosure_type": row["enclosure_type"] if enclosure_url else None,
        "image": public_url(row["image"]),
        "artwork_url": artwork_url(row["image"]),
        "url": external_url("pages.episode", episode_id=row["id"]),
        "api_url": external_url("api.episode", episode_id=row["id"]),
    }


def artwork_url(image: str | None) -> str | None:
    """The archive's own copy of a feed's image (ingest/artwork.py), at its absolute URL; None when not stored."""
    stored = stored_artwork(get_db(), image)
    return external_url("pages.artwork_image", digest=stored["digest"]) if stored else None


def person_json(row: dict) -> dict:
    data = {
        "name": row["name"],
        "slug": row["slug"],
        "href": public_url(row.get("href")),
        "img": public_url(row.get("img")),
        "url": external_url("pages.guest", slug=row["slug"]),
        "api_url": external_url("api.guest", slug=row["slug"]),
    }
    for optional in ("role", "person_group", "episode_count", "roles"):
        if optional in row:
            data[optional] = row[optional]
    return data


def timed(row: dict, fields: tuple[str, ...]) -> dict:
    return {name: row[name] for name in fields}


def chapter_json(row: dict) -> dict:
    return {**timed(row, ("title", "start", "end", "source")), "url": public_url(row["url"]),
            "image": public_url(row["image"])}


def transcript_urls(episode_id: int) -> dict:
    return {
        fmt: external_url("exports.transcript", episode_id=episode_id, fmt=fmt)
        for fmt in ("vtt", "srt", "json", "txt")
    }


@bp.get("/shows")
def shows():
    return jsonify({"shows": [show_json(row) for row in queries.list_shows(get_db())]})


@bp.get("/shows/<int:show_id>")
def show(show_id: int):
    return jsonify(show_json(queries.get_show(get_db(), show_id)))


@bp.get("/episodes")
def episodes():
    db = get_db()
    args = request.args
    show_id, guest, year = params.get_show_id(args), params.get_slug(args, "guest"), params.get_year(args)
    page = params.get_page(args)
    per_page = params.get_int(
        args, "per_page", default=current_app.config["PER_PAGE"], minimum=1,
        maximum=current_app.config["MAX_PER_PAGE"],
    )
    total = queries.count_episodes(db, show_id, guest, year)
    rows = queries.list_episodes(db, show_id, guest, year, limit=per_page, offset=(page - 1) * per_page)
    pages = max(1, -(-total // per_page))
    filters = {name: value for name, value in (("show", show_id), ("guest", guest), ("year", year)) if value}

    def page_url(number: int) -> str:
        return external_url("api.episodes", page=number, per_page=per_page, **filters)

    return jsonify({
        "episodes": [episode_json(row) for row in rows],
        "page": page,
        "per_page": per_page,
        "total": total,
        "pages": pages,
        "next": page_url(page + 1) if page < pages else None,
        "prev": page_url(page - 1) if 1 < page <= pages else None,
    })


@bp.get("/episodes/<int:episode_id>")
def episode(episode_id: int):
    db = get_db()
    details = queries.episode_details(db, episode_id)
    row, chapters = details.episode, details.chapters
    data = episode_json(row)
    stored_audio = local_audio_path(queries.get_audio(db, episode_id))
    data.update({
        "description": plain_text(row["description"]),
        "notes_html": clean_notes(row["notes_html"] or row["description"]),
        "audio_url": external_url("pages.episode_audio", episode_id=episode_id) if stored_audio else None,
        "guests": [person_json(p) for p in details.guests],
        "hosts": [person_json(p) for p in details.hosts],
        "chapters": [chapter_json(c) for c in chapters],
        "chapters_url": external_url("exports.chapters", episode_id=episode_id) if chapters else None,
        "takeaways": [timed(t, ("title", "text", "start", "end", "source")) for t in details.takeaways],
        "transcript": transcript_summary(episode_id, details.transcript),
    })
    return jsonify(data)


def transcript_summary(episode_id: int, transcript: dict | None) -> dict | None:
    if transcript is None:
        return None
    return {
        "source": transcript["source"],
        "format": transcript["format"],
        "language": transcript["language"],
        "model": transcript["model"],
        "segment_count": transcript["segment_count"],
        "api_url": external_url("api.transcript", episode_id=episode_id),
        "exports": transcript_urls(episode_id),
    }


@bp.get("/episodes/<int:episode_id>/transcript")
def transcript(episode_id: int):
    db = get_db()
    queries.get_episode(db, episode_id)
    info = queries.get_transcript_info(db, episode_id)
    if info is None:
        raise NotFound(description=f"Episode {episode_id} has no transcript yet.")
    data = transcript_summary(episode_id, info)
    data["episode_id"] = episode_id
    data["segments"] = [
        timed(line, ("start", "end", "text", "speaker")) for line in queries.transcript_lines(db, episode_id)
    ]
    return jsonify(data)


@bp.get("/search")
def search():
    args = request.args
    max_chars = current_app.config["MAX_QUERY_CHARS"]
    query = params.tidy_param(args.get("q"))
    if not query:
        raise params.BadParameter("q", "give the words to search for, e.g. /api/search?q=feature+stores")
    if len(query) > max_chars:
        raise params.BadParameter("q", f"longer than {max_chars} characters")
    mode = params.get_mode(args)
    show_id, guest = params.get_show_id(args), params.get_slug(args, "guest")
    speaker = params.get_slug(args, "speaker")
    since, until = params.get_date(args, "since"), params.get_date(args, "until", end_of_period=True)
    limit = params.get_int(args, "limit", default=current_app.config["SEARCH_LIMIT"], minimum=1,
                           maximum=current_app.config["SEARCH_LIMIT"])
    episode = params.get_int(args, "episode", default=None, minimum=1)
    try:
        results = run_search(get_db(), query, mode, show=show_id, guest=guest, since=since, until=until,
                             limit=limit, speaker=speaker, episode=episode)
    except SearchProblem as exc:
        if exc.status == 503:
            raise ServiceUnavailable(description=str(exc)) from exc
        raise params.BadParameter("q", str(exc)) from exc
    return jsonify({
        "query": query,
        "mode": mode,
        "filters": {"show": show_id, "guest": guest, "speaker": speaker, "since": since, "until": until,
                    "episode": episode},
        "count": len(results),
        "results": [result_json(result) for result in results],
        "groups": search_groups(results, query, mode, episode),
        "all_words": {"words": list(results.words), "some_words": results.some_words,
                      "note": results.fallback_note()},
        "closest": [closest_json(closest) for closest in results.closest],
    })


def search_groups(results, query: str, mode: str, episode: int | None) -> list[dict]:
    """The results grouped by episode, as the search page shows them: each episode once, its best few moments
    (near-duplicate neighbours collapsed, archive/search_relevance.py), `more` of them not shown and `more_url`,
    this search in that episode only."""
    from archive.search_relevance import SHOWN_PER_EPISODE, group_by_episode

    groups = []
    for group in group_by_episode(results):
        first = group.first
        shown = group.moments if episode else group.moments[:SHOWN_PER_EPISODE]
        more = len(group.moments) - len(shown) + group.collapsed
        groups.append({
            "episode_id": first.episode_id, "episode_title": first.episode_title, "show": first.show,
            "show_id": first.show_id, "published": first.published,
            "url": external_url("pages.episode", episode_id=first.episode_id),
            "moments": [result_json(result) for result in shown], "more": more,
            "more_url": external_url("api.search", q=query, mode=mode, episode=first.episode_id)
            if more and not episode else None,
        })
    return groups


@bp.get("/guests")
def guests():
    name = params.tidy_param(request.args.get("q"))[:200]
    return jsonify({"guests": [person_json(row) for row in queries.list_people(get_db(), name_contains=name or None)]})


@bp.get("/guests/<slug>")
def guest(slug: str):
    details = queries.person_details(get_db(), slug)
    data = person_json(details.person)
    data["episodes"] = [{**episode_summary_fields(row), "role": row["role"]} for row in details.episodes]
    data["takeaways"] = [
        timed(row, ("episode_id", "episode_title", "title", "text", "start", "end")) for row in details.takeaways
    ]
    return jsonify(data)


def episode_summary_fields(row: dict) -> dict:
    return {
        "id": row["id"],
        "show_id": row["show_id"],
        "show_title": row["show_title"],
        "guid": public_guid(row["guid"]),
        "title": row["title"],
        "published": row["published"],
        "duration": row["duration"],
        "url": external_url("pages.episode", episode_id=row["id"]),
        "api_url": external_url("api.episode", episode_id=row["id"]),
    }
