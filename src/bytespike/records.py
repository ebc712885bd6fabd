"""`record`: how the metered path declares the values it makes on every call.

A class declared `@record` is a frozen dataclass to the type checker (mypy refuses any
assignment to its fields) and a plain slotted dataclass at run time, hashed by its fields as
a frozen one is. What differs is the cost of making one: a frozen dataclass's `__init__` sets
each field through `object.__setattr__`, about 580 machine instructions a field; a metered
call made 16 such values, 99 fields, 2 % of its instructions (callgrind, bench/README.md).
Values made once (the catalog, settings) stay `@dataclass(frozen=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar, dataclass_transform

T = TypeVar("T")


@dataclass_transform(frozen_default=True, field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    return dataclass(slots=True, unsafe_hash=True)(cls)
