-- The durable change log. Every transaction that changes a base table (an ingest batch
-- writing `daily_prices`, a stream batch writing intraday bars) records here, in that
-- same transaction, what it changed: per symbol, the first and last instant written or
-- deleted. Everything derived from the base tables (aggregates, rollups, incremental
-- materializations) is brought up to date from this log rather than from what one run
-- remembers, so a run killed between the load and the refresh leaves work the next run
-- still finds.
CREATE TABLE change_log (
    id        bigserial PRIMARY KEY,
    source    text NOT NULL,
    symbol    text NOT NULL,
    -- Daily rows are logged as their day at 00:00 UTC.
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL,
    logged_at timestamptz NOT NULL DEFAULT now(),
    CHECK (first_at <= last_at)
);
CREATE INDEX change_log_source ON change_log (source, id);

-- One row per consumer of the log: the last entry it has applied, and whether it must
-- rebuild from the base table instead (a new consumer, or one whose output was lost). An
-- entry is deleted once every consumer of its source has applied it.
CREATE TABLE change_log_consumers (
    consumer   text PRIMARY KEY,
    source     text NOT NULL,
    applied_id bigint NOT NULL,
    rebuild    boolean NOT NULL DEFAULT true,
    updated_at timestamptz NOT NULL DEFAULT now()
);
