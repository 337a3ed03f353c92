"""People: one record per real person across episodes and shows.

A person is keyed by a normalised form of their name (`name_key`): case, accents, spacing, punctuation and
honorifics (Dr., Prof., PhD ...) do not make a second person. The web uses `slug` in `/guests/<slug>`.
Light on purpose (no pipeline imports): the web reads it too.
"""

from __future__ import annotations

import re
import unicodedata

import sqlite_utils

# Honorifics and suffixes that do not tell two people apart. Compared after lower-casing and dropping dots.
HONORIFICS = {"dr", "prof", "professor", "mr", "mrs", "ms", "miss", "mx", "sir", "dame", "rev"}
SUFFIXES = {"phd", "md", "msc", "mba", "jr", "sr", "ii", "iii"}

# Letters that Unicode decomposition leaves alone but an ASCII key should fold.
_FOLD = str.maketrans({"ı": "i", "ø": "o", "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ß": "ss",
                       "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "þ": "th", "ð": "d"})


def clean_name(name: str) -> str:
    """The display form: whitespace collapsed (non-breaking spaces included), outer punctuation trimmed."""
    name = unicodedata.normalize("NFKC", name or "")
    name = re.sub(r"\s+", " ", name).strip()
    return name.strip(" ,;:-–—\"'“”‘’()[]")


def display_name(name: str) -> str:
    """The name to show: cleaned, without a leading honorific ("Dr. Mohamed Elgendy" -> "Mohamed Elgendy")."""
    words = clean_name(name).split(" ")
    while len(words) > 2 and words[0].rstrip(".").lower() in HONORIFICS:
        words = words[1:]
    return " ".join(words)


def _ascii_fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text.translate(_FOLD))
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def name_tokens(name: str) -> list[str]:
    """Lower-case ASCII tokens of a name, honorifics and suffixes removed."""
    text = _ascii_fold(clean_name(name)).lower()
    text = re.sub(r"['’`]", "", text)  # O'Neil -> oneil
    tokens = re.findall(r"[a-z0-9]+", text)
    while tokens and tokens[0] in HONORIFICS:
        tokens = tokens[1:]
    while tokens and tokens[-1] in SUFFIXES:
        tokens = tokens[:-1]
    return tokens


def normalise_name(name: str) -> str:
    """`Dr. Mohamed  Elgendy` and `mohamed elgendy` -> `mohamed elgendy` (the people.name_key)."""
    return " ".join(name_tokens(name))


def same_person(label: str, name: str) -> bool:
    """Whether a transcript's speaker label names this person: all of one's name words are in the other's
    ("Jakob" or "Dr. Jakob Graff (guest)" for Jakob Graff)."""
    label_words, name_words = set(name_tokens(label)), set(name_tokens(name))
    return bool(label_words and name_words) and (label_words <= name_words or name_words <= label_words)


def slugify(name: str) -> str:
    return "-".join(name_tokens(name)) or "person"


def _better_display(current: str, candidate: str) -> bool:
    """Prefer a properly cased spelling over an all-lower or all-upper one."""
    def badly_cased(text: str) -> bool:
        return text == text.lower() or text == text.upper()

    return badly_cased(current) and not badly_cased(candidate)


def _unique_slug(db: sqlite_utils.Database, base: str) -> str:
    slug, n = base, 1
    while list(db.query("SELECT 1 FROM people WHERE slug = ?", [slug])):
        n += 1
        slug = f"{base}-{n}"
    return slug


def find_people(db: sqlite_utils.Database, text: str, where: str = "1") -> list[dict]:
    """The people `text` names, as a slug ("ada-byron") or as a name ("Dr. Ada Byron"): the one with that slug
    first, then the one with that name. `where` narrows them (an SQL condition on `people`: the site passes
    archive.queries.PERSON_SHOWN)."""
    slug = text.strip().lower()
    return list(db.query(f"SELECT * FROM people WHERE (slug = ? OR name_key = ?) AND {where} "
                         "ORDER BY slug = ? DESC, id", [slug, normalise_name(text), slug]))


def upsert_person(db: sqlite_utils.Database, name: str, href: str | None = None, img: str | None = None) -> int:
    """Return the id of the person called `name`, creating the record if needed.

    The name is stored without a leading honorific. An existing record keeps its name and slug; a missing href
    or img is filled in, and an all-lower-case name is replaced by a properly cased one. Raises ValueError for a
    name with no letters.
    """
    display = display_name(name)
    key = normalise_name(display)
    if not key:
        raise ValueError(f"not a person's name: {name!r}")
    existing = next(iter(db.query("SELECT * FROM people WHERE name_key = ?", [key])), None)
    if existing is None:
        return db["people"].insert(
            {"name": display, "name_key": key, "slug": _unique_slug(db, slugify(display)), "href": href, "img": img}
        ).last_pk
    updates = {}
    if href and not existing["href"]:
        updates["href"] = href
    if img and not existing["img"]:
        updates["img"] = img
    if _better_display(existing["name"], display):
        updates["name"] = display
    if updates:
        db["people"].update(existing["id"], updates)
    return existing["id"]
