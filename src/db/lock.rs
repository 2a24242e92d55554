//! One run at a time per database: a session-level advisory lock, held on a dedicated
//! connection for the whole run and released when that connection closes — also when
//! the process is killed, so a crashed run never leaves a stale lock behind.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::error::Result;

/// Arbitrary but fixed: "runner" in ASCII.
const RUN_LOCK_KEY: i64 = 0x7275_6e6e_6572;

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Bool)]
    acquired: bool,
}

/// Holds the run lock until dropped.
pub struct RunLock {
    _conn: PgConnection,
}

/// Take the run lock, waiting (with a log line saying why) while another run holds it.
pub fn acquire(database_url: &str) -> Result<RunLock> {
    let mut conn = super::pool::connect_one(database_url)?;
    let got: Acquired = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS acquired")
        .bind::<BigInt, _>(RUN_LOCK_KEY)
        .get_result(&mut conn)
        .map_err(super::db_error("taking the run lock"))?;
    if !got.acquired {
        tracing::warn!("another runner is working on this database; waiting for it to finish");
        diesel::sql_query("SELECT pg_advisory_lock($1)")
            .bind::<BigInt, _>(RUN_LOCK_KEY)
            .execute(&mut conn)
            .map_err(super::db_error("waiting for the run lock"))?;
        tracing::info!("the other run finished; continuing");
    }
    Ok(RunLock { _conn: conn })
}
