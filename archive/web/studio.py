"""The studio in the site: producers list their shows' episodes, write new ones and edit them (drafts until
published), preview their notes, publish, schedule and unpublish them, and read and restore their history.

Every view is `@login_required` and asks `require_show(...)` before it reads or writes an episode; every write
is a POST (with the CSRF token auth.py checks). Pages work without JavaScript: the editor's Preview button
posts the form back and the page shows it again with the rendered notes; archive/static/studio.js adds a live
preview (POST /studio/preview) and moves takeaway rows in place.

Nothing a producer writes runs in a visitor's browser: every field is autoescaped by the templates, and notes
reach a page only as `render_markdown` (sanitised) HTML.
"""

from __future__ import annotations

from pathlib import Path

from flask import (Blueprint, Flask, abort, current_app, flash, g, jsonify, redirect, render_template, request,
                   url_for)
from itsdangerous import BadSignature, URLSafeSerializer

from archive import producers, queries, studio, work_queue
from archive.db import utcnow
from archive.episode_fields import check_notes, to_utc_iso
from archive.errors import NotFoundError, UploadError, ValidationError
from archive.sanitize import clean_notes, render_markdown
from archive.settings import Settings
from archive.uploads import describe_size, save_upload

from . import max_upload_bytes
from .auth import login_required, require_show
from .db import get_db
from .searching import get_embedder
from .studio_form import (ADDED_ROWS, BLANK_ROWS, LABELS, EpisodeForm, changes, error_key, exact_clock,
                          form_from_episode, form_from_request, is_web_url, message, move_row, raw_values)

bp = Blueprint("studio", __name__, url_prefix="/studio")

MAX_FORM_PARTS = 5000  # 500 takeaways and 500 chapters, as rows of fields
MAX_DATALIST_NAMES = 5000
PUBLISHED_LISTED = 25  # published episodes listed per show on /studio (all of them with ?show=<id>)
ACTIONS = ("save", "preview", "publish", "schedule")
HISTORY_LABELS = {**LABELS, "state": "State", "publish_at": "Scheduled for"}


def init_app(app: Flask) -> None:
    # The editor posts every takeaway and chapter as a row of fields: Werkzeug's default of 1,000 parts is short.
    app.config["MAX_FORM_PARTS"] = max(app.config.get("MAX_FORM_PARTS") or 0, MAX_FORM_PARTS)
    app.register_blueprint(bp)


@bp.after_request
def private(response):
    """Studio pages hold drafts and CSRF tokens: never stored by a cache, never indexed."""
    response.headers["Cache-Control"] = "no-store"
    response.headers.setdefault("X-Robots-Tag", "noindex")
    return response


@bp.app_template_filter("studio_time")
def studio_time(value: str | None) -> str:
    """'2024-05-01T09:30:00+00:00' -> '1 May 2024, 09:30 UTC'."""
    from .filters import parse_iso

    parsed = parse_iso(value)
    return f"{parsed.day} {parsed:%b %Y, %H:%M} UTC" if parsed else ""


# -- the list -----------------------------------------------------------------------------------------------

@bp.get("")
@login_required
def index():
    return studio_list()


def studio_list(show_form: dict | None = None, show_errors: dict | None = None, status: int = 200):
    """The shows g.producer may edit and their episodes (drafts first); with ?show=<id>, that show alone and
    all its episodes (else the published ones of each show stop at PUBLISHED_LISTED)."""
    db = get_db()
    show_ids = producers.editable_show_ids(db, g.producer)
    show_filter = request.args.get("show", type=int)
    if show_filter is not None:
        require_show(show_filter)
        show_ids = [show_filter]
    shows = studio.list_studio_shows(db, show_ids)
    episodes = studio.list_studio_episodes(db, show_ids)
    by_show: dict[int, list[dict]] = {}
    for episode in episodes:
        listed = by_show.setdefault(episode["show_id"], [])
        if show_filter is None and episode["state"] == studio.PUBLISHED and \
                sum(e["state"] == studio.PUBLISHED for e in listed) >= PUBLISHED_LISTED:
            continue
        episode["pipeline"] = pipeline_status(db, episode)
        listed.append(episode)
    scheduled = sorted((e for e in episodes if e["state"] == studio.SCHEDULED), key=lambda e: e["publish_at"] or "")
    return render_template("studio/index.html", shows=shows, by_show=by_show, scheduled=scheduled,
                           show_filter=show_filter, show_form=show_form or {}, show_errors=show_errors or {}), status


def pipeline_status(db, episode: dict) -> dict | None:
    """What the pipeline is doing with an episode: {state: transcribing | failed, reason} or None."""
    status, errors = episode["status"], episode.get("errors") or {}
    if status == studio.FAILED:
        stage, error = next(((s, e) for s, e in errors.items() if s in studio.TRANSCRIPT_STAGES),
                            next(iter(errors.items()), (None, None)))
        return {"state": "failed", "reason": f"{stage}: {error}" if stage else None}
    if status != studio.TRANSCRIBING:
        return None
    entry = work_queue.queue_entry(db, episode["id"])
    if entry and entry["gave_up"]:
        return {"state": "failed", "reason": f"gave up after {entry['attempts']} attempts: {entry['last_error']}"}
    if entry and entry["last_error"]:
        return {"state": "transcribing",
                "reason": f"attempt {entry['attempts']} failed ({entry['last_error']}); it will be tried again"}
    if entry and entry["started_at"]:
        return {"state": "transcribing", "reason": f"started {studio_time(entry['started_at'])}"}
    if entry:
        return {"state": "transcribing", "reason": "waiting for the background worker"}
    return {"state": "transcribing", "reason": None}


@bp.post("/shows")
@login_required
def new_show():
    if not g.producer.admin:
        abort(403, description="Only an administrator may make a new show.")
    values = {name: request.form.get(name, "") for name in ("title", "description", "language", "author")}
    try:
        show_id = studio.create_show(get_db(), values["title"], values["description"] or None,
                                     language=values["language"] or None, author=values["author"] or None)
    except ValidationError as exc:
        return studio_list(values, {exc.field: message(exc)}, 400)
    flash(f"Show “{values['title'].strip()}” made. Write its first episode.")
    return redirect(url_for("studio.new_episode", show_id=show_id))


# -- the editor ---------------------------------------------------------------------------------------------

@bp.route("/shows/<int:show_id>/episodes/new", methods=("GET", "POST"))
@login_required
def new_episode(show_id: int):
    require_show(show_id)
    show = show_or_404(show_id)
    if request.method == "GET":
        return editor(show, None, EpisodeForm().with_blank_rows(BLANK_ROWS + 1, BLANK_ROWS + 1))
    return save(show, None)


@bp.route("/episodes/<int:episode_id>", methods=("GET", "POST"))
@login_required
def edit_episode(episode_id: int):
    episode = editable_episode(episode_id)
    show = show_or_404(episode["show_id"])
    if request.method == "GET":
        return editor(show, episode, form_from_episode(episode).with_blank_rows())
    return save(show, episode)


def editable_episode(episode_id: int) -> dict:
    """The episode as the studio edits it, once g.producer may edit its show (404 for no such episode)."""
    db = get_db()
    row = db.execute("SELECT show_id FROM episodes WHERE id = ?", [episode_id]).fetchone()
    if row is None:
        abort(404, description=f"No episode with id {episode_id}.")
    require_show(row[0])
    return studio.studio_episode(db, episode_id)


def show_or_404(show_id: int) -> dict:
    shows = studio.list_studio_shows(get_db(), [show_id])
    if not shows:
        abort(404, description=f"No show with id {show_id}.")
    return shows[0]


def save(show: dict, episode: dict | None):
    """A POST of the editor: preview, move or add rows (the page again), or save, then publish or schedule."""
    db = get_db()
    form = form_from_request(request.form)
    action = request.form.get("action", "save")
    notices: list[str] = []
    if action.startswith("move:"):  # move:takeaways:<row>:up
        _, name, row, direction = (action.split(":") + ["", "", ""])[:4]
        if name in ("takeaways", "chapters") and row.isdigit():
            move_row(getattr(form, name), int(row), direction)
            notices.append("Moved. Save to keep the new order.")
        return editor(show, episode, form.with_blank_rows(), notices=notices)
    if action.startswith("add:"):
        extra = {name: BLANK_ROWS + (ADDED_ROWS if action == f"add:{name}" else 0) for name in ("takeaways", "chapters")}
        return editor(show, episode, form.with_blank_rows(extra["takeaways"], extra["chapters"]))
    if action not in ACTIONS:
        abort(400, description="Unknown action.")
    if action == "preview":
        return editor(show, episode, form.with_blank_rows(), preview=True)

    values, errors = changes(form, episode["fields"] if episode else None)
    audio_given, audio, audio_error = audio_change(form, episode)
    if audio_error:
        errors["audio_url"] = audio_error
    elif audio_given:
        values["audio_url"] = audio
    at = None
    if action == "schedule":
        at, error = schedule_time(form.publish_at)
        if error:
            errors["publish_at"] = error
    if episode is not None and form.revision != str((episode.get("last_change") or {}).get("revision_id") or ""):
        last = episode["last_change"] or {}
        errors["form"] = (f"{last.get('producer_name') or 'Someone'} changed this episode "
                          f"({studio_time(last.get('at'))}) after you opened it. Your values are below: check "
                          "them and save again to keep them.")
        form.revision = str(last.get("revision_id") or "")
    if errors:
        return editor(show, episode, form.with_blank_rows(), errors=errors, status=400)

    try:
        if episode is None:
            episode_id = studio.create_episode(db, show["id"], values, g.producer)
        else:
            episode_id = episode["id"]
            if values:
                studio.update_episode(db, episode_id, values, g.producer, embedder=get_embedder(current_app))
    except ValidationError as exc:
        _, rows_of = raw_values(form)
        return editor(show, episode, form.with_blank_rows(), errors={error_key(exc.field, rows_of): message(exc)},
                      status=400)
    saved = "Saved." if values or episode is None else "No changes to save."
    if action == "publish":
        result = studio.publish(db, episode_id, g.producer, embedder=get_embedder(current_app))
        flash("Published: it is on the site, in its show's feed and in search now."
              + (" Its transcript is being made." if result.get("needs_transcript") else ""))
    elif action == "schedule":
        result = studio.publish(db, episode_id, g.producer, at=at)
        flash(f"Scheduled for {studio_time(result['publish_at'])}." if result["state"] == studio.SCHEDULED
              else "Published.")
    else:
        flash(saved)
    return redirect(url_for("studio.edit_episode", episode_id=episode_id))


def schedule_time(text: str) -> tuple[str | None, str | None]:
    """The time to publish at (ISO, UTC), or an error for the field."""
    if not text.strip():
        return None, "Choose the date and time (UTC) to publish at."
    try:
        when = to_utc_iso(text, "publish_at")
    except ValidationError:
        return None, "Publication time must be a date and time like 2024-05-01T09:30."
    if when <= utcnow():
        return None, "Publication time must be in the future (UTC). To publish now, choose Publish."
    return when, None


def upload_signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.secret_key, salt="podarchive.studio.upload")


def audio_change(form: EpisodeForm, episode: dict | None) -> tuple[bool, str | None, str | None]:
    """(changed?, the new audio_url, an error): a file uploaded now, else one uploaded with an earlier post of
    this form (kept in a signed field), else the remove box, else the URL typed."""
    current = episode["fields"]["audio_url"] if episode else None
    upload = request.files.get("audio_file")
    if upload is not None and upload.filename:
        try:
            stored = save_upload(upload.stream, Settings.from_env().media_dir, max_upload_bytes(current_app),
                                 declared_name=upload.filename, declared_type=upload.mimetype or None)
        except UploadError as exc:
            return False, None, f"The file was refused: {exc}."
        form.audio_upload = upload_signer().dumps({"path": str(stored.path), "by": g.producer.id})
        form.audio_upload_name = stored.declared_name or stored.path.name
        return True, str(stored.path), None
    if form.audio_upload:
        try:
            kept = upload_signer().loads(form.audio_upload)
        except BadSignature:
            kept = None
        if not isinstance(kept, dict) or kept.get("by") != g.producer.id or not kept.get("path"):
            form.audio_upload = form.audio_upload_name = ""
            return False, None, "The uploaded file could not be found again: upload it once more."
        return kept["path"] != current, kept["path"], None
    if form.audio_remove:
        return current is not None, None, None
    typed = form.audio_url.strip()
    if typed:
        return typed != current, typed, None
    if current and is_web_url(current):
        return True, None, None  # the URL was cleared
    return False, None, None  # no audio, or an uploaded file kept as it is


def editor(show: dict, episode: dict | None, form: EpisodeForm, *, errors: dict | None = None,
           notices: list[str] | None = None, preview: bool = False, status: int = 200):
    db = get_db()
    notes_html, notes_from_feed = "", False
    if form.notes_markdown.strip():
        notes_html = render_markdown(form.notes_markdown)
    elif episode is not None and not episode["fields"]["notes_markdown"] and (episode["notes_html"]
                                                                           or episode["description"]):
        notes_html, notes_from_feed = clean_notes(episode["notes_html"] or episode["description"]), True
    audio_now = None
    if episode is not None and episode["fields"]["audio_url"]:
        url = episode["fields"]["audio_url"]
        audio_now = {"url": url, "web": is_web_url(url), "name": url if is_web_url(url) else Path(url).name}
    names = [person["name"] for person in queries.list_people(db)[:MAX_DATALIST_NAMES]]
    context = {
        "show": show, "episode": episode, "form": form, "errors": errors or {}, "notices": notices or [],
        "preview": preview, "notes_html": notes_html, "notes_from_feed": notes_from_feed, "audio_now": audio_now,
        "people_names": names, "max_upload_bytes": max_upload_bytes(current_app),
        "max_upload_text": describe_size(max_upload_bytes(current_app)),
        "sources": (episode or {}).get("sources") or {}, "pipeline": None, "row_errors": row_errors(errors or {}),
    }
    if episode is not None:
        context["pipeline"] = pipeline_status(db, {"id": episode["id"], "status": episode["pipeline"]["status"],
                                                   "errors": episode["pipeline"]["errors"]})
        context["transcript_url"] = url_for("studio.edit_episode", episode_id=episode["id"]) + "/transcript"
    return render_template("studio/editor.html", **context), status


def row_errors(errors: dict) -> set[str]:
    """The rows that have an error ('takeaways-2'), to mark them."""
    return {"-".join(key.split("-")[:2]) for key in errors if key.count("-") == 2}


@bp.post("/preview")
@login_required
def preview_notes():
    """The notes' Markdown as the site will show them (sanitised HTML), for the editor's live preview."""
    text = request.form.get("notes_markdown", "")
    try:
        check_notes(text, "notes_markdown")
    except ValidationError as exc:
        return jsonify(error=message(exc)), 400
    return jsonify(html=render_markdown(text))


# -- publishing ---------------------------------------------------------------------------------------------

@bp.post("/episodes/<int:episode_id>/unpublish")
@login_required
def unpublish(episode_id: int):
    episode = editable_episode(episode_id)
    was = episode["state"]
    studio.unpublish(get_db(), episode_id, g.producer)
    flash("Unpublished: it is a draft again, gone from the site, its feed and search." if was == studio.PUBLISHED
          else "The schedule is cancelled: it is a draft again." if was == studio.SCHEDULED
          else "It is a draft.")
    return redirect(url_for("studio.edit_episode", episode_id=episode_id))


# -- history ------------------------------------------------------------------------------------------------

@bp.get("/episodes/<int:episode_id>/history")
@login_required
def history(episode_id: int):
    episode = editable_episode(episode_id)
    revisions = studio.history(get_db(), episode_id)
    return render_template("studio/history.html", episode=episode, revisions=revisions,
                           show=show_or_404(episode["show_id"]), field_labels=HISTORY_LABELS)


@bp.post("/episodes/<int:episode_id>/history/<int:revision_id>/restore")
@login_required
def restore(episode_id: int, revision_id: int):
    editable_episode(episode_id)
    try:
        studio.restore(get_db(), episode_id, revision_id, g.producer, embedder=get_embedder(current_app))
    except NotFoundError:
        abort(404, description=f"Episode {episode_id} has no revision {revision_id}.")
    flash(f"Restored the fields of revision {revision_id} (as a new revision).")
    return redirect(url_for("studio.edit_episode", episode_id=episode_id))


@bp.app_template_global("studio_value")
def studio_value(name: str, value) -> dict:
    """A field's value in a history diff, for the template: {kind: text | list | rows | empty, ...}."""
    if value in (None, "", []):
        return {"kind": "empty"}
    if name == "guests" and isinstance(value, list):
        return {"kind": "list", "items": [str(item) for item in value]}
    if name in ("takeaways", "chapters") and isinstance(value, list):
        return {"kind": "rows", "items": [
            {"title": item.get("title"), "text": item.get("text"), "start": exact_clock(item.get("start"))}
            for item in value if isinstance(item, dict)]}
    if name in ("published", "publish_at"):
        return {"kind": "text", "text": studio_time(value) or str(value)}
    return {"kind": "text", "text": str(value)}

