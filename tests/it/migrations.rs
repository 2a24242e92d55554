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
