//! `runner maintain JOB`: make storage match the job's `[storage]`, do the maintenance
//! (see [`crate::maintain`]) and write its Markdown report, also printed on stdout.

use crate::cli::MaintainArgs;
use crate::db;
use crate::error::{Context, Result};

pub fn maintain(args: &MaintainArgs) -> Result<()> {
    let job = super::load_job(&args.job)?;
    let (pool, caps) = super::prepare_database(&job.database_url, 2)?;
    let _lock = db::lock::acquire(&job.database_url, db::lock::Wait::Forever)?;
    let mut conn = crate::db::pool::checkout(&pool)?;
    let applied = db::storage::apply_settings(&mut conn, &caps, &job.storage)?;
    let mut done = crate::maintain::run(&mut conn, &caps, &job.storage, &[])?;
    done.actions
        .splice(0..0, applied.into_iter().map(|a| format!("storage: {a}")));
    let markdown = crate::maintain::markdown(&done, &db::url::redact(&job.database_url), &caps);
    let path = args
        .out
        .clone()
        .unwrap_or_else(|| job.report.dir.join("maintenance.md"));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&path, &markdown).with_context(|| format!("writing {}", path.display()))?;
    crate::out!("{markdown}");
    crate::errln!("maintenance report: {}", path.display());
    Ok(())
}
