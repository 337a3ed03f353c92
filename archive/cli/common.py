"""What the commands share: the --db, --show and --lock-timeout options, opening the archive, holding its one-writer
lock, and library errors turned into messages."""

from __future__ import annotations

import functools
import os
from contextlib import contextmanager

import click

from ..errors import PodarchiveError, SettingError
from ..settings import Settings


def from_settings(name: str):
    """An option's default: the setting `name` as Settings.from_env() reads it when the command runs (one reader
    of the PODARCHIVE_* environment for the CLI, the site and the library)."""
    def default():
        try:
            return getattr(Settings.from_env(), name)
        except SettingError as exc:
            raise click.UsageError(str(exc)) from exc
    return default


def db_option(fn):
    return click.option(
        "--db", "db_path", default=from_settings("db"), show_default=Settings().db,
        type=click.Path(dir_okay=False), help="Archive file (SQLite). Environment: PODARCHIVE_DB.",
    )(fn)


def show_option(fn):
    return click.option("--show", default=None, help="Show id, title or feed URL (when a guid is in several shows).")(fn)


def lock_timeout_option(fn):
    return click.option(
        "--lock-timeout", type=click.FloatRange(min=0), default=from_settings("lock_timeout"),
        show_default=str(Settings().lock_timeout), metavar="SECONDS",
        help="How long to wait while another ingest or index writes the archive (0: fail at once). "
             "Environment: PODARCHIVE_LOCK_TIMEOUT.",
    )(fn)


@contextmanager
def writing(db_path: str, lock_timeout: float, command: str):
    """Hold the archive's one-writer lock; say once on stderr when waiting for another run."""
    from ..lock import ArchiveLockError, archive_lock

    def waiting(holder):
        who = f"another {holder.command or 'writer'} holding {db_path} ({holder.describe()})" if holder else \
            f"another writer holding {db_path}"
        click.echo(f"waiting for {who}…", err=True)

    try:
        with archive_lock(db_path, lock_timeout, on_wait=waiting, command=command):
            yield
    except ArchiveLockError as exc:
        raise click.ClickException(str(exc)) from exc


def library_errors(fn):
    """Turn library errors into a clean message and exit status 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except PodarchiveError as exc:
            raise click.ClickException(str(exc)) from exc

    return wrapper


def open_archive(db_path: str, *, must_exist: bool = False):
    """The archive at `db_path`, migrated. `must_exist`: for the commands that only read, a missing file is an
    error that says how to make one, rather than a new empty archive."""
    from ..db import open_db

    if must_exist and not os.path.exists(db_path):
        raise click.ClickException(
            f"no archive at {os.path.abspath(db_path)}. Make one with `podarchive ingest FEED_URL` (or `make run` "
            f"for the demo show), or point at yours with --db PATH or PODARCHIVE_DB.")
    try:
        return open_db(db_path)
    except Exception as exc:  # a file that is not SQLite, a read-only folder
        raise click.ClickException(f"cannot open archive {db_path}: {exc}") from exc
