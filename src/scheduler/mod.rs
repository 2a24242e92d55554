//! Running jobs on their `schedule`: `crontab` writes lines for cron, `daemon` runs the
//! schedules in-process (containers), on a `clock` that tests can start anywhere and
//! speed up. Both start jobs as `runner run JOB --no-wait`, so a run never queues
//! behind another one holding the database (exit 75; the next scheduled time catches up).

pub mod clock;
pub mod crontab;
pub mod daemon;

use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, Diagnostics, Error, Result};
use crate::job::{self, Job};

/// Why the scheduler cannot start: a bad test clock, or no path to its own binary.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    #[error("RUNNER_CLOCK_START `{value}` is not an RFC 3339 time: {source}")]
    ClockStart {
        value: String,
        #[source]
        source: chrono::ParseError,
    },
    #[error("RUNNER_CLOCK_SPEED `{value}` is not a positive number")]
    ClockSpeed { value: String },
    #[error("cannot find the runner binary: {0}")]
    Binary(#[source] std::io::Error),
}

/// The job files named: files as given, folders as their `*.toml` files, sorted.
///
/// # Errors
/// A config error for a path that is neither a job file nor a folder.
pub fn job_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| {
                Error::config(Diagnostic::new(format!(
                    "cannot read folder `{}`: {e}",
                    path.display()
                )))
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(Error::config(Diagnostic::new(format!(
                "`{}` is neither a job file nor a folder of job files",
                path.display()
            ))));
        }
    }
    Ok(files)
}

/// Every job of `paths` (all problems of all files at once), loaded by absolute path.
/// Jobs without a schedule are kept (the crontab names them); none scheduled at all is a
/// config error.
///
/// # Errors
/// Config errors of the job files; none of them scheduled.
pub fn scheduled_jobs(paths: &[PathBuf]) -> Result<Vec<Job>> {
    let mut problems = Diagnostics::default();
    let mut jobs = Vec::new();
    for file in job_files(paths)? {
        let absolute = std::path::absolute(&file).unwrap_or(file);
        match job::load(&absolute, &[]) {
            Ok(job) => jobs.push(job),
            Err(Error::Config(d)) => problems.0.extend(d.0),
            Err(e) => return Err(e),
        }
    }
    std::mem::take(&mut problems).into_result()?;
    let mut names = std::collections::HashMap::new();
    for job in &jobs {
        if let Some(other) = names.insert(job.name.clone(), job.path.clone()) {
            problems.push(Diagnostic::new(format!(
                "job name `{}` is used by both `{}` and `{}`: the runs table could not tell their runs apart",
                job.name,
                other.display(),
                job.path.display()
            )));
        }
    }
    problems.into_result()?;
    if jobs.iter().all(|job| job.schedule.is_none()) {
        return Err(Error::config(
            Diagnostic::new(format!("no job in {} has a `schedule`", list(paths)))
                .help("add `schedule = \"30 6 * * 1-5\"` (and `timezone = \"America/New_York\"`) to a job file"),
        ));
    }
    Ok(jobs)
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The runner binary to start jobs with: this one.
///
/// # Errors
/// When the OS cannot tell.
pub fn runner_binary() -> Result<PathBuf> {
    std::env::current_exe().map_err(|e| SchedulerError::Binary(e).into())
}

/// `path` for a POSIX shell: as is when it is plain, else single-quoted.
pub fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@=,".contains(c))
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}
