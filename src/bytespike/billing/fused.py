"""PostgreSQL's fast path for the two transactions of a metered call: each in one statement.

On PostgreSQL every statement is a network round trip, and a call's reserve and settle
are four statements each (`metering.reserve`/`settle` through `holds`, `ledger` and the
usage record). In the common case, an uncapped key and a cost within its hold, each is
fused here into one statement of data-modifying CTEs that makes exactly the same rows and
movements: the same hold, the same balanced ledger entry, the same usage record.

Each statement either does all of its work or none of it: when a condition fails
(key revoked, org paused, not enough money, the debit would page the owner, the hold
already ended, the cost beats the hold), it writes nothing and returns NULL, and the
general path runs instead, which says why or handles the case (db/batch.py's `Fused`).
SQLite needs none of this: its statements are function calls (db/direct.py).

A settlement finds its holds by primary key in a form that leaves the planner no other way.
A connection plans each statement once, often on the empty tables of a new database, and
keeps the plan (with autovacuum off, no ANALYZE ever tells the planner otherwise): a hold
looked up by id *and* `status = 'pending'` was planned as a scan of the pending holds'
partial index, so each settlement read every call in flight. So a hold is locked by id
alone and its status checked on the locked row, which FOR NO KEY UPDATE reads as last
committed (tests/integration/test_fused_plans.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bytespike.db.direct import Many, hot
from bytespike.usage import rollups

# The wallet moves only if the key is live and unchanged since the caller read it, neither
# its org nor the paying org is paused, `available` covers the hold, and the hold would not
# page the owner. A hold is a debit, so `alerts.after_movement` pages when it finds the alert
# armed and settled available (available + held, which a hold does not change) at or below
# the threshold: that page is the general path's. It returns the hold's id and its entry's
# (holds.Placed), which the call's usage record names.
RESERVE = hot(
    sa.text("""
WITH live AS (
    SELECT 1
    FROM api_keys LEFT JOIN orgs ON orgs.id = api_keys.org_id
    WHERE api_keys.id = :key AND api_keys.revoked_at IS NULL AND api_keys.version = :version
      AND NOT coalesce(orgs.paused, false)
), w AS (
    UPDATE wallets
    SET available_micros = available_micros - :amount, held_micros = held_micros + :amount
    WHERE id = :wallet AND available_micros >= :amount
      AND NOT (low_balance_armed AND available_micros + held_micros <= low_balance_threshold_micros)
      AND EXISTS (SELECT 1 FROM live)
      AND NOT EXISTS (SELECT 1 FROM orgs WHERE orgs.id = wallets.org_id AND orgs.paused)
    RETURNING id
), h AS (
    INSERT INTO holds (wallet_id, key_id, model, amount_micros, status, created_at, expires_at,
                       token)
    SELECT w.id, :key, :model, :amount, 'pending', :now, :expires, :token FROM w
    RETURNING id
), entry AS (
    INSERT INTO ledger_entries (wallet_id, kind, d_available, d_held, d_spent, d_topped_up,
                                d_adjusted, hold_id, key_id, model, created_at)
    SELECT w.id, 'hold', -CAST(:amount AS BIGINT), :amount, 0, 0, 0, h.id, :key, :model, :now
    FROM w, h
    RETURNING id
)
SELECT (SELECT ARRAY[h.id, entry.id] FROM h, entry)
""").bindparams(
        sa.bindparam("key", type_=sa.Integer),
        sa.bindparam("version", type_=sa.Integer),
        sa.bindparam("wallet", type_=sa.Integer),
        sa.bindparam("amount", type_=sa.BigInteger),
        sa.bindparam("model", type_=sa.String),
        sa.bindparam("now", type_=sa.DateTime(timezone=True)),
        sa.bindparam("expires", type_=sa.DateTime(timezone=True)),
        sa.bindparam("token", type_=sa.BigInteger),
    )
)

# A day's rollup row takes a settlement's counts, in SQL as usage/rollups.py's upsert does.
_ADD_TO_DAY = (
    "ON CONFLICT (day, wallet_id, key_id, model) DO UPDATE SET "
    + ", ".join(f"{name} = usage_daily.{name} + EXCLUDED.{name}" for name in rollups.SUMMED)
    + ", last_at = greatest(usage_daily.last_at, EXCLUDED.last_at)"
)

# Settles a pending hold that covers the cost: the hold closes, the wallet is charged the
# cost and gets the rest back, the ledger records it, and the usage record is written (and
# counted in its day's rollup row, usage/rollups.py's upsert: `day` is the UTC day of `now`).
# Not when the charge would page the owner: a charge is a debit, and `alerts.after_movement`
# pages when the alert is armed and settled available after it (available + held - cost)
# is at or below the threshold; that is the general path's. So the hold's row is locked,
# then the wallet's (the order of the general path's uncapped settlement and of the
# sweeper), and the condition is read from the locked wallet row, the latest committed one:
# the hold closes only once the wallet is sure to move, and the statement writes all of its
# rows or none (a condition re-checked by the wallet's UPDATE itself could fail there, after
# the hold had closed).
SETTLE = hot(
    sa.text(f"""
WITH held AS (
    SELECT wallet_id, status, amount_micros FROM holds WHERE id = :hold
    FOR NO KEY UPDATE
), quiet AS (
    SELECT wallets.id FROM wallets JOIN held ON wallets.id = held.wallet_id
    WHERE held.status = 'pending' AND held.amount_micros >= :cost
      AND NOT (low_balance_armed AND :cost > 0
               AND available_micros + held_micros - :cost <= low_balance_threshold_micros)
    FOR NO KEY UPDATE OF wallets
), h AS (
    UPDATE holds SET status = 'settled', closed_at = :now
    FROM quiet WHERE holds.id = :hold
    RETURNING holds.wallet_id, holds.amount_micros, holds.key_id, holds.model
), w AS (
    UPDATE wallets
    SET available_micros = available_micros + h.amount_micros - :cost,
        held_micros = held_micros - h.amount_micros,
        spent_micros = spent_micros + :cost
    FROM h WHERE wallets.id = h.wallet_id
    RETURNING wallets.id
), entry AS (
    INSERT INTO ledger_entries (wallet_id, kind, d_available, d_held, d_spent, d_topped_up,
                                d_adjusted, hold_id, key_id, model, created_at)
    SELECT w.id, 'settle', h.amount_micros - :cost, -h.amount_micros, :cost, 0, 0, :hold,
           h.key_id, h.model, :now
    FROM w, h
    RETURNING id
), record AS (
    INSERT INTO usage_records (wallet_id, key_id, hold_id, model, provider, input_tokens,
                               output_tokens, cached_tokens, cost_micros, status, http_status,
                               stream, latency_ms, created_at, request_id, attempts,
                               cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,
                               tool_prompt_tokens, web_search_requests, price_period,
                               price_tier, unit_prices, hold_entry_id, settle_entry_id)
    SELECT w.id, h.key_id, :hold, h.model, :provider, :input_tokens, :output_tokens,
           :cached_tokens, :cost, :status, :http_status, :stream, :latency_ms, :now,
           :request_id, :attempts, :cache_write_tokens, :cache_write_1h_tokens,
           :reasoning_tokens, :tool_prompt_tokens, :web_search_requests, :price_period,
           :price_tier, :unit_prices, :hold_entry_id, entry.id
    FROM w, h, entry
), daily AS (
    INSERT INTO usage_daily (day, wallet_id, key_id, model, requests, input_tokens,
                             output_tokens, cached_tokens, cost_micros, last_at)
    SELECT :day, w.id, h.key_id, h.model, 1, :input_tokens, :output_tokens, :cached_tokens,
           :cost, :now
    FROM w, h
    {_ADD_TO_DAY}
)
SELECT (SELECT w.id FROM w)
""").bindparams(  # noqa: S608 (_ADD_TO_DAY is a constant)
        sa.bindparam("hold", type_=sa.BigInteger),
        sa.bindparam("cost", type_=sa.BigInteger),
        sa.bindparam("provider", type_=sa.String),
        sa.bindparam("input_tokens", type_=sa.Integer),
        sa.bindparam("output_tokens", type_=sa.Integer),
        sa.bindparam("cached_tokens", type_=sa.Integer),
        sa.bindparam("status", type_=sa.String),
        sa.bindparam("http_status", type_=sa.Integer),
        sa.bindparam("stream", type_=sa.Boolean),
        sa.bindparam("latency_ms", type_=sa.Integer),
        sa.bindparam("request_id", type_=sa.String),
        sa.bindparam("attempts", type_=sa.Text),
        sa.bindparam("cache_write_tokens", type_=sa.Integer),
        sa.bindparam("cache_write_1h_tokens", type_=sa.Integer),
        sa.bindparam("reasoning_tokens", type_=sa.Integer),
        sa.bindparam("tool_prompt_tokens", type_=sa.Integer),
        sa.bindparam("web_search_requests", type_=sa.Integer),
        sa.bindparam("price_period", type_=sa.String),
        sa.bindparam("price_tier", type_=sa.Integer),
        sa.bindparam("unit_prices", type_=sa.Text),
        sa.bindparam("hold_entry_id", type_=sa.BigInteger),
        sa.bindparam("now", type_=sa.DateTime(timezone=True)),
        sa.bindparam("day", type_=sa.Date),
    )
)


# RESERVE for a run of calls (db/direct.py's Many): one statement, so its overhead and each
# wallet's update are paid once per run, not per call (what that saves by run length:
# db/batch.py's MANY_FROM, bench/pg_runs.py). Each call is held or not on RESERVE's own
# conditions: its key live and unchanged, its orgs not paused, the wallet's alert not due,
# and the holds of the run on one wallet, counted in order, within what it has available.
# The wallets are locked first, in id order (as a batch's operations run, so two replicas'
# batches cannot deadlock on them), and the conditions are read from the locked rows, the
# latest committed ones. A call not held gets NULL and takes the general path, which sees
# this statement's holds and says why.
# The holds' ids are drawn beforehand (an INSERT cannot return the call each row is for).
RESERVE_MANY = Many(
    """
WITH input AS (
    SELECT * FROM json_to_recordset($1::json)
        AS i(ord int8, key int4, version int4, wallet int4, amount int8, model text,
             now timestamptz, expires timestamptz, token int8)
    WHERE ord BETWEEN 1 AND 1000000
), live AS (
    SELECT input.* FROM input
    JOIN api_keys ON api_keys.id = input.key AND api_keys.revoked_at IS NULL
                 AND api_keys.version = input.version
    LEFT JOIN orgs ON orgs.id = api_keys.org_id
    WHERE NOT coalesce(orgs.paused, false)
), locked AS (
    SELECT wallets.id, wallets.available_micros FROM wallets
    WHERE wallets.id IN (SELECT wallet FROM live)
      AND NOT (low_balance_armed AND available_micros + held_micros <= low_balance_threshold_micros)
      AND NOT EXISTS (SELECT 1 FROM orgs WHERE orgs.id = wallets.org_id AND orgs.paused)
    ORDER BY wallets.id
    FOR NO KEY UPDATE OF wallets
), chosen AS (
    SELECT nextval('holds_id_seq') AS hold, fits.*
    FROM (SELECT live.*, locked.available_micros AS available,
                 sum(live.amount) OVER (PARTITION BY live.wallet ORDER BY live.ord) AS running
          FROM live JOIN locked ON locked.id = live.wallet) AS fits
    WHERE fits.running <= fits.available
), w AS (
    UPDATE wallets
    SET available_micros = available_micros - total.amount,
        held_micros = held_micros + total.amount
    FROM (SELECT wallet, CAST(sum(amount) AS BIGINT) AS amount FROM chosen GROUP BY wallet)
        AS total
    WHERE wallets.id = total.wallet
    RETURNING wallets.id
), held AS (
    SELECT chosen.* FROM chosen JOIN w ON w.id = chosen.wallet
), h AS (
    INSERT INTO holds (id, wallet_id, key_id, model, amount_micros, status, created_at,
                       expires_at, token)
    SELECT hold, wallet, key, model, amount, 'pending', now, expires, token
    FROM held ORDER BY ord
), entry AS (
    INSERT INTO ledger_entries (wallet_id, kind, d_available, d_held, d_spent, d_topped_up,
                                d_adjusted, hold_id, key_id, model, created_at)
    SELECT wallet, 'hold', -amount, amount, 0, 0, 0, hold, key, model, now
    FROM held ORDER BY ord
    RETURNING id, hold_id
)
SELECT CASE WHEN entry.id IS NOT NULL THEN ARRAY[held.hold, entry.id] END
FROM input LEFT JOIN held ON held.ord = input.ord LEFT JOIN entry ON entry.hold_id = held.hold
ORDER BY input.ord
""",
    ("key", "version", "wallet", "amount", "model", "now", "expires", "token"),
)


def reserve_params(
    *,
    key_id: int,
    wallet_id: int,
    model: str,
    amount: int,
    now: datetime,
    ttl: timedelta,
    version: int,
    token: int | None = None,
) -> dict[str, Any]:
    """RESERVE's parameters: a hold of `amount`, as `holds.place` would place it, for the
    key as of `version` (a key changed since is the general path's: it says so)."""
    return {
        "key": key_id,
        "version": version,
        "wallet": wallet_id,
        "amount": amount,
        "model": model,
        "now": now,
        "expires": now + ttl,
        "token": token,
    }


# The usage record's columns SETTLE takes as they are; the rest come from the hold.
_RECORDED = (
    "provider", "input_tokens", "output_tokens", "cached_tokens", "status", "http_status",
    "stream", "latency_ms", "request_id", "attempts", "cache_write_tokens",
    "cache_write_1h_tokens", "reasoning_tokens", "tool_prompt_tokens", "web_search_requests",
    "price_period", "price_tier", "unit_prices", "hold_entry_id",
)  # fmt: skip


# SETTLE for a run of calls (db/direct.py's Many), one statement as RESERVE_MANY is. Each
# call is settled or not on SETTLE's own conditions: its hold pending and covering the
# cost, and the charge not paging the owner, counted in order with the run's earlier
# charges to the same wallet (settled available falls by each). The holds are locked, then
# the wallets, each in id order (the general path's order, hold then wallet); a hold by a
# lookup of its own (LATERAL), as `id = ANY(...)` made on empty tables plans a whole-table
# scan (the module's docstring). A hold named twice is settled for its first call only: the
# other takes the general path. The calls settled are counted in their days' rollup rows,
# one upsert per row, in rollups.add_all's order (day, wallet, key, model), so two runs
# upserting the same rows lock them in one order.
SETTLE_MANY = Many(
    f"""
WITH input AS (
    SELECT * FROM json_to_recordset($1::json)
        AS i(ord int8, hold int8, cost int8, provider text, input_tokens int4,
             output_tokens int4, cached_tokens int4, status text, http_status int4,
             stream bool, latency_ms int4, request_id text, attempts text,
             cache_write_tokens int4, cache_write_1h_tokens int4, reasoning_tokens int4,
             tool_prompt_tokens int4, web_search_requests int4, price_period text,
             price_tier int4, unit_prices text, hold_entry_id int8, now timestamptz,
             day date)
    WHERE ord BETWEEN 1 AND 1000000
), held AS (
    SELECT found.* FROM (SELECT DISTINCT hold FROM input ORDER BY hold) AS named
    CROSS JOIN LATERAL (
        SELECT id, wallet_id, status, amount_micros, key_id, model FROM holds
        WHERE holds.id = named.hold
        FOR NO KEY UPDATE
    ) AS found
), once AS (
    SELECT DISTINCT ON (hold) * FROM input ORDER BY hold, ord
), covered AS (
    SELECT once.*, held.wallet_id AS wallet, held.amount_micros AS amount,
           held.key_id AS key, held.model AS model
    FROM once JOIN held ON held.id = once.hold
    WHERE held.status = 'pending' AND held.amount_micros >= once.cost
), locked AS (
    SELECT id, available_micros + held_micros AS settled, low_balance_armed AS armed,
           low_balance_threshold_micros AS threshold
    FROM wallets WHERE id IN (SELECT wallet FROM covered)
    ORDER BY id
    FOR NO KEY UPDATE
), chosen AS (
    SELECT charged.* FROM (
        SELECT covered.*, locked.settled, locked.armed, locked.threshold,
               sum(covered.cost) OVER (PARTITION BY covered.wallet ORDER BY covered.ord)
                   AS running
        FROM covered JOIN locked ON locked.id = covered.wallet
    ) AS charged
    WHERE NOT (charged.armed AND charged.cost > 0
               AND charged.settled - charged.running <= charged.threshold)
), h AS (
    UPDATE holds SET status = 'settled', closed_at = chosen.now
    FROM chosen WHERE holds.id = chosen.hold
    RETURNING holds.id
), w AS (
    UPDATE wallets
    SET available_micros = available_micros + total.amount - total.cost,
        held_micros = held_micros - total.amount,
        spent_micros = spent_micros + total.cost
    FROM (SELECT wallet, CAST(sum(amount) AS BIGINT) AS amount,
                 CAST(sum(cost) AS BIGINT) AS cost
          FROM chosen JOIN h ON h.id = chosen.hold GROUP BY wallet) AS total
    WHERE wallets.id = total.wallet
    RETURNING wallets.id
), settled AS (
    SELECT chosen.* FROM chosen JOIN h ON h.id = chosen.hold JOIN w ON w.id = chosen.wallet
), entry AS (
    INSERT INTO ledger_entries (wallet_id, kind, d_available, d_held, d_spent, d_topped_up,
                                d_adjusted, hold_id, key_id, model, created_at)
    SELECT wallet, 'settle', amount - cost, -amount, cost, 0, 0, hold, key, model, now
    FROM settled ORDER BY ord
    RETURNING id, hold_id
), record AS (
    INSERT INTO usage_records (wallet_id, key_id, hold_id, model, provider, input_tokens,
                               output_tokens, cached_tokens, cost_micros, status, http_status,
                               stream, latency_ms, created_at, request_id, attempts,
                               cache_write_tokens, cache_write_1h_tokens, reasoning_tokens,
                               tool_prompt_tokens, web_search_requests, price_period,
                               price_tier, unit_prices, hold_entry_id, settle_entry_id)
    SELECT wallet, key, hold, model, provider, input_tokens, output_tokens, cached_tokens,
           cost, status, http_status, stream, latency_ms, now, request_id, attempts,
           cache_write_tokens, cache_write_1h_tokens, reasoning_tokens, tool_prompt_tokens,
           web_search_requests, price_period, price_tier, unit_prices, hold_entry_id, entry.id
    FROM settled JOIN entry ON entry.hold_id = settled.hold ORDER BY ord
), daily AS (
    INSERT INTO usage_daily (day, wallet_id, key_id, model, requests, input_tokens,
                             output_tokens, cached_tokens, cost_micros, last_at)
    SELECT day, wallet, key, model, count(*), sum(input_tokens), sum(output_tokens),
           sum(cached_tokens), CAST(sum(cost) AS BIGINT), max(now)
    FROM settled GROUP BY day, wallet, key, model
    ORDER BY day, wallet, key, model
    {_ADD_TO_DAY}
)
SELECT settled.wallet FROM input LEFT JOIN settled ON settled.ord = input.ord
ORDER BY input.ord
""",  # noqa: S608 (_ADD_TO_DAY is a constant)
    ("hold", "cost", *_RECORDED, "now", "day"),
)


def settle_params(record: dict[str, Any]) -> dict[str, Any]:
    """SETTLE's parameters, from the usage record `metering.settle` would write (its hold,
    cost and time are the settlement's)."""
    params = {name: record[name] for name in _RECORDED}
    return {
        **params,
        "hold": record["hold_id"],
        "cost": record["cost_micros"],
        "now": record["created_at"],
        "day": rollups.day_of(record["created_at"]),
    }
