-- Real-time intraday bars, written by `runner stream` from a NATS JetStream feed.
-- With TimescaleDB runner makes `intraday_bars` a hypertable (one-day chunks, compressed
-- by symbol) and keeps `intraday_hourly` / `intraday_daily` as continuous aggregates;
-- on plain PostgreSQL those two are tables that runner maintains from the change log.
-- Both are created by runner after migrations (src/stream/storage.rs), since which of
-- the two they are depends on the server.

-- One row per symbol and bar start. `seq` is the stream sequence of the message that
-- wrote the row: a redelivered older message never overwrites a newer correction.
CREATE TABLE intraday_bars (
    symbol text NOT NULL,
    ts     timestamptz NOT NULL,
    open   double precision,
    high   double precision,
    low    double precision,
    close  double precision NOT NULL,
    volume bigint,
    seq    bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (symbol, ts)
);

-- The last stream sequence each durable consumer has committed, written in the same
-- transaction as the bars (so it never runs ahead of or behind the data), and how many
-- messages it has applied in all.
CREATE TABLE stream_offsets (
    consumer   text NOT NULL,
    stream     text NOT NULL,
    last_seq   bigint NOT NULL,
    messages   bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, stream)
);

-- Messages that could not be stored (poison messages), acknowledged so they do not
-- block the stream, and also published to the feed's dead-letter subject.
CREATE TABLE stream_rejects (
    stream      text NOT NULL,
    seq         bigint NOT NULL,
    subject     text NOT NULL,
    reason      text NOT NULL,
    payload     text NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, seq)
);

-- Bars that were stored but break a data-quality rule (or were repaired).
CREATE TABLE intraday_quality (
    symbol text NOT NULL,
    ts     timestamptz NOT NULL,
    rule   text NOT NULL,
    detail text,
    PRIMARY KEY (symbol, ts, rule)
);
