//! The `runs` table: one row per `runner run`, inserted when it starts and completed
//! when it ends, so a run that died shows as started and never finished.

use chrono::{NaiveDate, Utc};
use diesel::prelude::*;

use super::schema::runs;
use crate::error::Result;

/// How a run ended.
pub enum Finished {
    Succeeded {
        /// The run's summary (what `summary.json` holds), when it serializes.
        summary: Option<serde_json::Value>,
        as_of: Option<NaiveDate>,
    },
    Failed {
        error: String,
    },
}

/// Record that `job` started with `vars`; returns the run's id.
pub fn start(
    conn: &mut PgConnection,
    job: &str,
    vars: serde_json::Value,
    as_of: Option<NaiveDate>,
) -> Result<i64> {
    diesel::insert_into(runs::table)
        .values((
            runs::job.eq(job),
            runs::vars.eq(vars),
            runs::as_of.eq(as_of),
        ))
        .returning(runs::id)
        .get_result(conn)
        .map_err(super::db_error("recording the run"))
}

/// Record how run `id` ended.
pub fn finish(conn: &mut PgConnection, id: i64, finished: Finished) -> Result<()> {
    let (status, summary, error, as_of) = match finished {
        Finished::Succeeded { summary, as_of } => ("succeeded", summary, None, as_of),
        Finished::Failed { error } => ("failed", None, Some(error), None),
    };
    diesel::update(runs::table.find(id))
        .set((
            runs::finished_at.eq(Some(Utc::now())),
            runs::status.eq(status),
            runs::summary.eq(summary),
            runs::error.eq(error),
            runs::as_of.eq(as_of),
        ))
        .execute(conn)
        .map_err(super::db_error("recording the run's end"))?;
    Ok(())
}
