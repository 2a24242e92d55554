//! `runner schedule`: crontab lines that are safe to install as they are.
//!
//! - `--no-wait`: a run never queues behind another that holds the database; it exits
//!   75 at once and the next scheduled time catches up.
//! - All output is appended to the job's log file, so cron mails nothing on success …
//! - … and `|| echo …` prints one line on any other exit code, which cron mails to
//!   `MAILTO` (1 failed, 2 job-file problem, 3 data tests failed, 75 database busy).
//! - `CRON_TZ=` before each line: the expression means wall-clock time in the job's
//!   zone (cronie and others honour it; the header says so for those that do not).
//! - Absolute paths of the binary, the job and the log: cron's working folder and PATH
//!   are not the user's.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::shell_quote;
use crate::job::Job;

/// The whole crontab text for `jobs` (those without a schedule appear as a comment).
/// `sources` are the paths as given, for the header; `log_dir` overrides each job's
/// `<project root>/logs`.
pub fn render(jobs: &[Job], sources: &[PathBuf], runner: &Path, log_dir: Option<&Path>) -> String {
    let mut out = String::new();
    let from: Vec<String> = sources.iter().map(|p| p.display().to_string()).collect();
    let _ = writeln!(out, "# runner schedule {}", from.join(" "));
    out.push_str(concat!(
        "# Install with `crontab -e` (paste) or `runner schedule ... | crontab -` (replaces the table).\n",
        "# cron's environment is bare: set DATABASE_URL and MAILTO above these lines if the jobs need them.\n",
        "# --no-wait: a run never queues behind one holding the database (exit 75, the next time catches up).\n",
        "# Output goes to the log; any exit code but 0 prints one line, which cron mails to MAILTO.\n",
        "# CRON_TZ is honoured by cronie and others; a cron that ignores it reads the times in the system zone.\n",
    ));
    let mut dirs: Vec<PathBuf> = jobs
        .iter()
        .filter(|j| j.schedule.is_some())
        .map(|j| log_folder(j, log_dir))
        .collect();
    dirs.sort();
    dirs.dedup();
    let quoted: Vec<String> = dirs.iter().map(|d| shell_quote(d)).collect();
    let _ = writeln!(
        out,
        "# Create the log folder first: mkdir -p {}",
        quoted.join(" ")
    );
    for job in jobs {
        out.push('\n');
        let Some(schedule) = &job.schedule else {
            let _ = writeln!(out, "# {} ({}): no schedule", job.name, job.path.display());
            continue;
        };
        let log = log_folder(job, log_dir).join(format!("{}.log", job.name));
        let _ = writeln!(
            out,
            "# {}: {} in {}",
            job.name,
            schedule.expression,
            schedule.timezone.name()
        );
        let _ = writeln!(out, "CRON_TZ={}", schedule.timezone.name());
        let line = format!(
            "{} {} run {} --no-wait >> {log} 2>&1 || echo \"runner: {} exited with $?, see\" {log}",
            schedule.expression,
            shell_quote(runner),
            shell_quote(&job.path),
            job.name,
            log = shell_quote(&log),
        );
        // In a crontab `%` ends the command (the rest is its stdin) unless escaped.
        let _ = writeln!(out, "{}", line.replace('%', r"\%"));
    }
    out
}

fn log_folder(job: &Job, log_dir: Option<&Path>) -> PathBuf {
    match log_dir {
        Some(dir) => std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned()),
        None => job.root.join("logs"),
    }
}
