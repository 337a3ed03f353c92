"""Read-side queries shared by the CLI and the web site.

They show what is published and nothing else: an episode a producer has as a draft or scheduled
(`episodes.state`, see archive/studio.py) is not found, listed or counted, nor is a show made in podarchive
before its first episode is out, nor a person credited only on such episodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from .errors import NotFoundError


def find_episode(db: sqlite_utils.Database, guid: str, show: str | int | None = None) -> dict:
    """The episode with this guid (in this show, when given: show id, title or feed URL)."""
    sql = (
        "SELECT episodes.*, shows.title AS show_title, shows.feed_url AS show_feed_url FROM episodes "
        f"JOIN shows ON shows.id = episodes.show_id WHERE episodes.guid = ? AND {PUBLISHED}"
    )
    params: list = [guid]
    if show is not None:
        sql += " AND (CAST(shows.id AS TEXT) = ? OR shows.title = ? OR shows.feed_url = ?)"
        params += [str(show), str(show), str(show)]
    rows = list(db.query(sql, params))
    if not rows:
        raise NotFoundError(f"no episode with guid {guid!r}" + (f" in show {show!r}" if show else ""))
    if len(rows) > 1:
        shows = ", ".join(f"{r['show_id']} ({r['show_title']})" for r in rows)
        raise NotFoundError(f"guid {guid!r} is in several shows: {shows}; pick one with --show")
    return rows[0]


# --- Shows, episodes, people, episode details (web site and JSON API) ---

PUBLISHED = "episodes.state = 'published'"
# A person is shown when credited on a published episode (or on none at all: a record no episode names).
PERSON_SHOWN = (
    "(EXISTS (SELECT 1 FROM episode_people ep JOIN episodes ON episodes.id = ep.episode_id "
    f"WHERE ep.person_id = people.id AND {PUBLISHED}) "
    "OR NOT EXISTS (SELECT 1 FROM episode_people ep WHERE ep.person_id = people.id))"
)
EPISODE_ORDER = "episodes.published IS NULL, episodes.published DESC, episodes.episode_number DESC, episodes.id DESC"


def list_shows(db: sqlite_utils.Database) -> list[dict]:
    """Every show with its (published) episode count and latest publication date, by title; a hosted show
    once it has a published episode."""
    return list(
        db.query(
            "SELECT shows.*, COUNT(episodes.id) AS episode_count, MAX(episodes.published) AS latest_published "
            f"FROM shows LEFT JOIN episodes ON episodes.show_id = shows.id AND {PUBLISHED} "
            "GROUP BY shows.id HAVING NOT shows.hosted OR COUNT(episodes.id) > 0 "
            "ORDER BY shows.title COLLATE NOCASE, shows.id"
        )
    )


def get_show(db: sqlite_utils.Database, show_id: int) -> dict:
    rows = list(
        db.query(
            f"SELECT shows.*, (SELECT COUNT(*) FROM episodes WHERE show_id = shows.id AND {PUBLISHED}) "
            "AS episode_count FROM shows WHERE id = ?",
            [show_id],
        )
    )
    if not rows or (rows[0]["hosted"] and not rows[0]["episode_count"]):
        raise NotFoundError(f"no show with id {show_id}")
    return rows[0]


def find_show(db: sqlite_utils.Database, show: str | int) -> dict:
    """The show named by its id, feed URL or title (the `--show` of the CLI), in that order; NotFoundError when
    none is, or when several shows have that title."""
    text = str(show).strip()
    if text.isdigit():
        rows = list(db.query("SELECT * FROM shows WHERE id = ?", [int(text)]))
        if rows:
            return rows[0]
    rows = list(db.query("SELECT * FROM shows WHERE feed_url = ?", [text])) or \
        list(db.query("SELECT * FROM shows WHERE title = ? COLLATE NOCASE ORDER BY id", [text]))
    if not rows:
        raise NotFoundError(f"no show {text!r} in this archive (give its id, title or feed URL)")
    if len(rows) > 1:
        raise NotFoundError(f"several shows are titled {text!r}: " + ", ".join(str(r["id"]) for r in rows)
                            + "; give the id")
    return rows[0]


def _episode_filters(show_id: int | None, guest: str | None, year: int | None) -> tuple[str, list]:
    clauses, params = [PUBLISHED], []
    if show_id is not None:
        clauses.append("episodes.show_id = ?")
        params.append(show_id)
    if guest is not None:
        clauses.append(
            "episodes.id IN (SELECT episode_id FROM episode_people JOIN people ON people.id = person_id "
            "WHERE people.slug = ?)"
        )
        params.append(guest)
    if year is not None:
        clauses.append("substr(episodes.published, 1, 4) = ?")
        params.append(f"{year:04d}")
    return " WHERE " + " AND ".join(clauses), params


def list_episodes(
    db: sqlite_utils.Database,
    show_id: int | None = None,
    guest: str | None = None,
    year: int | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict]:
    """Episodes newest first (undated last), optionally of one show, one person (slug) or one year."""
    where, params = _episode_filters(show_id, guest, year)
    sql = (
        "SELECT episodes.id, episodes.show_id, episodes.guid, episodes.title, episodes.link, episodes.published, "
        "episodes.season, episodes.episode_number, episodes.episode_type, episodes.duration, episodes.description, "
        "episodes.enclosure_url, episodes.enclosure_type, episodes.image, shows.title AS show_title, "
        "EXISTS (SELECT 1 FROM transcripts WHERE transcripts.episode_id = episodes.id) AS has_transcript "
        f"FROM episodes JOIN shows ON shows.id = episodes.show_id{where} ORDER BY {EPISODE_ORDER}"
    )
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return list(db.query(sql, params))


def count_episodes(
    db: sqlite_utils.Database, show_id: int | None = None, guest: str | None = None, year: int | None = None
) -> int:
    where, params = _episode_filters(show_id, guest, year)
    return next(db.query(f"SELECT COUNT(*) AS n FROM episodes{where}", params))["n"]


def episode_years(db: sqlite_utils.Database, show_id: int | None = None) -> list[int]:
    """The years episodes were published in, newest first."""
    where, params = _episode_filters(show_id, None, None)
    where = where + " AND episodes.published IS NOT NULL"
    rows = db.query(
        f"SELECT DISTINCT substr(episodes.published, 1, 4) AS year FROM episodes{where} ORDER BY year DESC", params
    )
    return [int(row["year"]) for row in rows if row["year"] and row["year"].isdigit()]


def get_episode(db: sqlite_utils.Database, episode_id: int) -> dict:
    """One published episode with its show's title; NotFoundError when absent or not published."""
    rows = list(
        db.query(
            "SELECT episodes.*, shows.title AS show_title, shows.link AS show_link FROM episodes "
            f"JOIN shows ON shows.id = episodes.show_id WHERE episodes.id = ? AND {PUBLISHED}",
            [episode_id],
        )
    )
    if not rows:
        raise NotFoundError(f"no episode with id {episode_id}")
    return rows[0]


def get_guests(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    """Everyone credited on an episode (hosts and guests), guests first."""
    return list(
        db.query(
            "SELECT people.id, people.name, people.slug, people.href, people.img, episode_people.role, "
            "episode_people.person_group, episode_people.source FROM episode_people "
            "JOIN people ON people.id = episode_people.person_id WHERE episode_people.episode_id = ? "
            "ORDER BY episode_people.role = 'host', people.name COLLATE NOCASE",
            [episode_id],
        )
    )


def people_by_episode(db: sqlite_utils.Database, episode_ids: list[int]) -> dict[int, list[dict]]:
    """get_guests for many episodes in one query."""
    found: dict[int, list[dict]] = {episode_id: [] for episode_id in episode_ids}
    if not episode_ids:
        return found
    marks = ",".join("?" for _ in episode_ids)
    rows = db.query(
        "SELECT episode_people.episode_id, people.name, people.slug, people.href, people.img, episode_people.role, "
        "episode_people.person_group FROM episode_people "
        f"JOIN people ON people.id = episode_people.person_id WHERE episode_people.episode_id IN ({marks}) "
        "ORDER BY episode_people.role = 'host', people.name COLLATE NOCASE",
        list(episode_ids),
    )
    for row in rows:
        found[row.pop("episode_id")].append(row)
    return found


def get_takeaways(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    return list(
        db.query(
            "SELECT idx, title, text, start, end, source FROM takeaways WHERE episode_id = ? ORDER BY idx",
            [episode_id],
        )
    )


def get_chapters(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    return list(
        db.query(
            "SELECT idx, title, start, end, url, image, source FROM chapters WHERE episode_id = ? ORDER BY start, idx",
            [episode_id],
        )
    )


def get_transcript_info(db: sqlite_utils.Database, episode_id: int) -> dict | None:
    """The episode's transcript row (source, format, model, language, segment_count), or None."""
    rows = list(db.query("SELECT * FROM transcripts WHERE episode_id = ?", [episode_id]))
    return rows[0] if rows else None


@dataclass
class EpisodeDetails:
    """What an episode's page and its API entry show: the episode with its show, people, takeaways, chapters."""

    episode: dict
    guests: list[dict]
    hosts: list[dict]
    takeaways: list[dict]
    chapters: list[dict]
    transcript: dict | None


def episode_details(db: sqlite_utils.Database, episode_id: int) -> EpisodeDetails:
    """One episode with everything shown about it; NotFoundError when absent."""
    episode = get_episode(db, episode_id)
    people = get_guests(db, episode_id)
    return EpisodeDetails(
        episode=episode,
        guests=[person for person in people if person["role"] != "host"],
        hosts=[person for person in people if person["role"] == "host"],
        takeaways=get_takeaways(db, episode_id),
        chapters=get_chapters(db, episode_id),
        transcript=get_transcript_info(db, episode_id),
    )


def transcript_lines(db: sqlite_utils.Database, episode_id: int) -> list[dict]:
    """The transcript's timed lines for display (start, end, text, speaker), without word timings."""
    return list(
        db.query(
            "SELECT segments.idx, segments.start, segments.end, segments.text, segments.speaker FROM segments "
            "JOIN transcripts ON transcripts.id = segments.transcript_id WHERE transcripts.episode_id = ? "
            "ORDER BY segments.idx",
            [episode_id],
        )
    )


def get_audio(db: sqlite_utils.Database, episode_id: int) -> dict | None:
    rows = list(db.query("SELECT * FROM audio WHERE episode_id = ?", [episode_id]))
    return rows[0] if rows else None


def list_people(db: sqlite_utils.Database, name_contains: str | None = None) -> list[dict]:
    """Everyone in the archive with how many (published) episodes they appear in and their roles, by name."""
    sql = (
        "SELECT people.id, people.name, people.slug, people.href, people.img, "
        "COUNT(DISTINCT episodes.id) AS episode_count, "
        "GROUP_CONCAT(DISTINCT CASE WHEN episodes.id IS NOT NULL THEN episode_people.role END) AS roles "
        "FROM people LEFT JOIN episode_people ON episode_people.person_id = people.id "
        f"LEFT JOIN episodes ON episodes.id = episode_people.episode_id AND {PUBLISHED} WHERE {PERSON_SHOWN}"
    )
    params: list = []
    if name_contains:
        sql += " AND people.name LIKE ? ESCAPE '\\'"
        escaped = name_contains.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        params.append(f"%{escaped}%")
    sql += " GROUP BY people.id ORDER BY people.name COLLATE NOCASE"
    rows = list(db.query(sql, params))
    for row in rows:
        row["roles"] = sorted(set((row["roles"] or "").split(",")) - {""})
    return rows


def get_person(db: sqlite_utils.Database, slug: str) -> dict:
    rows = list(db.query(f"SELECT * FROM people WHERE slug = ? AND {PERSON_SHOWN}", [slug]))
    if not rows:
        raise NotFoundError(f"no person with slug {slug!r}")
    return rows[0]


def person_episodes(db: sqlite_utils.Database, person_id: int) -> list[dict]:
    """The episodes a person appears in, newest first, with their role in each."""
    return list(
        db.query(
            "SELECT episodes.id, episodes.show_id, episodes.guid, episodes.title, episodes.published, "
            "episodes.duration, shows.title AS show_title, GROUP_CONCAT(DISTINCT episode_people.role) AS role "
            "FROM episode_people JOIN episodes ON episodes.id = episode_people.episode_id "
            f"JOIN shows ON shows.id = episodes.show_id WHERE episode_people.person_id = ? AND {PUBLISHED} "
            f"GROUP BY episodes.id ORDER BY {EPISODE_ORDER}",
            [person_id],
        )
    )


def person_takeaways(db: sqlite_utils.Database, person_id: int, role: str | None = "guest") -> list[dict]:
    """Takeaways of the episodes a person appears in (as a guest by default), newest episode first."""
    role_clause = " AND episode_people.role = ?" if role else ""
    params: list = [person_id] + ([role] if role else [])
    return list(
        db.query(
            "SELECT takeaways.episode_id, takeaways.idx, takeaways.title, takeaways.text, takeaways.start, "
            "takeaways.end, episodes.title AS episode_title FROM takeaways "
            f"JOIN episodes ON episodes.id = takeaways.episode_id WHERE {PUBLISHED} AND "
            "takeaways.episode_id IN (SELECT episode_id FROM episode_people WHERE person_id = ?"
            f"{role_clause}) ORDER BY {EPISODE_ORDER}, takeaways.idx",
            params,
        )
    )


@dataclass
class PersonDetails:
    """What a person's page and their API entry show: the person, their episodes and takeaways as a guest."""

    person: dict
    episodes: list[dict]
    takeaways: list[dict]


def person_details(db: sqlite_utils.Database, slug: str) -> PersonDetails:
    """One person with their episodes and takeaways; NotFoundError when absent."""
    person = get_person(db, slug)
    return PersonDetails(
        person=person,
        episodes=person_episodes(db, person["id"]),
        takeaways=person_takeaways(db, person["id"]),
    )
