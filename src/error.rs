//! The top-level error, its exit codes and how it is printed.
//!
//! Errors fall in two families, and the exit code tells them apart so cron wrappers can
//! react differently: a *configuration* problem (bad job file, missing template, bad
//! `--var`) exits with [`EXIT_CONFIG`] and is the user's to fix; anything that went wrong
//! while running (database down, a file that fails to load) exits with [`EXIT_FAILURE`];
//! a run that finds the database busy and may not wait exits with [`EXIT_BUSY`].

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code of a run that finished.
pub const EXIT_OK: i32 = 0;
/// Exit code of a run that failed while working.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code of a job file, template or argument problem: nothing was run.
pub const EXIT_CONFIG: i32 = 2;
/// Exit code of `run --no-wait` (or `--wait-lock` running out) while another run holds
/// the database: nothing was done, try again later (`EX_TEMPFAIL` of sysexits.h).
pub const EXIT_BUSY: i32 = 75;
/// Exit code of a run that did everything but an error-level data test failed.
pub const EXIT_TESTS: i32 = 3;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// One or more problems in a job file, a template or the arguments.
    #[error("{0}")]
    Config(Diagnostics),
    /// A failure while running, with what runner was doing at the time.
    #[error("{context}: {source}")]
    Runtime {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No connection to the database.
    #[error(transparent)]
    Connect(#[from] crate::db::pool::ConnectError),
    /// An analysis failed, or runner's SQL helpers could not be installed.
    #[error(transparent)]
    Analysis(#[from] crate::analysis::AnalysisError),
    /// The run lock was lost or cannot be watched.
    #[error(transparent)]
    Lock(#[from] crate::db::lock::LockError),
    /// A schema migration failed.
    #[error(transparent)]
    Migrate(#[from] crate::db::migrate::MigrateError),
    /// The scheduler's clock or the runner binary could not be had.
    #[error(transparent)]
    Scheduler(#[from] crate::scheduler::SchedulerError),
    /// The stream consumer or replay failed outside the broker and the database.
    #[error(transparent)]
    Stream(#[from] crate::stream::StreamError),
    /// The run finished, but some analyses or exports failed.
    #[error(transparent)]
    Partial(#[from] crate::cmd::run::Partial),
    /// Another run holds the database and this one was told not to wait (longer).
    #[error("{0}")]
    Busy(String),
    /// The run finished, but error-level data tests failed.
    #[error("{0}")]
    TestsFailed(String),
    /// Writing to stdout failed for another reason than a closed reader.
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    /// Whoever read the output went away (`runner render | head`): stop quietly.
    #[error("")]
    OutputClosed,
}

impl Error {
    /// The process exit code for this error.
    pub fn code(&self) -> i32 {
        match self {
            Error::Config(_) => EXIT_CONFIG,
            Error::Runtime { .. }
            | Error::Connect(_)
            | Error::Analysis(_)
            | Error::Lock(_)
            | Error::Migrate(_)
            | Error::Scheduler(_)
            | Error::Stream(_)
            | Error::Partial(_)
            | Error::Stdout(_) => EXIT_FAILURE,
            Error::Busy(_) => EXIT_BUSY,
            Error::TestsFailed(_) => EXIT_TESTS,
            Error::OutputClosed => EXIT_OK,
        }
    }

    pub fn config(diagnostic: Diagnostic) -> Self {
        Error::Config(Diagnostics(vec![diagnostic]))
    }
}

/// Attach "what was being done" to any error, turning it into [`Error::Runtime`].
pub trait Context<T> {
    fn context(self, context: impl Into<String>) -> Result<T>;
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T, E> Context<T> for std::result::Result<T, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn context(self, context: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Runtime {
            context: context.into(),
            source: Box::new(source),
        })
    }

    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|source| Error::Runtime {
            context: f(),
            source: Box::new(source),
        })
    }
}

/// Where in a file a problem is: 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    /// The offending source line, for the caret display.
    pub source_line: Option<String>,
    /// How many characters to underline.
    pub width: usize,
}

impl Location {
    /// The location of byte `offset` in `source`, read from `path`.
    pub fn from_offset(path: &Path, source: &str, offset: usize, width: usize) -> Self {
        let offset = offset.min(source.len());
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..offset].chars().count() + 1;
        let source_line = source[line_start..].lines().next().map(str::to_owned);
        Location {
            path: path.to_owned(),
            line,
            column,
            source_line,
            width: width.max(1),
        }
    }

    /// A location that names only a file and line (no source excerpt).
    pub fn line(path: &Path, line: usize) -> Self {
        Location {
            path: path.to_owned(),
            line,
            column: 1,
            source_line: None,
            width: 1,
        }
    }
}

/// One configuration problem: what is wrong, where, and optionally a hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub message: String,
    pub location: Option<Location>,
    /// The job key involved, e.g. `analysis.weekly.template`.
    pub key: Option<String>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(message: impl Into<String>) -> Self {
        Diagnostic {
            message: message.into(),
            location: None,
            key: None,
            help: None,
        }
    }

    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    /// Printed like `just` prints its errors:
    ///
    /// ```text
    /// error: unknown key `templat` in `analysis.weekly`
    ///  --> jobs/quarterly.toml:14:1
    ///    |
    /// 14 | templat = "x.sql"
    ///    | ^^^^^^^
    ///    = help: did you mean `template`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(loc) = &self.location {
            write!(
                f,
                "\n --> {}:{}:{}",
                loc.path.display(),
                loc.line,
                loc.column
            )?;
            if let Some(text) = &loc.source_line {
                let gutter = " ".repeat(loc.line.to_string().len());
                write!(
                    f,
                    "\n{gutter} |\n{} | {}\n{gutter} | {}{}",
                    loc.line,
                    text,
                    " ".repeat(loc.column - 1),
                    "^".repeat(loc.width)
                )?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, "\n  = key: `{key}`")?;
        }
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}

/// Every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(())` when empty, else the collected problems as a config error.
    pub fn into_result(self) -> Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Config(self))
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        if self.0.len() > 1 {
            write!(f, "\n{} problems found", self.0.len())?;
        }
        Ok(())
    }
}

/// The closest of `candidates` to `word`, for "did you mean …?" hints.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_counts_lines_and_columns_from_one() {
        let src = "a = 1\nbb = 2\n";
        let loc = Location::from_offset(Path::new("j.toml"), src, 6 + 3, 1);
        assert_eq!((loc.line, loc.column), (2, 4));
        assert_eq!(loc.source_line.as_deref(), Some("bb = 2"));
    }

    #[test]
    fn diagnostic_prints_caret_under_offending_text() {
        let src = "name = 1\ntemplat = 2\n";
        let d = Diagnostic::new("unknown key `templat`")
            .at(Location::from_offset(Path::new("j.toml"), src, 9, 7))
            .help("did you mean `template`?");
        assert_eq!(
            d.to_string(),
            "error: unknown key `templat`\n --> j.toml:2:1\n  |\n2 | templat = 2\n  | ^^^^^^^\n  = help: did you mean `template`?"
        );
    }

    #[test]
    fn error_kinds_keep_their_exit_codes_and_messages() {
        let lost = Error::from(crate::db::lock::LockError::Lost);
        assert_eq!(lost.code(), EXIT_FAILURE);
        assert!(lost.to_string().starts_with(
            "lost the run lock: its database connection was closed (server restart or \
             pg_terminate_backend); stopping"
        ));
        let partial = Error::from(crate::cmd::run::Partial {
            failures: vec!["a.csv: bad".into(), "analysis `x`: failed".into()],
            summary_file: PathBuf::from("reports/j/2020-01-01/summary.json"),
        });
        assert_eq!(partial.code(), EXIT_FAILURE);
        assert_eq!(
            partial.to_string(),
            "a.csv: bad; analysis `x`: failed (see reports/j/2020-01-01/summary.json); \
             everything else is done"
        );
        let speed = Error::from(crate::scheduler::SchedulerError::ClockSpeed { value: "0".into() });
        assert_eq!(
            (speed.code(), speed.to_string()),
            (
                EXIT_FAILURE,
                "RUNNER_CLOCK_SPEED `0` is not a positive number".to_owned()
            )
        );
        let failed = Error::from(crate::analysis::AnalysisError::Failed {
            name: "weekly".into(),
            reason: "relation \"nope\" does not exist".into(),
        });
        assert_eq!(
            failed.to_string(),
            "analysis `weekly` failed: relation \"nope\" does not exist"
        );
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(suggest("templat", ["template", "name"]), Some("template"));
        assert_eq!(suggest("zzz", ["template", "name"]), None);
    }
}
