"""The one MetaData every domain's tables.py registers into, and the shared column types."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# 64-bit ids where rows grow with traffic; SQLite only autoincrements a plain INTEGER key.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Micros = sa.BigInteger

# The largest id each kind of id column holds: sa.Integer is 32-bit on PostgreSQL, BigId
# 64-bit (SQLite stores both in 64 bits). Ids are assigned from 1.
MAX_ID = 2**31 - 1
MAX_BIG_ID = 2**63 - 1
_MAX_DIGITS = len(str(MAX_BIG_ID))


def stored_id(text: str, *, big: bool = False) -> int | None:
    """`text` as an id its column (sa.Integer, or BigId when `big`) can hold, else None.

    None means no row can have it: not plain ASCII digits ("²" passes str.isdigit), or out
    of range. The database would refuse such a parameter (500), so callers check here."""
    if not (0 < len(text) <= _MAX_DIGITS and text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if 1 <= value <= (MAX_BIG_ID if big else MAX_ID) else None


def timestamp(name: str, *, nullable: bool = False) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)
