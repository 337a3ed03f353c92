"""The FTS5 tables that keyword search reads, as data: which columns of which tables, with Porter stemming.

Each table in `FTS_TABLES` gets `<table>_fts`, an external-content FTS5 table, and three triggers that keep it
current whoever writes (`<table>_ai`, `_ad`, `_au`): the same SQL sqlite-utils' `enable_fts(columns,
create_triggers=True, tokenize="porter")` writes, so the tables of archives indexed before migration m012 (which
made them that way) are the tables a new archive gets. Migration m012 (archive/db.py) runs `ensure_fts`; the query
side is archive/fts.py's.
"""

from __future__ import annotations

import sqlite_utils

from .db import write_transaction

# Table -> columns searched.
FTS_TABLES: dict[str, list[str]] = {
    "passages": ["text"],
    "episodes": ["title", "notes_text"],
    "takeaways": ["title", "text"],
    "people": ["name"],
}


def _quote(name: str) -> str:
    return '"{}"'.format(name.replace('"', '""'))


def _create_sql(table: str, columns: list[str]) -> str:
    quoted = ", ".join(_quote(c) for c in columns)
    return (f"CREATE VIRTUAL TABLE {_quote(table + '_fts')} USING FTS5 (\n    {quoted},\n    tokenize='porter',\n"
            f"    content={_quote(table)}\n)")


def _trigger_sql(table: str, columns: list[str]) -> list[str]:
    fts, quoted = _quote(table + "_fts"), ", ".join(_quote(c) for c in columns)
    old = ", ".join(f"old.{_quote(c)}" for c in columns)
    new = ", ".join(f"new.{_quote(c)}" for c in columns)
    insert = f"INSERT INTO {fts} (rowid, {quoted}) VALUES (new.rowid, {new});"
    delete = f"INSERT INTO {fts} ({fts}, rowid, {quoted}) VALUES('delete', old.rowid, {old});"
    return [
        f"CREATE TRIGGER IF NOT EXISTS {_quote(table + '_ai')} AFTER INSERT ON {_quote(table)} BEGIN\n"
        f"  {insert}\nEND;",
        f"CREATE TRIGGER IF NOT EXISTS {_quote(table + '_ad')} AFTER DELETE ON {_quote(table)} BEGIN\n"
        f"  {delete}\nEND;",
        f"CREATE TRIGGER IF NOT EXISTS {_quote(table + '_au')} AFTER UPDATE ON {_quote(table)} BEGIN\n"
        f"  {delete}\n  {insert}\nEND;",
    ]


def ensure_fts(db: sqlite_utils.Database) -> list[str]:
    """Create the FTS5 tables and their triggers where missing, filling a table it creates from the rows already
    there; a no-op where they are (an archive indexed before m012). All or nothing (a savepoint inside the
    caller's transaction). Returns the FTS table names."""
    with write_transaction(db):
        for table, columns in FTS_TABLES.items():
            fts, quoted = f"{table}_fts", ", ".join(_quote(c) for c in columns)
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [fts]).fetchone() is None:
                db.conn.execute(_create_sql(table, columns))
                db.conn.execute(f"INSERT INTO {_quote(fts)} (rowid, {quoted}) SELECT rowid, {quoted} "
                                f"FROM {_quote(table)}")
            for statement in _trigger_sql(table, columns):
                db.conn.execute(statement)
    return [f"{table}_fts" for table in FTS_TABLES]


def rebuild_fts(db: sqlite_utils.Database) -> None:
    """Re-read every row into the FTS tables: a repair, for tables that lost rows."""
    ensure_fts(db)
    with write_transaction(db):
        for table in FTS_TABLES:
            fts = _quote(table + "_fts")
            db.conn.execute(f"INSERT INTO {fts}({fts}) VALUES('rebuild')")
