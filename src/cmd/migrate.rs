//! `runner migrate`: create the database if needed and apply pending migrations.

use crate::cli::DbArgs;
use crate::db;
use crate::error::Result;

pub fn migrate(args: &DbArgs) -> Result<()> {
    let url = database_url(args)?;
    db::pool::ensure_database(&url)?;
    let pool = db::pool::connect(&url, 1)?;
    let mut conn = crate::db::pool::checkout(&pool)?;
    let caps = db::capabilities::detect(&mut conn, true)?;
    let applied = db::migrate::run_pending(&mut conn)?;
    db::storage::apply(&mut conn, &caps)?;
    crate::stream::storage::apply(&mut conn, &caps)?;
    if applied.is_empty() {
        crate::outln!("{}: schema up to date", db::url::redact(&url));
    } else {
        crate::outln!("{}: applied {}", db::url::redact(&url), applied.join(", "));
    }
    Ok(())
}

/// `--database-url`, else the job's, else `$DATABASE_URL`, else the default (the rule of
/// [`crate::job::database`]).
pub fn database_url(args: &DbArgs) -> Result<String> {
    if let Some(url) = &args.database_url {
        return Ok(url.clone());
    }
    if let Some(job) = &args.job {
        return Ok(super::load_job_file(job, &[])?.database_url);
    }
    Ok(crate::job::fallback_database_url())
}
