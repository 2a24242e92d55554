//! How long runner waits for the server: the connect timeout every connection gets, and
//! the statement timeout analyses run under.
//!
//! The connect timeout is process-wide rather than a parameter of every connecting
//! function: the pool, the run lock, `doctor`, `check` and `render` all connect, and each
//! must get the same limit. `--connect-timeout` (set once, before any command runs) wins
//! over the job's `connect_timeout`, which wins over [`DEFAULT_CONNECT_TIMEOUT`]. A
//! `connect_timeout` written into the connection string itself is left alone: libpq
//! reads the first one it finds, and runner only adds its own when there is none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Seconds to wait for a server to answer (libpq's `connect_timeout`): a server that
/// accepts the TCP connection and never speaks must not hang a run.
pub const DEFAULT_CONNECT_TIMEOUT: u64 = 10;

/// Seconds an analysis statement may run before the server cancels it; generous, so
/// only a runaway query (`pg_sleep(1000)`, a cross join) is stopped.
pub const DEFAULT_STATEMENT_TIMEOUT: u64 = 30 * 60;

/// 0: not set.
static FROM_CLI: AtomicU64 = AtomicU64::new(0);
static FROM_JOB: AtomicU64 = AtomicU64::new(0);

/// `--connect-timeout`, for every connection of this process.
pub fn set_cli_connect_timeout(seconds: u64) {
    FROM_CLI.store(seconds, Ordering::Relaxed);
}

/// The loaded job's `connect_timeout` (`None`: the job does not set one).
pub fn set_job_connect_timeout(seconds: Option<u64>) {
    FROM_JOB.store(seconds.unwrap_or(0), Ordering::Relaxed);
}

/// The connect timeout in force.
pub fn connect_timeout() -> Duration {
    let pick = |value: u64| (value > 0).then_some(value);
    let seconds = pick(FROM_CLI.load(Ordering::Relaxed))
        .or_else(|| pick(FROM_JOB.load(Ordering::Relaxed)))
        .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    Duration::from_secs(seconds)
}

/// `conninfo` with libpq's `connect_timeout` set to [`connect_timeout`], unless it names
/// one already. What is printed is always the connection string as the user wrote it.
pub fn with_connect_timeout(conninfo: &str) -> String {
    with_timeout(conninfo, connect_timeout().as_secs())
}

fn with_timeout(conninfo: &str, seconds: u64) -> String {
    if conninfo.contains("connect_timeout") {
        return conninfo.to_owned();
    }
    let trimmed = conninfo.trim();
    if trimmed.contains("://") && !super::url::is_postgres_url(trimmed) {
        // libpq will refuse it; do not add to what its error echoes.
        return conninfo.to_owned();
    }
    if trimmed.contains("://") {
        let separator = if trimmed.contains('?') { '&' } else { '?' };
        format!("{trimmed}{separator}connect_timeout={seconds}")
    } else if trimmed.is_empty() {
        format!("connect_timeout={seconds}")
    } else {
        format!("{trimmed} connect_timeout={seconds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_connect_timeout_to_both_forms_unless_present() {
        assert_eq!(
            with_timeout("postgres://u@h/db", 10),
            "postgres://u@h/db?connect_timeout=10"
        );
        assert_eq!(
            with_timeout("postgres://u@h/db?sslmode=disable", 3),
            "postgres://u@h/db?sslmode=disable&connect_timeout=3"
        );
        assert_eq!(
            with_timeout("host=h dbname=x", 10),
            "host=h dbname=x connect_timeout=10"
        );
        assert_eq!(
            with_timeout("postgres://h/db?connect_timeout=1", 10),
            "postgres://h/db?connect_timeout=1"
        );
    }
}
