//! `runner check`: validate job files, their templates and source paths, touching no
//! data. Every problem of every file is reported; the exit code is the config one when
//! any file has a problem.

use crate::analysis::{self, env::Dialect};
use crate::cli::CheckArgs;
use crate::error::{Diagnostic, Diagnostics, Error, Result};
use crate::job;

pub fn check(args: &CheckArgs) -> Result<()> {
    let mut problems = Diagnostics::default();
    for path in &args.jobs {
        match check_one(path, &args.vars) {
            Ok(summary) => println!("ok: {} ({summary})", path.display()),
            Err(Error::Config(d)) => problems.0.extend(d.0),
            Err(e) => return Err(e),
        }
    }
    problems.into_result()
}

fn check_one(path: &std::path::Path, vars: &[String]) -> Result<String> {
    let job = job::load(path, vars)?;
    let mut problems = Diagnostics::default();
    let mut files = 0;
    for source in &job.ingest {
        match source.files() {
            Ok(found) if found.is_empty() => problems.push(
                Diagnostic::new(format!(
                    "ingest source `{}` matches no files: {}",
                    source.name,
                    source.patterns.join(", ")
                ))
                .key(format!("ingest.{}.paths", source.name)),
            ),
            Ok(found) => files += found.len(),
            Err(e) => problems.push(Diagnostic::new(e).key(format!("ingest.{}.paths", source.name))),
        }
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
    Ok(format!("{} ingest sources, {files} files, {} analyses", job.ingest.len(), job.analyses.len()))
}
