"""Idempotent metered calls: an `Idempotency-Key` header makes a retry return the first
answer, billed once (claims.py: the claim and its outcome; answers.py: an answer kept and
replayed; repo.py and tables.py: the rows; sweeper.py: expiry)."""
