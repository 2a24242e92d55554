use super::util::{Project, TestDb};

#[test]
fn migrations_apply_on_an_empty_database_then_are_a_no_op() {
    let db = TestDb::not_created();
    let p = Project::new();
    let first = p
        .runner(None, &["migrate", "--database-url", &db.url])
        .expect_code(0)
        .stdout();
    assert!(first.contains("applied 20261125000001"), "{first}");
    let second = p
        .runner(None, &["migrate", "--database-url", &db.url])
        .expect_code(0)
        .stdout();
    assert!(second.contains("schema up to date"), "{second}");
    let tables = db.lines(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' \
         AND table_name IN ('symbols','daily_prices','ingest_files','ingest_rejects','data_quality','runs') ORDER BY 1",
    );
    assert_eq!(
        tables,
        [
            "daily_prices",
            "data_quality",
            "ingest_files",
            "ingest_rejects",
            "runs",
            "symbols"
        ]
    );
    assert_eq!(
        db.lines(
            "SELECT column_name::text || ' ' || data_type::text FROM information_schema.columns \
             WHERE table_name = 'daily_prices' ORDER BY ordinal_position"
        ),
        [
            "symbol text",
            "day date",
            "open double precision",
            "high double precision",
            "low double precision",
            "close double precision",
            "adj_close double precision",
            "volume bigint"
        ]
    );
}

#[test]
fn doctor_reports_server_and_timescale_status_without_the_password() {
    let db = TestDb::new();
    let p = Project::new();
    let url = db
        .url
        .replacen("postgres://postgres@", "postgres://postgres:sekret@", 1);
    let out = p
        .runner(None, &["doctor", "--database-url", &url])
        .expect_code(0)
        .stdout();
    assert!(out.contains("server:       PostgreSQL 1"), "{out}");
    assert!(out.contains("timescaledb:  "), "{out}");
    assert!(out.contains(":***@"), "{out}");
    assert!(!out.contains("sekret"), "{out}");
}

#[test]
fn timescale_path_makes_daily_prices_a_hypertable() {
    let db = TestDb::new();
    let p = Project::new();
    p.runner(None, &["migrate", "--database-url", &db.url])
        .expect_code(0);
    if !db.has_timescale() {
        eprintln!("TimescaleDB not on this server: plain PostgreSQL path checked elsewhere");
        return;
    }
    assert_eq!(
        db.lines(
            "SELECT hypertable_name::text FROM timescaledb_information.hypertables ORDER BY 1"
        ),
        ["daily_prices", "intraday_bars"]
    );
    assert_eq!(
        db.scalar("SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_name = 'daily_prices'"),
        "365 days"
    );
}

/// Several processes creating the same database at once all succeed: the one that
/// loses the race (42P04, or 23505 on pg_database's index) finds what it wanted.
#[test]
fn concurrent_creators_of_a_database_all_succeed() {
    let db = TestDb::not_created();
    let barrier = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    runner::db::pool::ensure_database(&db.url).map_err(|e| e.to_string())
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap(), Ok(()));
        }
    });
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{}'",
            db.name
        )),
        "1"
    );
}

/// A server that cannot be reached is reported with the redacted URL and libpq's reason,
/// and no database is created.
#[test]
fn an_unreachable_server_is_a_connect_error() {
    let err = runner::db::pool::ensure_database("postgres://u:secret@127.0.0.1:1/x").unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            runner::error::Error::Connect(runner::db::pool::ConnectError::Unreachable { .. })
        ),
        "{text}"
    );
    // The rest is libpq's own wording, which differs between its versions.
    assert!(
        text.starts_with("cannot connect to postgres://u:***@127.0.0.1:1/x: "),
        "{text}"
    );
}
