//! The one integration test binary. Every test that needs PostgreSQL gets its own
//! database (created and dropped by `util::TestDb`) on the server named by
//! `TEST_DATABASE_URL` (default: the local server), so tests run in parallel and the
//! same suite runs against a TimescaleDB server when pointed at one.

mod it {
    /// Shared helpers: test databases, temporary projects, running the binary.
    pub mod util;

    /// Job files and arguments: every config error names its file and position.
    mod config;
    /// Schema migrations and what `doctor` reports.
    mod migrations;
    /// Loading the hand-checked fixture: values, rejects, flags, reruns.
    mod ingest;
    /// Ingest quirks, rules from the job file, kill -9 and concurrent runs.
    mod ingest_scale;
    /// The shipped analyses against hand-computed values.
    mod analyses;
}
