"""Producers' accounts, grants, API tokens and login throttling (archive/producers.py), and `podarchive producer`."""

import hashlib
import re

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner

from archive import producers
from archive.cli import cli
from archive.db import open_db
from archive.errors import (
    BadPasswordError,
    InvalidProducerNameError,
    NotFoundError,
    ProducerError,
    ProducerExistsError,
    UnknownProducerError,
    UnknownShowError,
    UnknownTokenError,
)
from archive.producers import LoginThrottle, Producer
from web_fixtures import ArchiveBuilder

TOKEN = re.compile(r"pa_[A-Za-z0-9_-]{43}")


@pytest.fixture
def shows(db):
    build = ArchiveBuilder(db)
    return {"datacast": build.show("Datacast"), "other": build.show("Other Show")}


def dump(db) -> str:
    return "\n".join(db.conn.iterdump())


# --- accounts ---

def test_add_and_authenticate(db, shows):
    alice = producers.add_producer(db, "  alice ", "correct horse", shows=[shows["datacast"]])
    assert alice == Producer(alice.id, "alice", False)
    assert producers.authenticate(db, "alice", "correct horse") == alice
    assert producers.authenticate(db, "ALICE", "correct horse") == alice  # names ignore letter case
    assert producers.authenticate(db, "alice", "wrong") is None
    assert producers.authenticate(db, "bob", "correct horse") is None
    assert producers.authenticate(db, "alice", "") is None
    stored = db.execute("SELECT password_hash FROM producers").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in dump(db)


def test_no_default_account(db):
    assert producers.list_producers(db) == []
    assert db.execute("SELECT COUNT(*) FROM producers").fetchone()[0] == 0


def test_named_errors(db, shows):
    producers.add_producer(db, "alice", "pw")
    with pytest.raises(ProducerExistsError):
        producers.add_producer(db, "Alice", "pw")
    with pytest.raises(BadPasswordError):
        producers.add_producer(db, "bob", "")
    with pytest.raises(BadPasswordError):
        producers.set_password(db, "alice", "x" * 5000)
    for bad in ("", "   ", "a\x00b", "x" * 101):
        with pytest.raises(InvalidProducerNameError):
            producers.add_producer(db, bad, "pw")
    with pytest.raises(UnknownShowError) as raised:
        producers.add_producer(db, "carol", "pw", shows=[9999])
    assert isinstance(raised.value, NotFoundError) and isinstance(raised.value, ProducerError)
    assert [p.name for p in producers.list_producers(db)] == ["alice"]  # nothing half-made
    for call in (lambda: producers.remove_producer(db, "nobody"), lambda: producers.set_password(db, "nobody", "x"),
                 lambda: producers.grant(db, "nobody", shows["datacast"]), lambda: producers.create_token(db, "nobody"),
                 lambda: producers.list_tokens(db, "nobody")):
        with pytest.raises(UnknownProducerError):
            call()
    with pytest.raises(UnknownShowError):
        producers.grant(db, "alice", 9999)


def test_weak_hash_is_replaced_on_login(db):
    producers.add_producer(db, "alice", "pw")
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    db.execute("UPDATE producers SET password_hash = ?", [weak])
    assert producers.authenticate(db, "alice", "pw") is not None
    stored = db.execute("SELECT password_hash FROM producers").fetchone()[0]
    assert stored != weak and not PasswordHasher().check_needs_rehash(stored)
    assert producers.authenticate(db, "alice", "pw") is not None


def test_new_password_ends_sessions(db):
    alice = producers.add_producer(db, "alice", "old")
    session = producers.session_id(db, alice)
    assert producers.producer_for_session(db, session) == alice
    producers.set_password(db, "alice", "new")
    assert producers.authenticate(db, "alice", "old") is None
    assert producers.authenticate(db, "alice", "new") == alice
    assert producers.producer_for_session(db, session) is None
    assert producers.producer_for_session(db, producers.session_id(db, alice)) == alice
    for bad in (None, "", "x", f"{alice.id}:", f"{alice.id}:wrong", "abc:def"):
        assert producers.producer_for_session(db, bad) is None


def test_grants(db, shows):
    bob = producers.add_producer(db, "bob", "pw", shows=[shows["datacast"]])
    boss = producers.add_producer(db, "boss", "pw", admin=True)
    assert producers.can_edit(db, bob, shows["datacast"]) and not producers.can_edit(db, bob, shows["other"])
    assert producers.editable_show_ids(db, bob) == [shows["datacast"]]
    assert producers.can_edit(db, boss, shows["other"]) and producers.editable_show_ids(db, boss) is None
    assert not producers.can_edit(db, None, shows["datacast"])
    producers.grant(db, "bob", shows["other"])
    producers.grant(db, "bob", shows["other"])  # twice is harmless
    assert producers.editable_show_ids(db, bob) == sorted(shows.values())
    assert producers.revoke(db, "bob", shows["datacast"]) is True
    assert producers.revoke(db, "bob", shows["datacast"]) is False
    assert producers.editable_show_ids(db, bob) == [shows["other"]]
    db.execute("DELETE FROM shows WHERE id = ?", [shows["other"]])  # a show's grants go with it
    assert producers.editable_show_ids(db, bob) == []


def test_list_producers(db, shows):
    producers.add_producer(db, "bob", "pw", shows=[shows["other"], shows["datacast"]])
    producers.add_producer(db, "Alice", "pw", admin=True)
    producers.create_token(db, "bob")
    _, second = producers.create_token(db, "bob")
    producers.revoke_token(db, "bob", producers.list_tokens(db, "bob")[0].id)
    listed = producers.list_producers(db)
    assert [(p.name, p.admin, p.tokens) for p in listed] == [("Alice", True, 0), ("bob", False, 1)]
    assert [s["title"] for s in listed[1].shows] == ["Datacast", "Other Show"]


# --- API tokens ---

def test_token_is_shown_once_and_kept_hashed(db):
    alice = producers.add_producer(db, "alice", "pw")
    token_id, token = producers.create_token(db, "alice", label="  laptop  ")
    assert TOKEN.fullmatch(token)
    everything = dump(db)
    assert token not in everything and token[3:] not in everything
    assert hashlib.sha256(token.encode()).hexdigest() in everything
    [info] = producers.list_tokens(db, "alice")
    assert (info.id, info.label, info.last_used_at, info.active) == (token_id, "laptop", None, True)
    assert producers.producer_for_token(db, token) == alice
    assert producers.list_tokens(db, "alice")[0].last_used_at is not None
    other_id, other = producers.create_token(db, "alice")
    assert other != token and producers.producer_for_token(db, other) == alice


def test_bad_tokens_are_refused(db):
    producers.add_producer(db, "alice", "pw")
    _, token = producers.create_token(db, "alice")
    for bad in (None, "", token[:-1], token + "x", token.upper(), token[3:], "pa_" + "x" * 43, "pa_" * 100, 42):
        assert producers.producer_for_token(db, bad) is None


def test_revoked_token_stops_working(db):
    producers.add_producer(db, "alice", "pw")
    producers.add_producer(db, "bob", "pw")
    token_id, token = producers.create_token(db, "alice")
    with pytest.raises(UnknownTokenError):
        producers.revoke_token(db, "bob", token_id)  # not bob's token
    assert producers.producer_for_token(db, token) is not None
    producers.revoke_token(db, "alice", token_id)
    producers.revoke_token(db, "alice", token_id)  # twice is harmless
    assert producers.producer_for_token(db, token) is None
    assert producers.list_tokens(db, "alice")[0].revoked_at is not None
    with pytest.raises(UnknownTokenError):
        producers.revoke_token(db, "alice", 999)


def test_remove_producer_takes_grants_tokens_and_sessions(db, shows):
    alice = producers.add_producer(db, "alice", "pw", shows=[shows["datacast"]])
    _, token = producers.create_token(db, "alice")
    session = producers.session_id(db, alice)
    producers.remove_producer(db, "ALICE")
    assert producers.producer_for_token(db, token) is None
    assert producers.producer_for_session(db, session) is None
    assert db.execute("SELECT COUNT(*) FROM producer_shows").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM api_tokens").fetchone()[0] == 0
    producers.add_producer(db, "alice", "pw2")  # the name is free again


# --- throttling ---

def test_throttle_per_account(db):
    producers.add_producer(db, "alice", "pw")
    t = 1_000_000.0
    for i in range(4):
        producers.record_login_failure(db, "alice", f"10.0.0.{i}", now=t)
        assert producers.login_allowed(db, "alice", "10.0.1.1", now=t) == 0
    producers.record_login_failure(db, "Alice", "10.0.0.9", now=t)  # the fifth, from yet another address
    assert producers.login_allowed(db, "alice", "10.0.1.1", now=t) == 2
    assert producers.login_allowed(db, "alice", "10.0.1.1", now=t + 1.5) == pytest.approx(0.5)
    assert producers.login_allowed(db, "alice", "10.0.1.1", now=t + 2) == 0
    assert producers.login_allowed(db, "bob", "10.0.1.1", now=t) == 0  # another name, another address
    producers.record_login_failure(db, "alice", "10.0.0.9", now=t + 2)
    assert producers.login_allowed(db, "alice", "10.0.1.1", now=t + 2) == 4  # growing
    producers.clear_login_failures(db, "ALICE")
    assert producers.login_allowed(db, "alice", "10.0.1.1", now=t + 2) == 0


def test_throttle_per_address(db):
    t = 1_000_000.0
    for i in range(5):
        producers.record_login_failure(db, f"user{i}", "203.0.113.7", now=t)
    assert producers.login_allowed(db, "someone-new", "203.0.113.7", now=t) == 2
    assert producers.login_allowed(db, "someone-new", "203.0.113.8", now=t) == 0
    producers.clear_login_failures(db, "user0")  # a success clears that name's failures only
    assert producers.login_allowed(db, "someone-new", "203.0.113.7", now=t) == 0  # 4 left: under the limit


def test_throttle_delay_grows_to_a_cap_and_failures_expire(db):
    throttle = LoginThrottle()
    assert [throttle.delay(n) for n in (0, 4, 5, 6, 7, 14, 15, 100, 10**6)] == [0, 0, 2, 4, 8, 900, 900, 900, 900]
    t = 1_000_000.0
    for _ in range(20):
        producers.record_login_failure(db, "alice", "192.0.2.1", now=t)
    assert producers.login_allowed(db, "alice", "192.0.2.2", now=t) == 900
    later = t + throttle.window + 1
    assert producers.login_allowed(db, "alice", "192.0.2.1", now=later) == 0
    producers.record_login_failure(db, "alice", "192.0.2.1", now=later)  # forgets the old ones
    assert db.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 1


def test_attempt_login(db):
    alice = producers.add_producer(db, "alice", "pw")
    t = 1_000_000.0
    assert producers.attempt_login(db, "alice", "pw", "192.0.2.1", now=t) == producers.LoginOutcome(alice, 0.0)
    for i in range(5):
        assert producers.attempt_login(db, "alice", f"guess {i}", "192.0.2.1", now=t) == \
            producers.LoginOutcome(None, 0.0)
    refused = producers.attempt_login(db, "alice", "pw", "192.0.2.1", now=t + 1)  # the right password, too soon
    assert refused.producer is None and refused.retry_after == 1
    assert db.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 5  # a refusal is not counted
    assert producers.attempt_login(db, "alice", "pw", "192.0.2.2", now=t + 2).producer == alice
    assert db.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0] == 0


def test_attempts_side_by_side_cannot_pass_the_throttle_together(db_path):
    import threading

    db = open_db(db_path)
    producers.add_producer(db, "alice", "pw")
    db.conn.close()
    outcomes, start = [], threading.Barrier(12)

    def attempt():
        conn = open_db(db_path)
        start.wait()
        outcomes.append(producers.attempt_login(conn, "alice", "wrong", "192.0.2.1", now=1_000_000.0))
        conn.conn.close()

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    checked = [o for o in outcomes if o.retry_after == 0]
    assert len(outcomes) == 12 and len(checked) == 5  # the password was looked at five times, no more


# --- the command line ---

def run(db_path, *args, input=None):
    return CliRunner().invoke(cli, ["producer", *args, "--db", str(db_path)], input=input)


@pytest.fixture
def archive(db_path):
    db = open_db(db_path)
    build = ArchiveBuilder(db)
    ids = {"datacast": build.show("Datacast", "https://example.com/datacast.xml"), "other": build.show("Other Show")}
    db.conn.close()
    return db_path, ids


def test_cli_add_with_password_on_stdin(archive):
    path, ids = archive
    result = run(path, "add", "alice", "--show", "Datacast", "--show", str(ids["other"]), "--password-stdin",
                 input="s3cret pass\nignored\n")
    assert result.exit_code == 0, result.output
    assert "s3cret" not in result.output
    db = open_db(path)
    alice = producers.authenticate(db, "alice", "s3cret pass")
    assert alice is not None and producers.editable_show_ids(db, alice) == sorted(ids.values())


def test_cli_add_asks_twice_with_hidden_input(archive):
    path, ids = archive
    result = run(path, "add", "bob", "--show", "https://example.com/datacast.xml", input="pw\npw\n")
    assert result.exit_code == 0, result.output
    assert "pw" not in result.output.replace("Password", "")  # hidden: the typed text is not echoed
    assert "Repeat for confirmation" in result.output
    result = run(path, "add", "carol", "--admin", input="one\ntwo\nthree\nthree\n")  # a mismatch asks again
    assert result.exit_code == 0 and "do not match" in result.output
    db = open_db(path)
    assert producers.authenticate(db, "bob", "pw") is not None
    carol = producers.authenticate(db, "carol", "three")
    assert carol is not None and carol.admin


def test_cli_errors_exit_1_with_a_message(archive):
    path, ids = archive
    assert run(path, "add", "alice", "--password-stdin", input="pw\n").exit_code == 0
    result = run(path, "add", "ALICE", "--password-stdin", input="pw\n")
    assert result.exit_code == 1 and "already exists" in result.output
    result = run(path, "add", "dave", "--show", "No Such Show", "--password-stdin", input="pw\n")
    assert result.exit_code == 1 and "no show 'No Such Show'" in result.output
    result = run(path, "add", "erin", "--password-stdin", input="\n")
    assert result.exit_code == 1 and "no password" in result.output
    for args in (("remove", "nobody"), ("passwd", "nobody", "--password-stdin"), ("grant", "nobody", "Datacast"),
                 ("token", "nobody"), ("tokens", "nobody")):
        result = run(path, *args, input="pw\n")
        assert result.exit_code == 1 and "no producer named 'nobody'" in result.output, args
    result = run(path, "tokens", "alice", "--revoke", "42")
    assert result.exit_code == 1 and "no API token 42" in result.output
    assert [p.name for p in producers.list_producers(open_db(path))] == ["alice"]


def test_cli_list_grant_revoke_passwd_remove(archive):
    path, ids = archive
    assert run(path, "list").output.startswith("No producers yet")
    run(path, "add", "alice", "--password-stdin", input="pw\n")
    run(path, "add", "boss", "--admin", "--password-stdin", input="pw\n")
    assert run(path, "grant", "alice", "datacast").exit_code == 0  # a title in any letter case
    listed = run(path, "list").output
    assert f"alice  shows: Datacast [{ids['datacast']}]; API tokens: 0" in listed
    assert "boss  shows: every show (admin)" in listed
    result = run(path, "revoke", "alice", str(ids["datacast"]))
    assert result.exit_code == 0 and "may no longer edit Datacast" in result.output
    assert "no show yet" in run(path, "list").output
    result = run(path, "passwd", "alice", "--password-stdin", input="new pw\n")
    assert result.exit_code == 0 and "new pw" not in result.output
    assert producers.authenticate(open_db(path), "alice", "new pw") is not None
    assert run(path, "passwd", "alice", input="p2\np2\n").exit_code == 0
    assert producers.authenticate(open_db(path), "alice", "p2") is not None
    assert run(path, "remove", "alice").exit_code == 0
    assert [p.name for p in producers.list_producers(open_db(path))] == ["boss"]


def test_cli_token_printed_once_alone_on_stdout(archive):
    path, ids = archive
    run(path, "add", "alice", "--password-stdin", input="pw\n")
    result = run(path, "token", "alice", "--label", "ci")
    assert result.exit_code == 0
    token = result.stdout.strip()
    assert TOKEN.fullmatch(token) and result.stdout == token + "\n"
    assert "shown only now" in result.stderr
    assert producers.producer_for_token(open_db(path), token).name == "alice"
    listing = run(path, "tokens", "alice").output
    assert "ci" in listing and token not in listing and "last used" in listing
    assert token.encode() not in path.read_bytes()
    token_id = producers.list_tokens(open_db(path), "alice")[0].id
    result = run(path, "tokens", "alice", "--revoke", str(token_id))
    assert result.exit_code == 0 and "revoked" in result.output
    assert producers.producer_for_token(open_db(path), token) is None
    assert "revoked" in run(path, "tokens", "alice").output
