"""Producers: the people who may log in to the studio and edit the shows granted to them.

Accounts with argon2id password hashes, grants of shows (an admin may edit every show), API tokens for the
studio API (the token is shown once; only its sha256 is kept), and throttling of failed logins per name and per
client address. There is no default account: `podarchive producer add` makes the first one.

No Flask here: the CLI (`podarchive producer ...`) and the web layer (archive/web/auth.py) turn these functions
and their errors into commands and pages. Nothing here logs or keeps a password or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import unicodedata
from dataclasses import dataclass, field

import sqlite_utils
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .db import utcnow, write_transaction
from .errors import (
    BadPasswordError,
    InvalidProducerNameError,
    ProducerExistsError,
    UnknownProducerError,
    UnknownShowError,
    UnknownTokenError,
)

MAX_NAME_CHARS = 100
MAX_PASSWORD_CHARS = 1024  # hashing has a cost per character: a megabyte "password" is refused, not hashed
MAX_LABEL_CHARS = 200
TOKEN_PREFIX = "pa_"

_hasher = PasswordHasher()  # argon2id with argon2-cffi's default (RFC 9106 low-memory) parameters
_dummy_hash: str | None = None


@dataclass(frozen=True)
class Producer:
    id: int
    name: str
    admin: bool = False


@dataclass(frozen=True)
class ProducerInfo:
    """A producer as `podarchive producer list` shows them."""
    id: int
    name: str
    admin: bool
    created_at: str
    shows: list[dict] = field(default_factory=list)  # {"id", "title"} of each granted show
    tokens: int = 0  # API tokens not revoked


@dataclass(frozen=True)
class TokenInfo:
    """An API token as listed: never the token itself."""
    id: int
    label: str | None
    created_at: str
    last_used_at: str | None
    revoked_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class LoginThrottle:
    """How failed logins slow down the next attempts. Each name and each client address is counted apart; after
    `max_failures` failures within `window` seconds, the next attempt for that name or from that address must
    wait 2, 4, 8, ... seconds after the last failure, at most `max_delay`."""
    max_failures: int = 5
    window: float = 3600.0
    max_delay: float = 900.0

    def delay(self, failures: int) -> float:
        if failures < self.max_failures:
            return 0.0
        return min(2.0 ** min(failures - self.max_failures + 1, 30), self.max_delay)


THROTTLE = LoginThrottle()


@dataclass(frozen=True)
class LoginOutcome:
    """What `attempt_login` found: the producer (None: refused), and when refused by the throttle, the seconds
    to wait before trying again (0.0: the name or the password was wrong)."""
    producer: Producer | None
    retry_after: float = 0.0


# --- accounts ---

def check_name(name: str) -> str:
    """The name as kept (surrounding spaces dropped); InvalidProducerNameError when empty, too long or holding
    control characters."""
    name = (name or "").strip()
    if not name:
        raise InvalidProducerNameError("a producer needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidProducerNameError(f"a producer name has at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(char).startswith("C") for char in name):
        raise InvalidProducerNameError("a producer name cannot hold control characters")
    return name


def hash_password(password: str) -> str:
    if not password:
        raise BadPasswordError("the password is empty")
    if len(password) > MAX_PASSWORD_CHARS:
        raise BadPasswordError(f"the password is longer than {MAX_PASSWORD_CHARS} characters")
    return _hasher.hash(password)


def add_producer(db: sqlite_utils.Database, name: str, password: str, shows=(), admin: bool = False) -> Producer:
    """A new producer, granted the shows with these ids. ProducerExistsError when the name (in any letter case)
    is taken, UnknownShowError for a show id not in the archive, BadPasswordError for an empty password."""
    name = check_name(name)
    password_hash = hash_password(password)  # slow on purpose: before taking the write lock
    with write_transaction(db):
        if _find(db, name) is not None:
            raise ProducerExistsError(f"producer {name!r} already exists")
        show_ids = [_check_show(db, show_id) for show_id in shows]
        now = utcnow()
        producer_id = db.conn.execute(
            "INSERT INTO producers (name, password_hash, admin, session_token, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [name, password_hash, int(bool(admin)), secrets.token_urlsafe(16), now, now],
        ).lastrowid
        for show_id in show_ids:
            _grant(db, producer_id, show_id)
    return Producer(producer_id, name, bool(admin))


def get_producer(db: sqlite_utils.Database, name: str) -> Producer:
    row = _find(db, (name or "").strip())
    if row is None:
        raise UnknownProducerError(f"no producer named {name!r}")
    return Producer(row["id"], row["name"], bool(row["admin"]))


def list_producers(db: sqlite_utils.Database) -> list[ProducerInfo]:
    """Every producer by name, with the shows granted to them and their count of API tokens in use."""
    shows: dict[int, list[dict]] = {}
    for row in db.query(
        "SELECT producer_shows.producer_id, shows.id, shows.title FROM producer_shows "
        "JOIN shows ON shows.id = producer_shows.show_id ORDER BY shows.title COLLATE NOCASE, shows.id"
    ):
        shows.setdefault(row["producer_id"], []).append({"id": row["id"], "title": row["title"]})
    return [
        ProducerInfo(row["id"], row["name"], bool(row["admin"]), row["created_at"], shows.get(row["id"], []),
                     row["tokens"])
        for row in db.query(
            "SELECT producers.id, producers.name, producers.admin, producers.created_at, "
            "(SELECT COUNT(*) FROM api_tokens WHERE producer_id = producers.id AND revoked_at IS NULL) AS tokens "
            "FROM producers ORDER BY producers.name COLLATE NOCASE"
        )
    ]


def remove_producer(db: sqlite_utils.Database, name: str) -> None:
    """Delete a producer with their grants and API tokens; their sessions end at their next request."""
    with write_transaction(db):
        producer_id = _producer_id(db, name)
        db.conn.execute("DELETE FROM producers WHERE id = ?", [producer_id])
        db.conn.execute("DELETE FROM login_failures WHERE name = ?", [name.strip()])


def set_password(db: sqlite_utils.Database, name: str, password: str) -> None:
    """A new password; every session signed in with the old one ends (API tokens stay valid)."""
    password_hash = hash_password(password)
    with write_transaction(db):
        producer_id = _producer_id(db, name)
        db.conn.execute(
            "UPDATE producers SET password_hash = ?, session_token = ?, updated_at = ? WHERE id = ?",
            [password_hash, secrets.token_urlsafe(16), utcnow(), producer_id],
        )


def authenticate(db: sqlite_utils.Database, name: str, password: str) -> Producer | None:
    """The producer when the password is theirs, else None (an unknown name costs the same time as a wrong
    password). A hash made with weaker parameters than today's is replaced by a new one."""
    row = _find(db, (name or "").strip()) if name else None
    if not password or len(password) > MAX_PASSWORD_CHARS:
        return None
    if row is None:
        _verify(_dummy(), password)
        return None
    if not _verify(row["password_hash"], password):
        return None
    if _hasher.check_needs_rehash(row["password_hash"]):
        with write_transaction(db):
            db.conn.execute("UPDATE producers SET password_hash = ? WHERE id = ? AND password_hash = ?",
                            [_hasher.hash(password), row["id"], row["password_hash"]])
    return Producer(row["id"], row["name"], bool(row["admin"]))


def session_id(db: sqlite_utils.Database, producer: Producer) -> str:
    """What a signed-in session keeps to name its producer: their id and a random token that a new password
    replaces, so changing a password (or removing the producer) ends every session made before."""
    row = db.execute("SELECT session_token FROM producers WHERE id = ?", [producer.id]).fetchone()
    if row is None:
        raise UnknownProducerError(f"no producer with id {producer.id}")
    return f"{producer.id}:{row[0]}"


def producer_for_session(db: sqlite_utils.Database, value: str | None) -> Producer | None:
    """The producer a session's `session_id` names, while it is still good; else None."""
    producer_id, _, token = (value or "").partition(":")
    if not producer_id.isdigit() or not token:
        return None
    row = db.execute("SELECT id, name, admin, session_token FROM producers WHERE id = ?",
                     [int(producer_id)]).fetchone()
    if row is None or not hmac.compare_digest(row[3].encode(), token.encode()):
        return None
    return Producer(row[0], row[1], bool(row[2]))


# --- shows ---

def grant(db: sqlite_utils.Database, name: str, show_id: int) -> None:
    """Let the producer edit this show (granting it twice is harmless)."""
    with write_transaction(db):
        _grant(db, _producer_id(db, name), _check_show(db, show_id))


def revoke(db: sqlite_utils.Database, name: str, show_id: int) -> bool:
    """Take the show back from the producer; False when it was not granted."""
    with write_transaction(db):
        cursor = db.conn.execute("DELETE FROM producer_shows WHERE producer_id = ? AND show_id = ?",
                                 [_producer_id(db, name), show_id])
    return cursor.rowcount > 0


def can_edit(db: sqlite_utils.Database, producer: Producer | None, show_id: int) -> bool:
    """Whether the producer may edit the show: an admin every show, anyone else the shows granted to them."""
    if producer is None:
        return False
    if producer.admin:
        return True
    return db.execute("SELECT 1 FROM producer_shows WHERE producer_id = ? AND show_id = ?",
                      [producer.id, show_id]).fetchone() is not None


def editable_show_ids(db: sqlite_utils.Database, producer: Producer) -> list[int] | None:
    """The ids of the shows the producer may edit; None for an admin (every show)."""
    if producer.admin:
        return None
    return [row[0] for row in db.execute(
        "SELECT show_id FROM producer_shows WHERE producer_id = ? ORDER BY show_id", [producer.id])]


# --- API tokens ---

def create_token(db: sqlite_utils.Database, name: str, label: str | None = None) -> tuple[int, str]:
    """A new API token for the producer: (its id, the token). The token is returned this once; the archive keeps
    only its sha256."""
    if label is not None:
        label = label.strip()[:MAX_LABEL_CHARS] or None
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with write_transaction(db):
        token_id = db.conn.execute(
            "INSERT INTO api_tokens (producer_id, label, token_hash, created_at) VALUES (?, ?, ?, ?)",
            [_producer_id(db, name), label, token_hash(token), utcnow()],
        ).lastrowid
    return token_id, token


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def list_tokens(db: sqlite_utils.Database, name: str) -> list[TokenInfo]:
    """The producer's API tokens, newest first, revoked ones included."""
    return [
        TokenInfo(*row) for row in db.execute(
            "SELECT id, label, created_at, last_used_at, revoked_at FROM api_tokens WHERE producer_id = ? "
            "ORDER BY id DESC", [_producer_id(db, name)])
    ]


def revoke_token(db: sqlite_utils.Database, name: str, token_id: int) -> None:
    """Stop an API token working at once (revoking it again is harmless). UnknownTokenError when the producer
    has no token with this id."""
    with write_transaction(db):
        producer_id = _producer_id(db, name)
        if db.execute("SELECT 1 FROM api_tokens WHERE id = ? AND producer_id = ?",
                      [token_id, producer_id]).fetchone() is None:
            raise UnknownTokenError(f"producer {name!r} has no API token {token_id}")
        db.conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                        [utcnow(), token_id])


def producer_for_token(db: sqlite_utils.Database, token: str | None) -> Producer | None:
    """The producer an API token belongs to, while it is not revoked; else None. The token is looked up by its
    hash (so its text is never compared byte by byte); its last use is recorded, to the minute."""
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = token_hash(token)
    row = db.execute(
        "SELECT api_tokens.id, api_tokens.token_hash, api_tokens.last_used_at, producers.id, producers.name, "
        "producers.admin FROM api_tokens JOIN producers ON producers.id = api_tokens.producer_id "
        "WHERE api_tokens.token_hash = ? AND api_tokens.revoked_at IS NULL", [digest],
    ).fetchone()
    if row is None or not hmac.compare_digest(row[1], digest):
        return None
    now = utcnow()
    if (row[2] or "")[:16] != now[:16]:  # at most one write a minute per token
        with write_transaction(db):
            db.conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [now, row[0]])
    return Producer(row[3], row[4], bool(row[5]))


# --- failed logins ---

def attempt_login(db: sqlite_utils.Database, name: str, password: str, address: str | None, *,
                  now: float | None = None, throttle: LoginThrottle = THROTTLE) -> LoginOutcome:
    """A login as the site makes it: refused without looking at the password while the name or the address
    must wait; else the password is checked, a failure counted, and a success clears the name's failures.

    The attempt is counted as a failure before the password is checked (in the same transaction as the
    throttle's check) and forgotten on success: requests sent side by side cannot all slip through one
    opening of the throttle."""
    now = time.time() if now is None else now
    with write_transaction(db):
        wait = login_allowed(db, name, address, now=now, throttle=throttle)
        if wait > 0:
            return LoginOutcome(None, wait)
        record_login_failure(db, name, address, now=now, throttle=throttle)
    producer = authenticate(db, name, password)
    if producer is not None:
        clear_login_failures(db, name)
    return LoginOutcome(producer)


def login_allowed(db: sqlite_utils.Database, name: str, address: str | None, *, now: float | None = None,
                  throttle: LoginThrottle = THROTTLE) -> float:
    """Seconds to wait before a login for this name from this address may be tried (0: now)."""
    now = time.time() if now is None else now
    wait = 0.0
    for column, value in (("name", _failure_name(name)), ("address", address or "")):
        count, last = db.execute(
            f"SELECT COUNT(*), MAX(at) FROM login_failures WHERE {column} = ? AND at > ?",
            [value, now - throttle.window],
        ).fetchone()
        if count:
            wait = max(wait, last + throttle.delay(count) - now)
    return max(wait, 0.0)


def record_login_failure(db: sqlite_utils.Database, name: str, address: str | None, *, now: float | None = None,
                         throttle: LoginThrottle = THROTTLE) -> None:
    """Count a failed login (failures older than the throttle's window are forgotten)."""
    now = time.time() if now is None else now
    with write_transaction(db):
        db.conn.execute("DELETE FROM login_failures WHERE at <= ?", [now - throttle.window])
        db.conn.execute("INSERT INTO login_failures (name, address, at) VALUES (?, ?, ?)",
                        [_failure_name(name), address or "", now])


def clear_login_failures(db: sqlite_utils.Database, name: str) -> None:
    """Forget the failed logins for this name (after a successful one)."""
    with write_transaction(db):
        db.conn.execute("DELETE FROM login_failures WHERE name = ?", [_failure_name(name)])


# --- helpers ---

def _find(db: sqlite_utils.Database, name: str) -> dict | None:
    rows = list(db.query("SELECT * FROM producers WHERE name = ?", [name]))
    return rows[0] if rows else None


def _producer_id(db: sqlite_utils.Database, name: str) -> int:
    return get_producer(db, name).id


def _check_show(db: sqlite_utils.Database, show_id) -> int:
    try:
        show_id = int(show_id)
    except (TypeError, ValueError):
        raise UnknownShowError(f"no show with id {show_id!r}") from None
    if db.execute("SELECT 1 FROM shows WHERE id = ?", [show_id]).fetchone() is None:
        raise UnknownShowError(f"no show with id {show_id}")
    return show_id


def _grant(db: sqlite_utils.Database, producer_id: int, show_id: int) -> None:
    db.conn.execute("INSERT OR IGNORE INTO producer_shows (producer_id, show_id, granted_at) VALUES (?, ?, ?)",
                    [producer_id, show_id, utcnow()])


def _failure_name(name: str | None) -> str:
    return (name or "").strip()[:MAX_NAME_CHARS + 1]


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash
