"""`podarchive producer ...`: producers' accounts, the shows granted to them and their API tokens."""

from __future__ import annotations

import sys

import click

from .common import db_option, library_errors, open_archive


@click.group()
def producer():
    """Producers: the accounts that may log in to the studio and edit the shows granted to them."""


def password_stdin_option(fn):
    return click.option(
        "--password-stdin", is_flag=True,
        help="Read the password from the first line of standard input instead of asking for it twice.",
    )(fn)


def read_password(password_stdin: bool) -> str:
    """The new password: the first line of standard input, or typed twice (hidden) at a prompt."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise click.ClickException("no password on the first line of standard input")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@producer.command("add")
@click.argument("name")
@db_option
@click.option("--show", "shows", multiple=True, metavar="SHOW",
              help="A show they may edit: id, title or feed URL (repeat for several).")
@click.option("--admin", is_flag=True, help="May edit every show, those to come included.")
@password_stdin_option
@library_errors
def producer_add(name, db_path, shows, admin, password_stdin):
    """Add a producer who may log in to the studio (asks for their password)."""
    from ..errors import ProducerExistsError, UnknownProducerError
    from ..producers import add_producer, check_name, get_producer
    from ..queries import find_show

    db = open_archive(db_path)
    name = check_name(name)
    try:  # say so before asking for a password
        existing = get_producer(db, name)
    except UnknownProducerError:
        existing = None
    if existing is not None:
        raise ProducerExistsError(f"producer {existing.name!r} already exists")
    show_ids = [find_show(db, show)["id"] for show in shows]
    added = add_producer(db, name, read_password(password_stdin), show_ids, admin)
    what = "every show" if added.admin else f"{len(set(show_ids))} show(s)" if show_ids else \
        "no show yet (see `podarchive producer grant`)"
    click.echo(f"added producer {added.name}, who may edit {what}")


@producer.command("list")
@db_option
@library_errors
def producer_list(db_path):
    """List producers with the shows they may edit and their API tokens in use."""
    from ..producers import list_producers

    rows = list_producers(open_archive(db_path, must_exist=True))
    if not rows:
        click.echo("No producers yet: add one with `podarchive producer add NAME`.")
    for row in rows:
        shows = "every show (admin)" if row.admin else \
            ", ".join(f"{show['title'] or '(untitled)'} [{show['id']}]" for show in row.shows) or "no show yet"
        click.echo(f"{row.name}  shows: {shows}; API tokens: {row.tokens}; since {row.created_at}")


@producer.command("remove")
@click.argument("name")
@db_option
@library_errors
def producer_remove(name, db_path):
    """Remove a producer, their grants and API tokens (their sessions end at once)."""
    from ..producers import remove_producer

    remove_producer(open_archive(db_path), name)
    click.echo(f"removed producer {name}")


@producer.command("passwd")
@click.argument("name")
@db_option
@password_stdin_option
@library_errors
def producer_passwd(name, db_path, password_stdin):
    """Set a producer's password (every session they had ends; API tokens stay)."""
    from ..producers import get_producer, set_password

    db = open_archive(db_path)
    name = get_producer(db, name).name  # say so before asking for a password
    set_password(db, name, read_password(password_stdin))
    click.echo(f"password changed for {name}")


@producer.command("grant")
@click.argument("name")
@click.argument("show")
@db_option
@library_errors
def producer_grant(name, show, db_path):
    """Let a producer edit a show (SHOW: id, title or feed URL)."""
    from ..producers import grant

    db = open_archive(db_path)
    show_id, title = show_and_label(db, show)
    grant(db, name, show_id)
    click.echo(f"{name} may edit {title}")


def show_and_label(db, show: str) -> tuple[int, str]:
    """A SHOW argument's id, and how to name the show in a message."""
    from ..queries import find_show

    found = find_show(db, show)
    return found["id"], f"{found['title'] or found['feed_url']} [{found['id']}]"


@producer.command("revoke")
@click.argument("name")
@click.argument("show")
@db_option
@library_errors
def producer_revoke(name, show, db_path):
    """Take a show back from a producer (SHOW: id, title or feed URL)."""
    from ..producers import revoke

    db = open_archive(db_path)
    show_id, title = show_and_label(db, show)
    removed = revoke(db, name, show_id)
    click.echo(f"{name} may no longer edit {title}" if removed else f"{name} had no grant of {title}")


@producer.command("token")
@click.argument("name")
@db_option
@click.option("--label", default=None, help="What the token is for, shown by `podarchive producer tokens`.")
@library_errors
def producer_token(name, db_path, label):
    """Make an API token for the studio API and print it, alone on standard output: it is shown only this once."""
    from ..producers import create_token

    token_id, token = create_token(open_archive(db_path), name, label)
    click.echo(token)
    click.echo(f"API token {token_id} for {name}: shown only now, keep it secret "
               f"(send it as 'Authorization: Bearer <token>').", err=True)


@producer.command("tokens")
@click.argument("name")
@db_option
@click.option("--revoke", "revoke_id", type=int, default=None, metavar="ID", help="Revoke the token with this id.")
@library_errors
def producer_tokens(name, db_path, revoke_id):
    """List a producer's API tokens (never the tokens themselves), or revoke one."""
    from ..producers import list_tokens, revoke_token

    db = open_archive(db_path)
    if revoke_id is not None:
        revoke_token(db, name, revoke_id)
        click.echo(f"revoked API token {revoke_id} of {name}")
        return
    tokens = list_tokens(db, name)
    if not tokens:
        click.echo(f"{name} has no API tokens: make one with `podarchive producer token {name}`.")
    for token in tokens:
        state = f"revoked {token.revoked_at}" if token.revoked_at else f"last used {token.last_used_at or 'never'}"
        click.echo(f"{token.id}  {token.label or '(no label)'}  made {token.created_at}; {state}")
