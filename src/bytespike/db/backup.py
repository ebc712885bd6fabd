"""Online backups of the embedded SQLite database and of the key file beside it.

The copy is made with SQLite's online backup API (`sqlite3.Connection.backup`) in a single
step: one read transaction, so the copy is the database as of one moment, while the
gateway goes on writing (under WAL a reader never blocks the writer). It copies pages as
they are, where `VACUUM INTO` would rebuild every table and index, which costs more and
holds the read transaction longer. The copy is written beside its destination (mode
0600: it holds key hashes and sealed secrets), checked (`PRAGMA quick_check`), switched
out of WAL mode so that it is one self-contained file, and only then renamed into place:
a backup that exists is a whole one.

The key file (`<database>.key`, webhooks/signing.py) is copied to `<backup>.key`: without
it, a restored database's webhook signing secrets cannot be opened. When the key is set
in BYTESPIKE_SECRET_KEY instead, there is no file: keep that value with the backups.

PostgreSQL has its own tools (pg_dump); this module refuses it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from bytespike.db.engine import SQLITE_BUSY_TIMEOUT_MS


class BackupRefused(Exception):
    """The backup cannot be made as asked; the message says why."""


@dataclass(frozen=True, slots=True)
class Backup:
    database: Path
    size_bytes: int
    key_file: Path | None  # None: no key file beside the database


def key_file_of(database: Path) -> Path:
    """Where the embedded default keeps its webhook-secret key (webhooks/signing.py)."""
    return Path(f"{database}.key")


def sqlite(database_url: str, destination: Path) -> Backup:
    """Back up the SQLite database at `database_url`, and its key file, to `destination`
    (replaced if it exists) and `<destination>.key`."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        raise BackupRefused(
            "on PostgreSQL, back up with pg_dump (pg_dump -Fc -f bytespike.dump DBNAME) and "
            "keep BYTESPIKE_SECRET_KEY with it"
        )
    source = Path(url.database or "")
    if not url.database or url.database == ":memory:" or not source.is_file():
        raise BackupRefused(f"no database file at {source}")
    _check_apart(source, destination)
    size = _copy_database(source, destination)
    key = key_file_of(source)
    if not key.is_file():
        return Backup(destination, size, None)
    copied = key_file_of(destination)
    _copy_private(key, copied)
    return Backup(destination, size, copied)


def _check_apart(source: Path, destination: Path) -> None:
    live = {source.resolve(), key_file_of(source).resolve()}
    live |= {Path(f"{source.resolve()}{suffix}") for suffix in ("-wal", "-shm", "-journal")}
    if destination.resolve() in live or key_file_of(destination).resolve() in live:
        raise BackupRefused(f"{destination} is the database's own file: choose another path")
    if destination.is_dir():
        raise BackupRefused(f"{destination} is a directory: give a file path")


def _copy_database(source: Path, destination: Path) -> int:
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    # Made empty first, readable by its owner only, whatever the umask: it holds key hashes.
    os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    timeout = SQLITE_BUSY_TIMEOUT_MS / 1000
    try:
        with (
            contextlib.closing(sqlite3.connect(source, timeout=timeout)) as live,
            contextlib.closing(sqlite3.connect(partial)) as copy,
        ):
            live.backup(copy)  # all pages in one step: one read transaction, one moment
            copy.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal to carry along
            (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
        if verdict != "ok":
            raise BackupRefused(f"the copy failed its integrity check: {verdict}")
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return destination.stat().st_size


def _copy_private(source: Path, destination: Path) -> None:
    """Copy a secret: the copy is readable by its owner only, from its first byte."""
    partial = destination.with_name(f".{destination.name}.partial")
    partial.unlink(missing_ok=True)
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out, source.open("rb") as key:
        shutil.copyfileobj(key, out)
    os.replace(partial, destination)
