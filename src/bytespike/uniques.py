"""Random numbers that must be unique but need not be secret: request ids, hold tokens.

They come from a generator of their own, seeded from the system once (and again in a
forked child, which would otherwise repeat its parent's numbers), so each costs no system
call, unlike `secrets` or `uuid.uuid4`; and being private, it cannot be re-seeded by
whatever seeds the global `random` (a test framework does, to replay examples).
"""

from __future__ import annotations

import os
import random

_GENERATOR = random.Random()  # noqa: S311 - uniqueness, not secrecy (see above)
os.register_at_fork(after_in_child=_GENERATOR.seed)


def bits(count: int) -> int:
    """`count` random bits."""
    return _GENERATOR.getrandbits(count)
