"""How operators name users and orgs: a plain id or name, or `id:N` / `name:TEXT` to say
which. A plain reference that is one row's id and another row's name is refused, naming
both: never a guess (a guess once paused the wrong org)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bytespike.db.metadata import stored_id
from bytespike.errors import InvalidRequest

ID_PREFIX, NAME_PREFIX = "id:", "name:"

R = TypeVar("R", bound=Any)


async def resolve(
    ref: str | int,
    *,
    kind: str,
    by_id: Callable[[int], Awaitable[R | None]],
    by_name: Callable[[str], Awaitable[R | None]],
    name_of: Callable[[R], str],
    ambiguous: type[InvalidRequest],
) -> R | None:
    """The `kind` (user, org) `ref` names, or None."""
    if isinstance(ref, int):
        return await by_id(ref)
    if ref.startswith(ID_PREFIX):
        digits = ref.removeprefix(ID_PREFIX)
        row_id = stored_id(digits) if digits.isascii() and digits.isdigit() else None
        if row_id is None and not (digits.isascii() and digits.isdigit()):
            raise InvalidRequest(f"{ref!r}: {a(kind)} id is a whole number, as in {ID_PREFIX}1")
        return None if row_id is None else await by_id(row_id)
    if ref.startswith(NAME_PREFIX):
        return await by_name(ref.removeprefix(NAME_PREFIX))
    named = await by_name(ref)
    row_id = stored_id(ref)
    numbered = None if row_id is None else await by_id(row_id)
    if named is not None and numbered is not None and named.id != numbered.id:
        raise ambiguous(
            f"{kind} {ref!r} could mean {kind} id {numbered.id} (named {name_of(numbered)!r}) "
            f"or {kind} id {named.id} (named {ref!r}): say {ID_PREFIX}{numbered.id} or "
            f"{NAME_PREFIX}{ref}"
        )
    return named or numbered


def a(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
