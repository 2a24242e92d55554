//! `maintain`: keep the database fast and say how it is doing.
//!
//! The work: enforce retention and compress eligible chunks (TimescaleDB; runner does it
//! itself because background jobs may not run, and the policies stay in place for
//! servers where they do), then `VACUUM (ANALYZE)` every runner table that changed since
//! it was last analysed or has dead rows. The insight: a Markdown report (`report`) of
//! table, chunk and index sizes, compression before/after, never-scanned indexes, dead
//! tuples, the cache hit ratio and the slowest statements, from the statistics
//! gathered in `stats`.

pub mod report;
pub mod stats;

use std::time::Instant;

use chrono::Utc;
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::db::storage::StorageSettings;
use crate::db::{db_error, quote, Capabilities};
use crate::error::Result;

/// What one maintenance did, and the numbers before and after.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Maintenance {
    /// One line per thing done, with its duration.
    pub actions: Vec<String>,
    pub before: stats::Snapshot,
    pub after: stats::Snapshot,
}

/// Tables an ingest writes to: what [`run`] vacuums after an ingest even before the
/// statistics show the change (other sessions report their counts up to a second
/// late, and the ingest's connections may still be open).
pub const INGEST_TABLES: [&str; 7] = [
    "daily_prices",
    "ingest_files",
    "ingest_rejects",
    "data_quality",
    "symbols",
    "prices_weekly",
    "prices_monthly",
];

/// Run the maintenance for `settings` on `conn` (outside any transaction). Tables named
/// in `touched` are vacuumed whatever their statistics say.
pub fn run(
    conn: &mut PgConnection,
    caps: &Capabilities,
    settings: &StorageSettings,
    touched: &[&str],
) -> Result<Maintenance> {
    let before = stats::snapshot(conn, caps)?;
    let mut actions = Vec::new();
    if caps.has_timescale() {
        if let Some(after) = settings.retention {
            let started = Instant::now();
            let dropped = count(conn, "SELECT count(*)::bigint AS n FROM drop_chunks('daily_prices', older_than => $1::interval)", &after.to_string())
                .map_err(db_error("dropping chunks past retention"))?;
            actions.push(format!(
                "retention: dropped {dropped} chunk(s) older than {after} in {:.2}s",
                started.elapsed().as_secs_f64()
            ));
        }
        if let Some(after) = settings.compress_after {
            let started = Instant::now();
            // compress_chunk also recompresses a chunk that took inserts or updates
            // after it was compressed (TimescaleDB marks it partially compressed).
            let eligible = count(
                conn,
                "SELECT count(compress_chunk(c, if_not_compressed => true))::bigint AS n \
                 FROM show_chunks('daily_prices', older_than => $1::interval) c",
                &after.to_string(),
            )
            .map_err(db_error("compressing chunks"))?;
            actions.push(format!(
                "compression: compress_chunk on {eligible} chunk(s) older than {after} in {:.2}s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    for table in stats::tables_needing_vacuum(&before, touched) {
        let started = Instant::now();
        conn.batch_execute(&format!(
            "VACUUM (ANALYZE) {}",
            quote::qualified_ident(&table)
        ))
        .map_err(db_error(format!("vacuuming {table}")))?;
        actions.push(format!(
            "VACUUM (ANALYZE) {table} in {:.2}s",
            started.elapsed().as_secs_f64()
        ));
    }
    if actions.is_empty() {
        actions.push("nothing to do".to_owned());
    }
    for a in &actions {
        tracing::info!("maintain: {a}");
    }
    let after = stats::snapshot(conn, caps)?;
    Ok(Maintenance {
        actions,
        before,
        after,
    })
}

/// The Markdown report of `m`, headed with the database and backend.
pub fn markdown(m: &Maintenance, database: &str, caps: &Capabilities) -> String {
    report::render(m, database, &caps.describe(), Utc::now())
}

fn count(conn: &mut PgConnection, sql: &str, interval: &str) -> QueryResult<i64> {
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query(sql)
        .bind::<Text, _>(interval)
        .get_result::<N>(conn)
        .map(|r| r.n)
}
