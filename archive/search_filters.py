"""Search filters: which published episodes a search may rank (show, guest, dates, one episode) and whose words
it keeps.

A show is named by id or title, a person by slug or name; a bad one raises SearchError. Drafts and scheduled
episodes are never searched (`PUBLISHED`, `unpublished_episodes`). A speaker filter keeps the passages a person
may have said (`SpokenBy`), judged on a ranking's candidates (`spoken_only`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import sqlite_utils

from .errors import SearchError
from .people import find_people, same_person

if TYPE_CHECKING:
    from .search import Hit

SPEAKER_POOL = 2  # a speaker-filtered ranking takes twice its depth (then more), then keeps the speaker's words


@dataclass
class SpokenBy:
    """Whether one person may speak in a passage of their episodes: its speaker label names them
    (`same_person`), or it has no label (an unlabelled transcript, or a passage that mixes speakers).

    Checked on ranked candidates rather than listed up front: for a host who is in every episode the list would
    be most of the archive, and a filtered search would cost many times a plain one."""

    names: tuple[str, ...]
    _labels: dict[str, bool] = field(default_factory=dict, repr=False, compare=False)  # label -> theirs?

    def says(self, label: str | None) -> bool:
        if not label:
            return True
        theirs = self._labels.get(label)
        if theirs is None:
            theirs = self._labels[label] = any(same_person(label, name) for name in self.names)
        return theirs

    def judge(self, db, refs: list[int], verdicts: dict[int, bool]) -> None:
        """Record in `verdicts` whether this person may have said each passage (a passage deleted meanwhile: no)."""
        if not refs:
            return
        labels = dict(db.execute("SELECT id, speaker FROM passages WHERE id IN (SELECT value FROM json_each(?))",
                                 [json.dumps(refs)]).fetchall())
        for ref in refs:
            verdicts[ref] = ref in labels and self.says(labels[ref])


@dataclass
class Filters:
    sql: str = ""  # condition on episodes aliased `e`
    params: list = field(default_factory=list)
    speaker: SpokenBy | None = None  # only one person's words (in their episodes): no takeaways, no notes

    @property
    def active(self) -> bool:
        return bool(self.sql)


def parse_date(value, name: str) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise SearchError(f"{name} must be a date like 2024-01-31, not {text[:40]!r}") from None


def resolve_filters(db: sqlite_utils.Database, show=None, guest=None, since=None, until=None,
                    speaker=None, episode=None) -> Filters:
    clauses, params, speaker_filter = [], [], None
    if episode not in (None, ""):
        clauses.append("e.id = ?")
        params.append(_episode_id(db, episode))
    if show not in (None, ""):
        clauses.append("e.show_id = ?")
        params.append(_show_id(db, show))
    for person, their_words_only in ((guest, False), (speaker, True)):
        if person not in (None, ""):
            ids = _person_ids(db, person)
            clauses.append(f"e.id IN (SELECT episode_id FROM episode_people WHERE person_id IN "
                           f"({','.join('?' * len(ids))}))")
            params.extend(ids)
            if their_words_only:
                speaker_filter = spoken_by(db, ids)
    start, end = parse_date(since, "since"), parse_date(until, "until")
    if start and end and start > end:
        raise SearchError(f"since ({start}) is after until ({end})")
    if start:
        clauses.append("e.published >= ?")
        params.append(start.isoformat())
    if end:
        clauses.append("e.published < ?")  # until is a whole day: everything before the next one
        params.append((end + dt.timedelta(days=1)).isoformat())
    return Filters(" AND ".join(clauses), params, speaker_filter)


def _show_id(db, show) -> int:
    text = str(show).strip()
    if text.isdigit():
        row = db.execute("SELECT id FROM shows WHERE id = ?", [int(text)]).fetchone()
    else:
        row = db.execute("SELECT id FROM shows WHERE title = ? COLLATE NOCASE ORDER BY id", [text]).fetchone()
    if row is None:
        raise SearchError(f"no show {text!r} in this archive")
    return int(row[0])


def _episode_id(db, episode) -> int:
    text = str(episode).strip()
    row = db.execute("SELECT id FROM episodes WHERE id = ?", [int(text)]).fetchone() if text.isdigit() else None
    if row is None:
        raise SearchError(f"no episode {text[:40]!r} in this archive")
    return int(row[0])


def _person_ids(db: sqlite_utils.Database, guest) -> list[int]:
    text = str(guest).strip()
    people = find_people(db, text)
    if not people:
        raise SearchError(f"no guest {text!r} in this archive")
    return [int(person["id"]) for person in people]


def spoken_by(db, person_ids: list[int]) -> SpokenBy:
    marks = ",".join("?" * len(person_ids))
    return SpokenBy(tuple(r[0] for r in db.execute(f"SELECT name FROM people WHERE id IN ({marks})", person_ids)))


def spoken_only(db, rank: Callable[[int], list[Hit]], speaker: SpokenBy | None, depth: int) -> list[Hit]:
    """The best `depth` hits of a ranking (`rank(k)` gives its top k) that `speaker` may have said; all of them
    without a speaker. The ranking runs as a plain one on a pool of SPEAKER_POOL times the depth, whose hits are
    judged best first, in batches sized by the share found theirs so far; the pool grows (four times) only while
    too few are theirs and the ranking has more. A host who speaks in every episode costs about what a plain
    search does; a rare voice costs more rounds."""
    if speaker is None:
        return rank(depth)
    pool, verdicts = depth * SPEAKER_POOL, {}
    while True:
        hits = rank(pool)
        kept, position = [], 0
        while len(kept) < depth and position < len(hits):
            share = max(len(kept) / position, 0.1) if position else 1.0
            batch = hits[position:position + int((depth - len(kept)) / share * 1.2) + 8]
            speaker.judge(db, [h.ref for h in batch if h.ref not in verdicts], verdicts)
            kept += [h for h in batch if verdicts[h.ref]]
            position += len(batch)
        if len(kept) >= depth or len(hits) < pool:
            return kept[:depth]
        pool *= 4


PUBLISHED = "e.state = 'published'"


def allowed_episodes(db, filters: Filters) -> np.ndarray | None:
    """The ids of the published episodes the filters keep; None when that is every published episode (a host in
    all of them), so the side indexes search as for no filter (unpublished episodes are left out all the same)."""
    if not filters.active:
        return None
    rows = db.execute(f"SELECT e.id FROM episodes e WHERE {PUBLISHED} AND {filters.sql}", filters.params).fetchall()
    if rows and len(rows) == db.execute(f"SELECT count(*) FROM episodes e WHERE {PUBLISHED}").fetchone()[0]:
        return None
    return np.array([r[0] for r in rows], dtype=np.int64)


def unpublished_episodes(db) -> np.ndarray | None:
    """The ids of the episodes search must leave out (drafts, scheduled); None when every episode is published,
    the usual case (a partial index over them makes this a lookup)."""
    rows = db.execute("SELECT id FROM episodes WHERE state != 'published'").fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64) if rows else None
