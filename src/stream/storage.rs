//! Where streamed bars live and how their rollups stay current, on either backend.
//!
//! With TimescaleDB, `intraday_bars` is a hypertable with one-day chunks (a full market
//! of 1-minute bars is ~3 M rows a day, so a day's chunk and its index stay in memory
//! while being filled), compressed by symbol after a week; `intraday_hourly` and
//! `intraday_daily` are continuous aggregates with real-time aggregation on
//! (`materialized_only = false`), so a bar committed a moment ago is already in them,
//! and refresh policies materialize what has settled.
//!
//! On plain PostgreSQL the two rollups are tables with a `(symbol, bucket)` key that
//! runner maintains: each is a consumer of the change log (`db::changelog`), and
//! [`drain`] recomputes the logged buckets of the logged symbols in the transaction
//! that moves its watermark (the daily rollup from the hourly one). A stream process
//! drains on a connection of its own, beside the one writing batches, when a batch
//! that caught up with the feed has committed, and otherwise at most once a second
//! (or every `max_batch_delay`, if longer), so under a backlog one refresh covers
//! several batches.
//!
//! Both give the same columns and, bucket for bucket, the same rows: `symbol`,
//! `bucket` (UTC hour or day), `open` (of the first bar), `high`, `low`, `close` (of the
//! last bar), `volume` (sum, numeric) and `bars` (how many 1-minute bars).

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Text, Timestamptz};

use crate::db::changelog::{self, Span};
use crate::db::{db_error, Capabilities};
use crate::error::Result;

/// Chunk interval of the `intraday_bars` hypertable.
pub const CHUNK_INTERVAL: &str = "1 day";
/// Compress chunks of `intraday_bars` older than this.
pub const COMPRESS_AFTER: &str = "7 days";

/// One rollup of `intraday_bars`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rollup {
    pub relation: &'static str,
    /// `date_trunc` unit and `time_bucket` width.
    unit: &'static str,
    width: &'static str,
    /// Refresh policy of the continuous aggregate.
    start_offset: &'static str,
    end_offset: &'static str,
    schedule: &'static str,
}

pub const ROLLUPS: [Rollup; 2] = [
    Rollup {
        relation: "intraday_hourly",
        unit: "hour",
        width: "1 hour",
        start_offset: "3 days",
        end_offset: "1 hour",
        schedule: "15 minutes",
    },
    Rollup {
        relation: "intraday_daily",
        unit: "day",
        width: "1 day",
        start_offset: "7 days",
        end_offset: "1 day",
        schedule: "1 hour",
    },
];

impl Rollup {
    pub fn named(name: &str) -> Option<Rollup> {
        ROLLUPS.into_iter().find(|r| r.relation == name)
    }

    /// Its name in `change_log_consumers`.
    pub fn consumer(self) -> String {
        format!("rollup:{}", self.relation)
    }

    fn plain_bucket(self, column: &str) -> String {
        format!("date_trunc('{}', {column}, 'UTC')", self.unit)
    }
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str, what: &str) -> Result<i64> {
    let c: Count = diesel::sql_query(sql)
        .get_result(conn)
        .map_err(db_error(what.to_owned()))?;
    Ok(c.n)
}

/// Lay out `intraday_bars` and its rollups for this server; idempotent (every
/// database command runs it after migrations).
pub fn apply(conn: &mut PgConnection, caps: &Capabilities) -> Result<()> {
    if caps.has_timescale() {
        apply_timescale(conn)
    } else {
        apply_plain(conn)
    }
}

fn apply_plain(conn: &mut PgConnection) -> Result<()> {
    for r in ROLLUPS {
        conn.batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (symbol text NOT NULL, bucket timestamptz NOT NULL, \
             open double precision, high double precision, low double precision, \
             close double precision, volume numeric, bars bigint NOT NULL, \
             PRIMARY KEY (symbol, bucket))",
            r.relation
        ))
        .map_err(db_error(format!("creating {}", r.relation)))?;
    }
    Ok(())
}

fn apply_timescale(conn: &mut PgConnection) -> Result<()> {
    let hyper = count(
        conn,
        "SELECT count(*) AS n FROM timescaledb_information.hypertables \
         WHERE hypertable_schema = current_schema() AND hypertable_name = 'intraday_bars'",
        "reading hypertables",
    )?;
    if hyper == 0 {
        // The (symbol, ts) key is the only index per-symbol range reads need.
        conn.batch_execute(&format!(
            "SELECT create_hypertable('intraday_bars', by_range('ts', INTERVAL '{CHUNK_INTERVAL}'), \
             create_default_indexes => false, if_not_exists => true, migrate_data => true); \
             ALTER TABLE intraday_bars SET (timescaledb.compress, \
             timescaledb.compress_segmentby = 'symbol', timescaledb.compress_orderby = 'ts DESC'); \
             SELECT add_compression_policy('intraday_bars', compress_after => INTERVAL '{COMPRESS_AFTER}', \
             if_not_exists => true)"
        ))
        .map_err(db_error("making intraday_bars a hypertable"))?;
        tracing::info!(
            chunk_interval = CHUNK_INTERVAL,
            "intraday_bars is now a hypertable"
        );
    }
    for r in ROLLUPS {
        let exists = count(
            conn,
            &format!(
                "SELECT count(*) AS n FROM timescaledb_information.continuous_aggregates \
                 WHERE view_schema = current_schema() AND view_name = '{}'",
                r.relation
            ),
            "reading continuous aggregates",
        )?;
        if exists > 0 {
            continue;
        }
        conn.batch_execute(&format!(
            "CREATE MATERIALIZED VIEW {rel} \
             WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS \
             SELECT symbol, time_bucket(INTERVAL '{width}', ts) AS bucket, \
             first(open, ts) AS open, max(high) AS high, min(low) AS low, \
             last(close, ts) AS close, sum(volume) AS volume, count(*) AS bars \
             FROM intraday_bars GROUP BY symbol, time_bucket(INTERVAL '{width}', ts) \
             WITH NO DATA",
            rel = r.relation,
            width = r.width
        ))
        .map_err(db_error(format!(
            "creating the continuous aggregate {}",
            r.relation
        )))?;
        conn.batch_execute(&format!(
            "SELECT add_continuous_aggregate_policy('{rel}', start_offset => INTERVAL '{start}', \
             end_offset => INTERVAL '{end}', schedule_interval => INTERVAL '{every}', if_not_exists => true)",
            rel = r.relation,
            start = r.start_offset,
            end = r.end_offset,
            every = r.schedule
        ))
        .map_err(db_error(format!("adding the refresh policy of {}", r.relation)))?;
        // A statement of its own: several statements in one simple query form an
        // implicit transaction block, where a refresh cannot run.
        conn.batch_execute(&format!(
            "CALL refresh_continuous_aggregate('{rel}', NULL, NULL)",
            rel = r.relation
        ))
        .map_err(db_error(format!("refreshing {}", r.relation)))?;
        tracing::info!("created {} (continuous aggregate, real-time)", r.relation);
    }
    Ok(())
}

/// Bring `rollups` up to date with the change log. Nothing to do with TimescaleDB
/// (real-time aggregation shows new bars at once; the policies materialize them).
/// Returns the number of symbols refreshed.
///
/// Each rollup reads its pending spans in a short transaction of its own (the change
/// log's `SHARE` lock is held only while its end is read, not while rows are
/// recomputed, so other processes' batches keep committing), then recomputes them and
/// moves its watermark in a second one. Recomputing reads the current rows, so two
/// processes applying overlapping spans in either order leave the same result; an
/// advisory lock per rollup only keeps their `DELETE`/`INSERT`s from colliding.
///
/// `intraday_daily` is built from `intraday_hourly` when both are refreshed (a day is
/// at most 24 hourly rows instead of 390+ bars: the cost of a refresh no longer grows
/// with the session), and only up to the hourly rollup's watermark, the point to which
/// those rows are complete.
pub fn drain(conn: &mut PgConnection, caps: &Capabilities, rollups: &[Rollup]) -> Result<usize> {
    if caps.has_timescale() {
        return Ok(0);
    }
    let with_hourly = rollups.contains(&ROLLUPS[0]);
    let mut hourly_upto = None;
    let mut refreshed = 0;
    for rollup in ROLLUPS.into_iter().filter(|r| rollups.contains(r)) {
        let from_hourly = rollup.unit == "day" && with_hourly;
        let cap = if from_hourly { hourly_upto } else { None };
        let name = rollup.consumer();
        let pending =
            changelog::pending_through(conn, &name, changelog::Source::IntradayBars, cap).map_err(
                db_error(format!("reading the change log for {}", rollup.relation)),
            )?;
        if rollup.unit == "hour" {
            hourly_upto = Some(pending.upto);
        }
        if pending.is_empty() {
            continue;
        }
        conn.transaction(|conn| {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1)::bigint)")
                .bind::<Text, _>(&name)
                .execute(conn)?;
            let source = if from_hourly {
                Input::Hourly
            } else {
                Input::Bars
            };
            if pending.rebuild {
                rebuild(conn, rollup, source)?;
            } else {
                refresh_spans(conn, rollup, source, &pending.spans)?;
            }
            crate::crashpoint::reached("stream.rollup_refreshed");
            changelog::mark_applied(conn, &name, pending.upto)
        })
        .map_err(db_error(format!("refreshing {}", rollup.relation)))?;
        refreshed += pending.spans.len();
    }
    Ok(refreshed)
}

/// What a rollup is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Input {
    /// `intraday_bars`.
    Bars,
    /// `intraday_hourly` (for the daily rollup): the same values, since hours nest in
    /// UTC days — the first hour's open is the first bar's, `max`/`min`/`sum` compose.
    Hourly,
}

impl Input {
    fn relation(self) -> &'static str {
        match self {
            Input::Bars => "intraday_bars",
            Input::Hourly => "intraday_hourly",
        }
    }

    /// The time column of the source.
    fn time(self) -> &'static str {
        match self {
            Input::Bars => "ts",
            Input::Hourly => "bucket",
        }
    }

    /// Columns after `symbol, bucket`, from the source's rows.
    fn measures(self) -> &'static str {
        match self {
            Input::Bars => {
                "(array_agg(open ORDER BY ts))[1] AS open, max(high) AS high, min(low) AS low, \
                 (array_agg(close ORDER BY ts DESC))[1] AS close, sum(volume) AS volume, count(*) AS bars"
            }
            Input::Hourly => {
                "(array_agg(open ORDER BY bucket))[1] AS open, max(high) AS high, min(low) AS low, \
                 (array_agg(close ORDER BY bucket DESC))[1] AS close, sum(volume) AS volume, \
                 sum(bars)::bigint AS bars"
            }
        }
    }
}

fn rebuild(conn: &mut PgConnection, rollup: Rollup, source: Input) -> QueryResult<()> {
    conn.batch_execute(&format!(
        "TRUNCATE {rel}; INSERT INTO {rel} SELECT symbol, {bucket} AS bucket, {measures} \
         FROM {from} GROUP BY 1, 2",
        rel = rollup.relation,
        bucket = rollup.plain_bucket(source.time()),
        measures = source.measures(),
        from = source.relation()
    ))
}

fn refresh_spans(
    conn: &mut PgConnection,
    rollup: Rollup,
    source: Input,
    spans: &[Span],
) -> QueryResult<()> {
    let symbols: Vec<&str> = spans.iter().map(|s| s.symbol.as_str()).collect();
    let firsts: Vec<_> = spans.iter().map(|s| s.first).collect();
    let lasts: Vec<_> = spans.iter().map(|s| s.last).collect();
    let first = rollup.plain_bucket("s.first_at");
    let last = rollup.plain_bucket("s.last_at");
    let spans_sql =
        "unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS s(symbol, first_at, last_at)";
    diesel::sql_query(format!(
        "DELETE FROM {rel} r USING {spans_sql} \
         WHERE r.symbol = s.symbol AND r.bucket >= {first} AND r.bucket <= {last}",
        rel = rollup.relation
    ))
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Timestamptz>, _>(&firsts)
    .bind::<Array<Timestamptz>, _>(&lasts)
    .execute(conn)?;
    diesel::sql_query(format!(
        "INSERT INTO {rel} SELECT b.symbol, {bucket} AS bucket, {measures} \
         FROM {spans_sql} JOIN {from} b ON b.symbol = s.symbol \
         AND b.{time} >= {first} AND b.{time} < {last} + INTERVAL '{width}' GROUP BY 1, 2",
        rel = rollup.relation,
        bucket = rollup.plain_bucket(&format!("b.{}", source.time())),
        // Unqualified columns are `b`'s: the spans have only symbol, first_at, last_at.
        measures = source.measures(),
        from = source.relation(),
        time = source.time(),
        width = rollup.width
    ))
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Timestamptz>, _>(&firsts)
    .bind::<Array<Timestamptz>, _>(&lasts)
    .execute(conn)?;
    Ok(())
}
