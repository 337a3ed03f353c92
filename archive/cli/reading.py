"""The commands that read the archive: search, and an episode's transcript, takeaways and chapters."""

from __future__ import annotations

import json
import sys

import click

from .. import timefmt
from ..search import MODES
from .common import db_option, from_settings, library_errors, open_archive, show_option

TRANSCRIPT_FORMATS = ("txt", "vtt", "srt", "json")
DEFAULT_SITE = "http://127.0.0.1:5000/"  # `podarchive serve` without --host/--port


@click.command()
@click.argument("guid")
@db_option
@show_option
@click.option("--format", "fmt", type=click.Choice(TRANSCRIPT_FORMATS), default="txt", show_default=True)
@library_errors
def transcript(guid, db_path, show, fmt):
    """Print an episode's transcript (json = Podcasting 2.0 JSON)."""
    from .. import transcript_exports
    from ..errors import NotFoundError
    from ..queries import find_episode
    from ..transcript_store import load_segments

    db = open_archive(db_path, must_exist=True)
    episode = find_episode(db, guid, show)
    segments = load_segments(db, episode["id"])
    if not segments:
        raise NotFoundError(f"episode {guid!r} has no transcript yet (see `podarchive status`)")
    render = {"txt": transcript_exports.to_text, "vtt": transcript_exports.to_vtt,
              "srt": transcript_exports.to_srt, "json": transcript_exports.to_json}[fmt]
    click.echo(render(segments), nl=False)


@click.command()
@click.argument("query")
@db_option
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option("--show", default=None, help="Only this show (id or title).")
@click.option("--guest", default=None, help="Only episodes with this guest (name or slug).")
@click.option("--speaker", default=None,
              help="Only what this person said (name or slug): their passages, by the transcript's speaker labels.")
@click.option("--since", default=None, help="Only episodes published on or after this date (YYYY-MM-DD).")
@click.option("--until", default=None, help="Only episodes published on or before this date (YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of results.")
@click.option("--embedding-model", default=None, help="sentence-transformers model used to build the index.")
@click.option("--base-url", default=from_settings("base_url"), metavar="URL",
              help="Where the site is served, for the links printed (environment: PODARCHIVE_BASE_URL; default: "
                   "`podarchive serve`'s own address, http://127.0.0.1:5000/).")
@library_errors
def search(query, db_path, mode, show, guest, speaker, since, until, limit, as_json, embedding_model, base_url):
    """Search transcripts, takeaways, notes and guests. QUERY `-` reads one query per line from standard
    input and prints one JSON list per line (models loaded once)."""
    from ..embeddings import warm_up
    from ..query_embedding import get_embedder
    from ..search import search as run_search

    db = open_archive(db_path, must_exist=True)
    embedder = get_embedder(embedding_model)  # the model's ONNX export without torch where it gives its vectors
    options = dict(mode=mode, show=show, guest=guest, speaker=speaker, since=since, until=until, limit=limit,
                   embedder=embedder)
    if query == "-":
        if mode != "keyword":
            warm_up(embedder)  # many queries: load the model once and trace it for queries
        for line in sys.stdin:
            results = run_search(db, line.rstrip("\n"), **options)
            click.echo(json.dumps([result.as_dict() for result in results], ensure_ascii=False))
        return
    results = run_search(db, query, **options)
    if as_json:
        click.echo(json.dumps([result.as_dict() for result in results], ensure_ascii=False, indent=2))
        return
    if not results:
        click.echo("Nothing found. Try other words" + (", or --mode hybrid to search by meaning too."
                                                       if mode == "keyword" else "."))
        if results.closest:
            click.echo("Closest episodes (not a match: the nearest by meaning):")
            for episode in results.closest:
                click.echo(f"    {episode.show} / {episode.title}  {absolute_link(base_url, episode.url)}")
    if note := results.fallback_note():
        click.echo(note)
    for rank, r in enumerate(results, 1):
        who = f" · {r.speaker}" if r.speaker else ""
        click.echo(f"{rank:2d}. {r.show} / {r.episode_title}  at {clock(r.start)}{who}")
        click.echo(f"    {absolute_link(base_url, r.url)}")
        click.echo(f"    {terminal_snippet(r.snippet)}")


def absolute_link(base_url: str | None, url: str) -> str:
    """A result's site link made absolute: on BASE_URL, else on `podarchive serve`'s default address."""
    from urllib.parse import urljoin

    return urljoin((base_url or DEFAULT_SITE).rstrip("/") + "/", url.lstrip("/"))


def terminal_snippet(snippet: str) -> str:
    """A result's HTML snippet as plain text for a terminal: the marked words between asterisks, other tags
    dropped, entities decoded."""
    import html
    import re

    text = re.sub(r"</?mark>", "*", snippet or "")
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def clock(seconds: float | None) -> str:
    return "--:--" if seconds is None else timefmt.clock(seconds, minute_digits=2)


@click.command()
@click.argument("guid")
@db_option
@show_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_errors
def takeaways(guid, db_path, show, as_json):
    """Print an episode's takeaways (title, text, start, source: notes or generated)."""
    from ..queries import find_episode, get_takeaways

    db = open_archive(db_path, must_exist=True)
    echo_rows(get_takeaways(db, find_episode(db, guid, show)["id"]), as_json, "takeaways",
              lambda row: f"[{clock(row['start'])}] {row['title']}  ({row['source']})\n    {row['text']}\n")


@click.command()
@click.argument("guid")
@db_option
@show_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@library_errors
def chapters(guid, db_path, show, as_json):
    """Print an episode's chapters (title, start, end)."""
    from ..queries import find_episode, get_chapters

    db = open_archive(db_path, must_exist=True)
    echo_rows(get_chapters(db, find_episode(db, guid, show)["id"]), as_json, "chapters",
              lambda row: f"{clock(row['start'])}-{clock(row['end'])}  {row['title']}")


def echo_rows(rows: list[dict], as_json: bool, what: str, line) -> None:
    """An episode's takeaways or chapters: JSON, or one `line(row)` each."""
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not rows:
        click.echo(f"No {what} yet (see `podarchive status`).")
    for row in rows:
        click.echo(line(row))
