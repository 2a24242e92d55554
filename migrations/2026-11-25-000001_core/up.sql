-- Core schema. `symbols` and `daily_prices` are runner's public interface: users'
-- templates query them, so their names and columns stay stable.

-- Every column of the Kaggle `symbols_valid_meta.csv`, typed.
CREATE TABLE symbols (
    symbol           text PRIMARY KEY,
    nasdaq_traded    boolean,
    security_name    text,
    listing_exchange text,
    market_category  text,
    etf              boolean,
    round_lot_size   integer,
    test_issue       boolean,
    financial_status text,
    cqs_symbol       text,
    nasdaq_symbol    text,
    next_shares      boolean
);

-- One row per symbol and trading day. The (symbol, day) key matches the order the
-- per-symbol files arrive in, so bulk loads append to the index instead of scattering.
-- When TimescaleDB is present runner turns this table into a hypertable on `day`.
CREATE TABLE daily_prices (
    symbol    text NOT NULL,
    day       date NOT NULL,
    open      double precision,
    high      double precision,
    low       double precision,
    close     double precision NOT NULL,
    adj_close double precision,
    volume    bigint,
    PRIMARY KEY (symbol, day)
);

-- The ingest manifest: what each symbol's rows were loaded from. A file is skipped when
-- path, size and mtime match; a file that only grew is recognised by the hash of its
-- first `size_bytes` bytes. Rows and manifest entry commit in one transaction.
CREATE TABLE ingest_files (
    symbol        text PRIMARY KEY,
    path          text NOT NULL,
    source        text NOT NULL,
    asset_class   text NOT NULL,
    size_bytes    bigint NOT NULL,
    mtime_ns      bigint NOT NULL,
    content_hash  text NOT NULL,
    rows_loaded   bigint NOT NULL,
    rows_rejected bigint NOT NULL,
    last_day      date,
    loaded_at     timestamptz NOT NULL DEFAULT now()
);

-- Rows that could not be loaded, with where they came from and why.
CREATE TABLE ingest_rejects (
    path   text NOT NULL,
    line   bigint NOT NULL,
    symbol text NOT NULL,
    reason text NOT NULL,
    raw    text NOT NULL,
    PRIMARY KEY (path, line)
);
CREATE INDEX ingest_rejects_symbol ON ingest_rejects (symbol);

-- Rows that were loaded but break a data-quality rule (or were repaired).
CREATE TABLE data_quality (
    symbol text NOT NULL,
    day    date NOT NULL,
    rule   text NOT NULL,
    detail text,
    PRIMARY KEY (symbol, day, rule)
);

-- Which asset class (folder: stocks/etfs) each loaded symbol came from.
CREATE VIEW instruments AS
    SELECT symbol, asset_class FROM ingest_files;

-- One row per `runner run`.
CREATE TABLE runs (
    id          bigserial PRIMARY KEY,
    job         text NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text NOT NULL DEFAULT 'running'
                CHECK (status IN ('running', 'succeeded', 'failed')),
    as_of       date,
    vars        jsonb NOT NULL DEFAULT '{}',
    summary     jsonb,
    error       text
);
