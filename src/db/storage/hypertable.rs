//! The TimescaleDB side of `daily_prices`: chunk interval, compression settings and the
//! compression and retention policies, read back from `timescaledb_information` so
//! applying the same settings twice changes nothing.
//!
//! The API used is the one TimescaleDB 2.13 through 2.28 all document:
//! `set_chunk_time_interval`, `ALTER TABLE … SET (timescaledb.compress, …)`,
//! `add_compression_policy` / `remove_compression_policy` and
//! `add_retention_policy` / `remove_retention_policy`.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::settings::PgInterval;
use crate::db::db_error;
use crate::error::Result;

/// Segment by symbol (every query filters or groups by it, and one symbol's bars
/// compress well together), newest first within a segment (recent data is read most).
pub const COMPRESS_SEGMENTBY: &str = "symbol";
pub const COMPRESS_ORDERBY: &str = "day DESC";

/// What the server has now.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct State {
    #[diesel(sql_type = Nullable<BigInt>)]
    pub chunk_days: Option<i64>,
    #[diesel(sql_type = Bool)]
    pub compression_enabled: bool,
    /// `compress_after` of the compression policy, as the server prints it.
    #[diesel(sql_type = Nullable<Text>)]
    pub compress_after: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub compression_job: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    pub drop_after: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub retention_job: Option<i64>,
}

const STATE: &str = "SELECT \
    (SELECT (extract(epoch FROM d.time_interval) / 86400)::bigint FROM timescaledb_information.dimensions d \
      WHERE d.hypertable_schema = current_schema() AND d.hypertable_name = 'daily_prices' AND d.column_name = 'day') AS chunk_days, \
    coalesce((SELECT h.compression_enabled FROM timescaledb_information.hypertables h \
      WHERE h.hypertable_schema = current_schema() AND h.hypertable_name = 'daily_prices'), false) AS compression_enabled, \
    (SELECT j.config ->> 'compress_after' FROM timescaledb_information.jobs j \
      WHERE j.hypertable_schema = current_schema() AND j.hypertable_name = 'daily_prices' AND j.proc_name = 'policy_compression' LIMIT 1) AS compress_after, \
    (SELECT j.job_id::bigint FROM timescaledb_information.jobs j \
      WHERE j.hypertable_schema = current_schema() AND j.hypertable_name = 'daily_prices' AND j.proc_name = 'policy_compression' LIMIT 1) AS compression_job, \
    (SELECT j.config ->> 'drop_after' FROM timescaledb_information.jobs j \
      WHERE j.hypertable_schema = current_schema() AND j.hypertable_name = 'daily_prices' AND j.proc_name = 'policy_retention' LIMIT 1) AS drop_after, \
    (SELECT j.job_id::bigint FROM timescaledb_information.jobs j \
      WHERE j.hypertable_schema = current_schema() AND j.hypertable_name = 'daily_prices' AND j.proc_name = 'policy_retention' LIMIT 1) AS retention_job";

pub fn state(conn: &mut PgConnection) -> Result<State> {
    diesel::sql_query(STATE)
        .get_result(conn)
        .map_err(db_error("reading the daily_prices hypertable settings"))
}

/// True when the server's interval text means the same as `wanted` (compared by
/// PostgreSQL, which prints `1 year` back as `1 year` but `3 months` as `3 mons`).
pub fn same_interval(conn: &mut PgConnection, server: &str, wanted: PgInterval) -> Result<bool> {
    #[derive(QueryableByName)]
    struct Same {
        #[diesel(sql_type = Bool)]
        same: bool,
    }
    let same: Same = diesel::sql_query("SELECT $1::interval = $2::interval AS same")
        .bind::<Text, _>(server)
        .bind::<Text, _>(wanted.to_string())
        .get_result(conn)
        .map_err(db_error("comparing intervals"))?;
    Ok(same.same)
}

pub fn set_chunk_interval(conn: &mut PgConnection, days: u32) -> Result<()> {
    diesel::sql_query(
        "SELECT set_chunk_time_interval('daily_prices', make_interval(days => $1::int))",
    )
    .bind::<diesel::sql_types::Integer, _>(i32::try_from(days).unwrap_or(i32::MAX))
    .execute(conn)
    .map_err(db_error("setting the chunk interval of daily_prices"))?;
    Ok(())
}

pub fn enable_compression(conn: &mut PgConnection) -> Result<()> {
    conn.batch_execute(&format!(
        "ALTER TABLE daily_prices SET (timescaledb.compress, \
         timescaledb.compress_segmentby = '{COMPRESS_SEGMENTBY}', timescaledb.compress_orderby = '{COMPRESS_ORDERBY}')"
    ))
    .map_err(db_error("enabling compression on daily_prices"))
}

/// Decompress every chunk, then switch compression off. Returns the chunks decompressed.
pub fn disable_compression(conn: &mut PgConnection) -> Result<i64> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let n: Count = diesel::sql_query(
        "SELECT count(decompress_chunk(c, if_compressed => true))::bigint AS n FROM show_chunks('daily_prices') c",
    )
    .get_result(conn)
    .map_err(db_error("decompressing daily_prices"))?;
    conn.batch_execute("ALTER TABLE daily_prices SET (timescaledb.compress = false)")
        .map_err(db_error("disabling compression on daily_prices"))?;
    Ok(n.n)
}

pub fn add_compression_policy(conn: &mut PgConnection, after: PgInterval) -> Result<()> {
    diesel::sql_query(
        "SELECT add_compression_policy('daily_prices', compress_after => $1::interval)",
    )
    .bind::<Text, _>(after.to_string())
    .execute(conn)
    .map_err(db_error("adding the compression policy"))?;
    Ok(())
}

pub fn remove_compression_policy(conn: &mut PgConnection) -> Result<()> {
    diesel::sql_query("SELECT remove_compression_policy('daily_prices', if_exists => true)")
        .execute(conn)
        .map_err(db_error("removing the compression policy"))?;
    Ok(())
}

pub fn add_retention_policy(conn: &mut PgConnection, after: PgInterval) -> Result<()> {
    diesel::sql_query("SELECT add_retention_policy('daily_prices', drop_after => $1::interval)")
        .bind::<Text, _>(after.to_string())
        .execute(conn)
        .map_err(db_error("adding the retention policy"))?;
    Ok(())
}

pub fn remove_retention_policy(conn: &mut PgConnection) -> Result<()> {
    diesel::sql_query("SELECT remove_retention_policy('daily_prices', if_exists => true)")
        .execute(conn)
        .map_err(db_error("removing the retention policy"))?;
    Ok(())
}
