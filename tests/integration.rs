//! The one integration test binary. Every test that needs PostgreSQL gets its own
//! database (created and dropped by `util::TestDb`) on the server named by
//! `TEST_DATABASE_URL` (default: the local server), so tests run in parallel and the
//! same suite runs against a TimescaleDB server when pointed at one.

mod it {
    /// Shared helpers: test databases, temporary projects, running the binary.
    pub mod util;

    /// The shipped analyses against hand-computed values.
    mod analyses;
    /// Materialized analyses, ref(), dependency order, --select, cycles, live check.
    mod analysis_dag;
    /// Issue 10: bad rows, metadata lines and dates cost one row, with a true reason.
    mod badinput_rows;
    /// Issue 10 at run time: timeouts, read-only analyses, streaming, broken pipes,
    /// exit-time crashes, passwords, warnings.
    mod badinput_runtime;
    /// Hostile file layouts: ambiguous symbols, missing folders, vanished and skipped files.
    mod badinput_sources;
    /// The durable change log: commits with its writer, waits for writers in flight.
    mod changelog;
    /// Job files and arguments: every config error names its file and position.
    mod config;
    /// Runs killed at any point, terminated connections, the run lock, `runs` statuses.
    mod crash;
    /// Data tests (`[[test]]`): built-ins, custom, severities, exit code 3.
    mod datatests;
    /// Derived data (aggregates, incremental tables) equals a clean load after any change.
    pub mod derived;
    /// Dialect helpers give identical numbers with and without TimescaleDB.
    mod dialect;
    /// Every value type and injection attempts, end to end through PostgreSQL.
    mod escaping;
    /// The indicator library against an independent computation; incremental runs.
    mod indicators;
    /// Loading the hand-checked fixture: values, rejects, flags, reruns.
    mod ingest;
    /// Ingest quirks, rules from the job file, kill -9 and concurrent runs.
    mod ingest_scale;
    /// `maintain` and `explain`.
    mod maintain;
    /// Schema migrations and what `doctor` reports.
    mod migrations;
    /// `history`, the runs index, `render`'s as_of, `generate` reproducing data/.
    mod ops;
    /// Schedules: config errors, `runner schedule`'s crontab, the daemon under a test clock.
    mod schedule;
    /// `[storage]` applied idempotently; OHLCV aggregates on both backends.
    mod storage;
    /// Real-time feeds through NATS JetStream: exactly once across kills, rollups.
    mod stream;
}
