//! Turns a [`JobSpec`] into a checked [`Job`]: variables merged with `--var`, paths
//! resolved against the project root, names and templates checked. Every problem is
//! collected with its position, so one `runner check` shows them all.
//!
//! This file holds the job as a whole (name, variables, `as_of`, `database_url`,
//! folders); each section has its own file: `ingest`, `storage`, `analyses`, `report`.
//! All of them record problems through [`Planner::problem_at`] (file:line:col and job
//! key) or, for values without a position in the file, [`Planner::problem`].

mod analyses;
mod ingest;
mod report;
mod storage;

pub use analyses::Analysis;
pub use ingest::{IngestSource, SourcePattern};
pub use report::ReportSettings;

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use toml::Spanned;

use super::spec::JobSpec;
use super::vars::{self, Vars};
use crate::error::{suggest, Diagnostic, Diagnostics, Error, Location, Result};

/// A validated job, ready to run.
#[derive(Debug, Clone)]
pub struct Job {
    pub name: String,
    pub description: Option<String>,
    /// The job file.
    pub path: PathBuf,
    /// Relative paths in the job resolve against this folder: the folder holding the
    /// job's `jobs/` folder, or the job file's own folder when it is not in one.
    pub root: PathBuf,
    /// The job's `database_url` expanded, else `$DATABASE_URL`, else the default (the
    /// rule is in [`super::database`]).
    pub database_url: String,
    /// `connect_timeout` in seconds, when the job sets it (see `db::timeouts`).
    pub connect_timeout: Option<u64>,
    /// All variables after `--var` overrides; `as_of` is kept apart.
    pub vars: Vars,
    /// The names the job file's `[vars]` declares (before `--var`).
    pub declared_vars: std::collections::BTreeSet<String>,
    /// `vars.as_of`, when given; otherwise the run uses the latest loaded trading day.
    pub as_of: Option<NaiveDate>,
    pub templates_dir: PathBuf,
    pub ingest: Vec<IngestSource>,
    pub analyses: Vec<Analysis>,
    pub report: ReportSettings,
    /// `[storage]`, checked.
    pub storage: crate::db::storage::StorageSettings,
    /// `[[test]]` sections, checked.
    pub tests: Vec<super::datatest::DataTest>,
    /// `[[feed]]`, checked (`runner stream`, `runner replay`).
    pub feeds: Vec<super::feed::Feed>,
    /// `schedule`, `timezone` and `missed`, checked (`runner schedule`, `runner daemon`).
    pub schedule: Option<super::schedule::Schedule>,
}

/// Read, parse and check the job at `path` with `--var` overrides applied.
///
/// # Errors
/// [`Error::Config`] listing every problem with its file position or key.
pub fn load(path: &Path, overrides: &[String]) -> Result<Job> {
    let source = std::fs::read_to_string(path).map_err(|e| {
        Error::config(Diagnostic::new(format!(
            "cannot read job file `{}`: {e}",
            path.display()
        )))
    })?;
    let spec: JobSpec = toml::from_str(&source).map_err(|e| {
        let mut d = Diagnostic::new(format!("invalid job file: {}", e.message().trim_end()));
        if let Some(span) = e.span() {
            d = d.at(Location::from_offset(path, &source, span.start, span.len()));
        }
        if let Some(help) = unknown_key_hint(e.message()) {
            d = d.help(help);
        }
        Error::config(d)
    })?;
    Planner {
        path,
        source: &source,
        problems: Diagnostics::default(),
    }
    .plan(spec, overrides)
}

/// "did you mean" for serde's `unknown field `x`, expected one of `a`, `b``.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, expected) = rest.split_once('`')?;
    let candidates: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    suggest(unknown, candidates).map(|s| format!("did you mean `{s}`?"))
}

struct Planner<'a> {
    path: &'a Path,
    source: &'a str,
    problems: Diagnostics,
}

impl Planner<'_> {
    fn at<T>(&self, spanned: &Spanned<T>) -> Location {
        let span = spanned.span();
        Location::from_offset(self.path, self.source, span.start, span.len())
    }

    /// Record `message` at `spanned`'s position in the job file, under the job key
    /// `key`; returns the problem so a caller can add `help`.
    fn problem_at<T>(
        &mut self,
        spanned: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        let location = self.at(spanned);
        let problem = self.problem(key, message);
        problem.location = Some(location);
        problem
    }

    /// Record `message` under the job key `key`, for a value without a position in the
    /// file (a `--var`, a default, a whole table).
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) -> &mut Diagnostic {
        self.problems.push(Diagnostic::new(message).key(key));
        self.problems.0.last_mut().expect("just pushed")
    }

    fn plan(mut self, spec: JobSpec, overrides: &[String]) -> Result<Job> {
        let root = project_root(self.path);
        let vars = self.vars(&spec, overrides);
        let as_of = self.as_of(&spec, &vars);
        let database_url = self.database_url(&spec, &vars);
        let connect_timeout = self.seconds(spec.connect_timeout.as_ref(), "connect_timeout");
        let templates_dir = match &spec.templates_dir {
            Some(dir) => self.resolve(&root, dir, &vars, "templates_dir"),
            None => root.join("templates"),
        };
        if !templates_dir.is_dir() {
            let location = spec.templates_dir.as_ref().map(|s| self.at(s));
            self.problem(
                "templates_dir",
                format!(
                    "templates folder `{}` does not exist",
                    templates_dir.display()
                ),
            )
            .location = location;
        }
        let ingest = self.ingest(&spec, &root, &vars);
        let report = self.report(&spec, &root, &vars);
        let analyses = self.analyses(&spec, &templates_dir, &report);
        let storage = self.storage(&spec);
        let (tests, problems) = super::datatest::plan(&spec.test, &analyses, &|span| {
            Location::from_offset(self.path, self.source, span.start, span.len())
        });
        self.problems.0.extend(problems);
        let feeds = super::feed::plan(&spec.feed, self.path, self.source, &mut self.problems);
        let schedule = super::schedule::plan(
            &super::schedule::ScheduleKeys {
                schedule: spec.schedule.as_ref(),
                timezone: spec.timezone.as_ref(),
                missed: spec.missed.as_ref(),
            },
            &|span| Location::from_offset(self.path, self.source, span.start, span.len()),
            &mut self.problems,
        );
        let name = spec.name.get_ref().trim().to_owned();
        if !is_identifier(&name) {
            self.problem_at(
                &spec.name,
                "name",
                format!("job name `{name}` must be lowercase letters, digits and `_`"),
            );
        }
        self.problems.into_result()?;
        Ok(Job {
            name,
            description: spec.description,
            path: self.path.to_owned(),
            root,
            database_url,
            connect_timeout,
            declared_vars: spec.vars.keys().cloned().collect(),
            vars,
            as_of,
            templates_dir,
            ingest,
            analyses,
            report,
            storage,
            tests,
            feeds,
            schedule,
        })
    }

    fn vars(&mut self, spec: &JobSpec, overrides: &[String]) -> Vars {
        let mut vars: Vars = spec
            .vars
            .iter()
            .map(|(k, v)| (k.clone(), v.get_ref().clone()))
            .collect();
        for arg in overrides {
            match vars::parse_override(
                arg,
                arg.split_once('=').and_then(|(k, _)| vars.get(k.trim())),
            ) {
                Ok((key, value)) => {
                    vars.insert(key, value);
                }
                Err(error) => {
                    self.problem("--var", error.to_string());
                }
            }
        }
        vars
    }

    fn as_of(&mut self, spec: &JobSpec, vars: &Vars) -> Option<NaiveDate> {
        let value = vars.get("as_of")?;
        let date = vars::as_date(value);
        if date.is_none() {
            let location = spec.vars.get("as_of").map(|s| self.at(s));
            self.problem(
                "vars.as_of",
                format!("`as_of` must be a date (YYYY-MM-DD), found `{value}`"),
            )
            .location = location;
        }
        date
    }

    fn database_url(&mut self, spec: &JobSpec, vars: &Vars) -> String {
        match &spec.database_url {
            Some(url) => match vars::expand(url.get_ref(), vars, env_var) {
                Ok(expanded) => expanded,
                Err(error) => {
                    self.problem_at(url, "database_url", error.to_string());
                    String::new()
                }
            },
            None => super::database::fallback_database_url(),
        }
    }

    /// A timeout in seconds, which must be at least 1 (0 would mean "wait forever").
    fn seconds(&mut self, value: Option<&Spanned<u64>>, key: &str) -> Option<u64> {
        let value = value?;
        if *value.get_ref() == 0 {
            self.problem_at(
                value,
                key,
                format!("`{key}` must be at least 1 (seconds); 0 would wait forever"),
            );
        }
        Some(*value.get_ref())
    }

    /// Expand `${…}` in a path value and make it absolute.
    fn resolve(&mut self, root: &Path, value: &Spanned<String>, vars: &Vars, key: &str) -> PathBuf {
        match vars::expand(value.get_ref(), vars, env_var) {
            Ok(expanded) => root.join(expanded),
            Err(error) => {
                self.problem_at(value, key, error.to_string());
                PathBuf::new()
            }
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Lowercase ASCII identifier: safe as a file name and as an unquoted SQL name.
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && name.len() <= 48
}

/// The folder relative job paths resolve against (see [`Job::root`]).
fn project_root(job_path: &Path) -> PathBuf {
    let absolute = std::path::absolute(job_path).unwrap_or_else(|_| job_path.to_owned());
    let dir = absolute.parent().map(Path::to_owned).unwrap_or_default();
    match (dir.file_name(), dir.parent()) {
        (Some(name), Some(parent)) if name == "jobs" => parent.to_owned(),
        _ => dir,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_the_closest_known_key() {
        let msg = "unknown field `templat`, expected one of `name`, `description`, `template`, `outputs`, `chart`";
        assert_eq!(
            unknown_key_hint(msg).as_deref(),
            Some("did you mean `template`?")
        );
    }

    #[test]
    fn root_is_above_a_jobs_folder() {
        assert_eq!(
            project_root(Path::new("/p/jobs/q.toml")),
            PathBuf::from("/p")
        );
        assert_eq!(
            project_root(Path::new("/p/other/q.toml")),
            PathBuf::from("/p/other")
        );
    }

    #[test]
    fn identifiers_are_lowercase_words() {
        assert!(is_identifier("weekly_avg_close2"));
        assert!(!is_identifier("Weekly"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
