use super::util::{Project, TestDb};

fn run(p: &Project, db: &TestDb, extra: &[&str]) -> String {
    let mut args = vec!["run", "jobs/quarterly.toml"];
    args.extend_from_slice(extra);
    p.runner(Some(db), &args).expect_code(0).stderr()
}

#[test]
fn fixture_loads_exact_values_rejects_and_flags() {
    let db = TestDb::new();
    let p = Project::new();
    let log = run(&p, &db, &[]);
    assert!(log.contains("3 files (3 new, 0 grown, 0 replaced, 0 unchanged, 0 failed, 0 missing), 17 rows loaded, 2 rejected, 1 flagged"), "{log}");

    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "17");
    assert_eq!(
        db.lines("SELECT symbol, day, open, high, low, close, adj_close, volume FROM daily_prices WHERE symbol = 'BBB' ORDER BY day"),
        [
            "BBB|2020-03-27|19|18|20|19|19|150",
            "BBB|2020-03-30|20|20.5|19.5|20|20|700",
            "BBB|2020-03-31|21|21.5|20.5|21|21|700",
            "BBB|2020-04-01|22|22.5|21.5|22|22|NULL",
        ]
    );
    // BOM + CRLF + trailing blank line.
    assert_eq!(
        db.lines("SELECT day, close, volume FROM daily_prices WHERE symbol = 'ETF1' ORDER BY day"),
        ["2020-03-31|50|10", "2020-04-01|49|20"]
    );
    assert_eq!(
        db.lines("SELECT symbol, asset_class, rows_loaded, rows_rejected, last_day FROM ingest_files ORDER BY symbol"),
        ["AAA|stock|11|0|2020-04-01", "BBB|stock|4|2|2020-04-01", "ETF1|etf|2|0|2020-04-01"]
    );
    assert_eq!(
        db.lines("SELECT symbol, day, rule FROM data_quality ORDER BY 1, 2"),
        ["BBB|2020-03-27|high_below_low"]
    );
    assert_eq!(
        db.lines("SELECT symbol, security_name, market_category, etf, round_lot_size, financial_status FROM symbols ORDER BY 1"),
        [
            "AAA|Alpha, Inc. Common Stock|NULL|false|100|NULL",
            "BBB|Beta Corp Common Stock|Q|false|100|N",
            "ETF1|First Test ETF|NULL|true|100|NULL",
        ]
    );
    let rejects = p.read("reports/quarterly/latest/rejects.csv");
    let data = p.path("data/stocks/BBB.csv").display().to_string();
    assert_eq!(
        rejects,
        format!(
            "file,line,reason,raw\n\
             {data},2,no_close: missing close,\"2020-03-26,19,19,19,,19,100\"\n\
             {data},4,bad_date: bad date `2020-13-01` (expected YYYY-MM-DD),\"2020-13-01,1,1,1,1,1,1\"\n"
        )
    );
}

#[test]
fn rerun_loads_nothing_twice_and_reports_the_same() {
    let db = TestDb::new();
    let p = Project::new();
    run(&p, &db, &[]);
    let first = p.read("reports/quarterly/latest/highest_volume_day.csv");
    let log = run(&p, &db, &[]);
    assert!(
        log.contains(
            "3 files (0 new, 0 grown, 0 replaced, 3 unchanged, 0 failed, 0 missing), 0 rows loaded"
        ),
        "{log}"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "17");
    assert_eq!(db.scalar("SELECT count(*) FROM ingest_rejects"), "2");
    assert_eq!(
        p.read("reports/quarterly/latest/highest_volume_day.csv"),
        first
    );
    assert_eq!(
        db.lines("SELECT status FROM runs ORDER BY id"),
        ["succeeded", "succeeded"]
    );
}

#[test]
fn grown_file_loads_only_new_rows_and_changed_file_replaces_its_symbol() {
    let db = TestDb::new();
    let p = Project::new();
    run(&p, &db, &[]);
    // The nightly case: a day appended.
    let aaa = p.read("data/stocks/AAA.csv");
    p.write(
        "data/stocks/AAA.csv",
        &format!("{aaa}2020-04-02,17,17,17,17,17,6000\n2020-04-01,1,1,1,1,1,1\n"),
    );
    let log = run(&p, &db, &[]);
    assert!(
        log.contains("(0 new, 1 grown, 0 replaced, 2 unchanged"),
        "{log}"
    );
    assert!(log.contains("1 rows loaded, 1 rejected"), "{log}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM daily_prices WHERE symbol = 'AAA'"),
        "12"
    );
    assert_eq!(
        db.scalar("SELECT close FROM daily_prices WHERE symbol = 'AAA' AND day = '2020-04-01'"),
        "16"
    );
    assert_eq!(
        db.lines("SELECT line, reason FROM ingest_rejects WHERE symbol = 'AAA'"),
        ["14|duplicate_day: day 2020-04-01 appears earlier in the file"]
    );
    assert_eq!(
        db.lines(
            "SELECT rows_loaded, rows_rejected, last_day FROM ingest_files WHERE symbol = 'AAA'"
        ),
        ["12|1|2020-04-02"]
    );

    // A correction inside the file: the symbol is replaced, nothing duplicated.
    let bbb = p.read("data/stocks/BBB.csv").replace(
        "2020-03-30,20,20.5,19.5,20,20,700",
        "2020-03-30,20,20.5,19.5,20.25,20,700",
    );
    p.write("data/stocks/BBB.csv", &bbb);
    let log = run(&p, &db, &[]);
    assert!(
        log.contains("(0 new, 0 grown, 1 replaced, 2 unchanged"),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM daily_prices WHERE symbol = 'BBB'"),
        "4"
    );
    assert_eq!(
        db.scalar("SELECT close FROM daily_prices WHERE symbol = 'BBB' AND day = '2020-03-30'"),
        "20.25"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM ingest_rejects WHERE symbol = 'BBB'"),
        "2"
    );

    // A vanished file keeps its rows and is reported (a pattern left with no file at
    // all is a failure: see badinput_sources).
    std::fs::remove_file(p.path("data/stocks/BBB.csv")).unwrap();
    let log = run(&p, &db, &[]);
    assert!(
        log.contains("2 files (0 new, 0 grown, 0 replaced, 2 unchanged, 0 failed, 1 missing)"),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM daily_prices WHERE symbol = 'BBB'"),
        "4"
    );
}

#[test]
fn a_fresh_database_is_created_by_run() {
    let db = TestDb::not_created();
    let p = Project::new();
    run(&p, &db, &[]);
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "17");
}
