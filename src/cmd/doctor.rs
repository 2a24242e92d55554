//! `runner doctor`: the server, TimescaleDB's status, and what runner will use.

use crate::cli::DbArgs;
use crate::db::{self, Timescale};
use crate::error::Result;

pub fn doctor(args: &DbArgs) -> Result<()> {
    let url = super::migrate::database_url(args)?;
    crate::outln!("database:     {}", db::url::redact(&url));
    db::pool::ensure_database(&url)?;
    let mut conn = db::pool::connect_one(&url)?;
    let caps = db::capabilities::detect(&mut conn, false)?;
    crate::outln!(
        "server:       PostgreSQL {} ({})",
        caps.server_version,
        caps.server_version_num
    );
    match &caps.timescale {
        Timescale::Installed { version, license } => {
            crate::outln!(
                "timescaledb:  installed, version {version}, license {}",
                license.as_deref().unwrap_or("unknown")
            );
            crate::outln!(
                "runner uses:  hypertable for daily_prices (chunks of {} days), time_bucket",
                db::storage::DEFAULT_CHUNK_DAYS
            );
        }
        Timescale::Available { version, .. } => {
            crate::outln!(
                "timescaledb:  available (version {version}), not created in this database"
            );
            crate::outln!("runner uses:  will create the extension on `run`/`migrate` (needs shared_preload_libraries = 'timescaledb'); until then plain PostgreSQL");
        }
        Timescale::Absent => {
            crate::outln!("timescaledb:  absent on this server");
            crate::outln!("runner uses:  plain PostgreSQL: ordinary tables and indexes, date_bin for buckets, aggregate tables refreshed by runner");
        }
    }
    crate::outln!(
        "pg_stat_statements: {}",
        if caps.pg_stat_statements { "yes" } else { "no" }
    );
    let applied = db::migrate::applied(&mut conn).unwrap_or_default();
    let pending = pending_count(&mut conn);
    crate::outln!(
        "migrations:   {} applied, {} pending",
        applied.len(),
        pending
    );
    Ok(())
}

fn pending_count(conn: &mut diesel::PgConnection) -> usize {
    use diesel_migrations::MigrationHarness;
    conn.pending_migrations(db::migrate::MIGRATIONS)
        .map_or(0, |p| p.len())
}
