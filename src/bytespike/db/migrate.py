"""Schema migrations with Alembic, driven from code (no alembic.ini to find).

Alembic is imported only where a migration really runs: it costs a quarter of a second,
which every CLI command would otherwise pay.

On SQLite every process migrates a file it finds behind (serve, worker, the CLI), so two
started together on a new or older file would both run the same migration, and the second
fail half-way. They take turns: an exclusive `flock` on the database's directory (not on
a file: a lock file would be left behind, and a second descriptor on the database itself
would drop SQLite's own locks when closed), after which the second finds nothing to do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bytespike.db.engine import Database, ensure_sqlite_dir

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_REVISION_LINE = re.compile(r"^(down_revision|revision)\b[^=\n]*=(.*)$", re.MULTILINE)
_QUOTED = re.compile(r"[\"']([^\"']+)[\"']")


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Apply pending migrations. Blocking: call it before the loop or from a thread."""
    from alembic import command

    ensure_sqlite_dir(url)
    with _alone(url):
        command.upgrade(alembic_config(url), revision)


@contextlib.contextmanager
def _alone(url: str) -> Iterator[None]:
    """On a SQLite file, no other process migrating it meanwhile (the module's docstring)."""
    database = make_url(url).database
    if make_url(url).get_backend_name() != "sqlite" or database in (None, "", ":memory:"):
        yield
        return
    directory = os.open(Path(database).resolve().parent, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        yield
    finally:
        os.close(directory)  # which lets the lock go


def head(url: str) -> str | None:
    """The revision a current database records, as Alembic reads the scripts. Read from the
    scripts' text when that is unambiguous: importing Alembic costs a server ~10 MB."""
    scripted = _scripted_head()
    if scripted is not None:
        return scripted
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


class SchemaOutOfDate(RuntimeError):
    """The database is not at the revision this version of bytespike needs."""


async def require_current(db: Database) -> None:
    """Refuse a database that `bytespike db upgrade` has not brought to head (PostgreSQL is
    migrated by an operator, never implicitly). An outage propagates as the database
    layer reports it (errors.ServiceUnavailable)."""
    head_revision = head(db.url)
    try:
        async with db.read() as conn:
            query = sa.text("SELECT version_num FROM alembic_version")
            current = (await conn.execute(query)).scalar_one_or_none()
    except sa.exc.DBAPIError:  # no alembic_version table: never migrated
        current = None
    if current == head_revision:
        return
    if current is not None and current not in _scripted_revisions()[0]:
        # Migrated by a newer release (an old replica restarted mid-upgrade): upgrading
        # is not the way, and running this one would be.
        raise SchemaOutOfDate(
            f"the database schema is at {current}, which this version of bytespike does not "
            f"know (it needs {head_revision}): a newer version migrated it; run that one"
        )
    raise SchemaOutOfDate(
        f"the database schema is at {current or 'nothing (never migrated)'}, "
        f"this version needs {head_revision}: run `bytespike db upgrade`"
    )


def ensure_current_sqlite(url: str) -> None:
    """Bring a SQLite file to head, without importing Alembic when the file already records
    the head revision (the common case for every CLI command). Any doubt: run Alembic."""
    scripted = _scripted_head()
    if scripted is None or _sqlite_revision(url) != scripted:
        upgrade(url)


def _scripted_head() -> str | None:
    """The single head of the migration scripts, read from their text; None if unsure."""
    revisions, parents = _scripted_revisions()
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _scripted_revisions() -> tuple[set[str], set[str]]:
    """The migration scripts' revisions, and those that are some script's parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for name, value in _REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            ids = _QUOTED.findall(value)
            (parents if name == "down_revision" else revisions).update(ids)
    return revisions, parents


def _sqlite_revision(url: str) -> str | None:
    path = make_url(url).database
    if not path or path == ":memory:" or not Path(path).exists():
        return None
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])
