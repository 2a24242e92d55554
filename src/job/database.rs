//! Which database a command talks to. One rule, used by every command:
//!
//! 1. `--database-url` (only `migrate` and `doctor` take it);
//! 2. the job's `database_url`, used as written after `${VAR}` expansion: the
//!    environment does not override it, but the value may read it
//!    (`"${DATABASE_URL:-postgres://…}"`);
//! 3. `$DATABASE_URL`, for a job without `database_url` (or no job at all);
//! 4. [`DEFAULT_DATABASE_URL`].

/// Used when neither the job nor `DATABASE_URL` names a database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@localhost:5432/stocks";

/// Steps 3 and 4: the database when no job (or a job without `database_url`) names one.
pub fn fallback_database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned())
}
