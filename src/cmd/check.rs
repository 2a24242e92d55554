//! `runner check`: validate job files, their templates and source paths, touching no
//! data. Every problem of every file is reported; the exit code is the config one when
//! any file has a problem. When the job's database is reachable (and not `--offline`),
//! every analysis is also planned by it (see [`analysis::validate`]) inside a
//! transaction that is rolled back; when it is not, a note says the check was offline.

use crate::analysis::{self, env::Dialect};
use crate::cli::CheckArgs;
use crate::error::{Diagnostic, Diagnostics, Error, Result};
use crate::{db, job};

pub fn check(args: &CheckArgs) -> Result<()> {
    let mut problems = Diagnostics::default();
    for path in &args.jobs {
        match check_one(path, &args.vars, args.offline) {
            Ok(summary) => crate::outln!("ok: {} ({summary})", path.display()),
            Err(Error::Config(d)) => problems.0.extend(d.0),
            Err(e) => return Err(e),
        }
    }
    problems.into_result()
}

fn check_one(path: &std::path::Path, vars: &[String], offline: bool) -> Result<String> {
    let job = super::load_job_file(path, vars)?;
    let mut problems = Diagnostics::default();
    let mut files = 0;
    for source in &job.ingest {
        let key = format!("ingest.{}.paths", source.name);
        // Each pattern on its own: every missing folder is named, not just the first.
        let mut found = 0;
        let mut readable = true;
        for pattern in &source.patterns {
            match crate::ingest::discover::scan(pattern) {
                Ok(scan) => found += scan.files.len(),
                Err(e) => {
                    readable = false;
                    problems.push(Diagnostic::new(e.to_string()).key(key.clone()));
                }
            }
        }
        if readable && found == 0 {
            problems.push(
                Diagnostic::new(format!(
                    "ingest source `{}` matches no files: {}",
                    source.name,
                    source
                        .patterns
                        .iter()
                        .map(|p| p.written.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .key(key),
            );
        }
        files += found;
    }
    let selected: Vec<_> = job.analyses.iter().collect();
    // Render for both dialects: a template must work with and without TimescaleDB.
    for dialect in [Dialect::Postgres, Dialect::Timescale] {
        if let Err(Error::Config(d)) = analysis::render_all(&job, &selected, dialect, job.as_of) {
            problems.0.extend(d.0);
            break;
        }
    }
    problems.into_result()?;
    let live = if offline {
        String::from(", offline")
    } else {
        check_live(&job)?
    };
    Ok(format!(
        "{} ingest sources, {files} files, {} analyses{live}",
        job.ingest.len(),
        job.analyses.len()
    ))
}

/// Plan every analysis on the job's database; an unreachable database is a note, not an
/// error, so `check` still works on a laptop without one.
fn check_live(job: &job::Job) -> Result<String> {
    let mut conn = match db::pool::connect_one(&job.database_url) {
        Ok(conn) => conn,
        Err(e) => {
            crate::errln!("note: {e}; checked without a database");
            return Ok(", offline: database not reachable".into());
        }
    };
    let caps = db::capabilities::detect(&mut conn, false)?;
    // Without an as-of date the templates get today's, so date arithmetic is typed right.
    let as_of = job.as_of.or_else(|| Some(chrono::Utc::now().date_naive()));
    let checked = analysis::validate::validate(&mut conn, job, analysis::dialect(&caps), as_of)?;
    Ok(format!(", {checked} planned by {}", caps.describe()))
}
