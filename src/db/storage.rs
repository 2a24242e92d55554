//! Physical layout of the prices table: a hypertable when TimescaleDB is installed,
//! a plain table (its primary key is the only index it needs) otherwise. Applied after
//! migrations, idempotently, so both backends share one set of migrations.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::Capabilities;
use crate::error::Result;

/// Chunk interval for `daily_prices` (TimescaleDB would store `1 year` as 360 days,
/// so say what is meant). Daily bars for ~8,000 symbols are ~2 M rows
/// (~250 MB) a year: one-year chunks keep the chunk count near 60 for the Kaggle
/// history, and measured 1.3× faster to load and 2× better compressed than one-month
/// chunks (shared/BASELINES.md).
pub const CHUNK_INTERVAL: &str = "365 days";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Make `daily_prices` a hypertable when TimescaleDB is there. Returns true when it
/// changed something.
pub fn apply(conn: &mut PgConnection, caps: &Capabilities) -> Result<bool> {
    if !caps.has_timescale() {
        return Ok(false);
    }
    let existing: Count = diesel::sql_query(
        "SELECT count(*) AS n FROM timescaledb_information.hypertables \
         WHERE hypertable_schema = current_schema() AND hypertable_name = 'daily_prices'",
    )
    .get_result(conn)
    .map_err(super::db_error("reading hypertables"))?;
    if existing.n > 0 {
        return Ok(false);
    }
    // No default `day DESC` index: the (symbol, day) key serves per-symbol range
    // queries, and the extra index cost a third of the load time in measurements.
    diesel::sql_query(
        "SELECT create_hypertable('daily_prices', by_range('day', $1::interval), \
         create_default_indexes => false, if_not_exists => true, migrate_data => true)",
    )
    .bind::<Text, _>(CHUNK_INTERVAL)
    .execute(conn)
    .map_err(super::db_error("creating the daily_prices hypertable"))?;
    tracing::info!(chunk_interval = CHUNK_INTERVAL, "daily_prices is now a hypertable");
    Ok(true)
}
