"""One writer at a time: the lock `ingest` and `index` hold on an archive for their whole run.

The lock is a file beside the database (`<db>.lock`), taken with filelock (flock on Unix: the system lets go
of it when the holder dies, even on `kill -9`). Who holds it (pid, since when, which command) is written to a
sidecar file (`<db>.lock.info`, JSON) so a waiting run can name the holder. SQLite still guards every single
write (see `archive.db.write_transaction`); the lock keeps two long runs from interleaving their stages.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import filelock

from .db import utcnow
from .errors import PodarchiveError

DEFAULT_LOCK_TIMEOUT = 3600.0  # seconds a second writer waits before giving up


class ArchiveLockError(PodarchiveError):
    """The archive's lock file could not be made or taken."""


class ArchiveLockedError(ArchiveLockError):
    """Another process holds the archive's lock, and it was not let go within the timeout."""

    def __init__(self, message: str, holder: LockHolder | None = None):
        super().__init__(message)
        self.holder = holder


@dataclass
class LockHolder:
    """Who holds an archive's lock, as its sidecar file says."""

    pid: int | None = None
    since: str | None = None  # ISO 8601, UTC
    command: str | None = None  # ingest, index

    def describe(self) -> str:
        return f"pid {self.pid or '?'}, since {self.since or '?'}"


def lock_paths(db_path: str | os.PathLike) -> tuple[Path, Path]:
    """The lock file and its info sidecar, beside the database (an absolute path: one lock whatever the cwd)."""
    path = Path(db_path).absolute()
    return path.with_name(path.name + ".lock"), path.with_name(path.name + ".lock.info")


def needs_lock(db_path: str | os.PathLike | None) -> bool:
    """An in-memory database has a single connection: nothing else can write it."""
    return db_path is not None and str(db_path) not in ("", ":memory:") and not str(db_path).startswith("file::memory:")


def read_holder(db_path: str | os.PathLike) -> LockHolder | None:
    """The holder named in the sidecar file, or None when there is none (or it is unreadable)."""
    try:
        data = json.loads(lock_paths(db_path)[1].read_text())
        return LockHolder(pid=data.get("pid"), since=data.get("since"), command=data.get("command"))
    except (OSError, ValueError, AttributeError):
        return None


@contextmanager
def archive_lock(db_path: str | os.PathLike | None, timeout: float | None = DEFAULT_LOCK_TIMEOUT,
                 on_wait: Callable[[LockHolder | None], None] | None = None,
                 command: str = "ingest") -> Iterator[None]:
    """Hold the archive's exclusive lock for the `with` block.

    When another process holds it, `on_wait(holder)` is called once and the lock is waited for up to `timeout`
    seconds (0: give up at once; None: wait forever), then ArchiveLockedError is raised. `command` names this
    run in the sidecar file, for the next waiter's message.
    """
    if not needs_lock(db_path):
        yield
        return
    lock_path, info_path = lock_paths(db_path)
    lock = filelock.FileLock(str(lock_path))
    try:
        if not _try_acquire(lock, 0):
            holder = read_holder(db_path)
            if timeout != 0 and on_wait is not None:
                on_wait(holder)
            if timeout == 0 or not _try_acquire(lock, -1 if timeout is None else timeout):
                gave_up = "it is locked" if timeout == 0 else f"gave up after {timeout:g} s"
                who = f"another {holder.command or 'writer'} ({holder.describe()})" if holder else "another process"
                raise ArchiveLockedError(f"{db_path} is being written by {who}: {gave_up}", holder)
    except OSError as exc:
        raise ArchiveLockError(f"cannot lock {db_path}: {exc.strerror or exc}") from exc
    try:
        _write_info(info_path, LockHolder(pid=os.getpid(), since=utcnow(), command=command))
        yield
    finally:
        try:
            info_path.unlink(missing_ok=True)
        except OSError:
            pass
        lock.release()


def _try_acquire(lock: filelock.FileLock, timeout: float) -> bool:
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        return False
    return True


def _write_info(info_path: Path, holder: LockHolder) -> None:
    """Replace the sidecar in one step, so a waiter never reads half of it. Best effort: it only names us."""
    part = info_path.with_name(f"{info_path.name}.{os.getpid()}.part")
    try:
        part.write_text(json.dumps({"pid": holder.pid, "since": holder.since, "command": holder.command}))
        os.replace(part, info_path)
    except OSError:
        part.unlink(missing_ok=True)

