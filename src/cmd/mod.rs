//! One file per subcommand: short glue between the CLI and the stages.

pub mod check;
pub mod daemon;
pub mod doctor;
pub mod explain;
pub mod generate;
pub mod history;
pub mod maintain;
pub mod migrate;
pub mod render;
pub mod replay;
pub mod run;
pub mod schedule;
pub mod stream;

use chrono::NaiveDate;
use diesel::PgConnection;

use crate::db::{self, Capabilities, Pool};
use crate::error::Result;
use crate::job::Job;

/// Load the job a command was given and make its connection settings (its
/// `connect_timeout`) the process's.
///
/// # Errors
/// As [`crate::job::load`].
pub fn load_job(args: &crate::cli::JobArgs) -> Result<Job> {
    load_job_file(&args.job, &args.vars)
}

/// [`load_job`] for a path and `--var` overrides.
///
/// # Errors
/// As [`crate::job::load`].
pub fn load_job_file(path: &std::path::Path, vars: &[String]) -> Result<Job> {
    let job = crate::job::load(path, vars)?;
    db::timeouts::set_job_connect_timeout(job.connect_timeout);
    for warning in crate::warnings::unknown_overrides(&job, vars) {
        crate::errln!("{warning}");
    }
    Ok(job)
}

/// Create the database when missing, then [`prepare_existing_database`]: what every
/// database command starts with.
pub fn prepare_database(database_url: &str, pool_size: u32) -> Result<(Pool, Capabilities)> {
    db::pool::ensure_database(database_url)?;
    prepare_existing_database(database_url, pool_size)
}

/// Connect to a database that exists, apply pending migrations, detect capabilities
/// (creating TimescaleDB when the server offers it) and lay out storage.
pub fn prepare_existing_database(
    database_url: &str,
    pool_size: u32,
) -> Result<(Pool, Capabilities)> {
    let pool = db::pool::connect(database_url, pool_size)?;
    let mut conn = crate::db::pool::checkout(&pool)?;
    let caps = db::capabilities::detect(&mut conn, true)?;
    let applied = db::migrate::run_pending(&mut conn)?;
    if !applied.is_empty() {
        tracing::info!(migrations = ?applied, "applied migrations");
    }
    db::storage::apply(&mut conn, &caps)?;
    crate::stream::storage::apply(&mut conn, &caps)?;
    tracing::info!(database = %db::url::redact(database_url), backend = %caps.describe(), "database ready");
    Ok((pool, caps))
}

/// The day the analyses look at: the job's `as_of` (with a warning when it lies outside
/// the loaded days), else the latest day `[report] as_of_share` of the symbols reached.
/// Returns the warning too, for the report.
pub fn as_of(job: &Job, conn: &mut PgConnection) -> Result<(Option<NaiveDate>, Option<String>)> {
    use crate::ingest::coverage::Coverage;
    match job.as_of {
        Some(day) => {
            let warning = Coverage::read(conn)?.as_of_warning(day);
            if let Some(w) = &warning {
                tracing::warn!("{w}");
            }
            Ok((Some(day), warning))
        }
        None => Ok((
            Coverage::read_last_days(conn)?.default_as_of(job.report.as_of_share),
            None,
        )),
    }
}

/// The error of a run or `explain` that has analyses to run but no as-of day: no `as_of`
/// and no prices (instead of the SQL error a NULL `as_of` gives).
pub fn no_prices() -> crate::error::Error {
    crate::error::Error::Runtime {
        context: "choosing the as-of day".to_owned(),
        source: Box::new(crate::ingest::coverage::NoPrices),
    }
}
