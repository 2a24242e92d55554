//! Issue 10, rows, metadata and dates: every hostile input is built here, and each case
//! asserts its exact outcome — exit code, message, the rows loaded, the rows rejected
//! with their rule, reason and line.

use super::util::{Project, TestDb};

const HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";
const META_HEADER: &str = "Nasdaq Traded,Symbol,Security Name,Listing Exchange,Market Category,ETF,Round Lot Size,Test Issue,Financial Status,CQS Symbol,NASDAQ Symbol,NextShares\n";

/// A job over the fixture (`data/stocks`, `data/etfs`, the metadata file) with one
/// analysis; `rules` and `report` are added to the prices source and `[report]`.
fn job(p: &Project, rules: &str, report: &str) {
    p.write(
        "jobs/bad.toml",
        &format!(
            "name = \"bad\"\ndatabase_url = \"${{DATABASE_URL}}\"\n\n\
             [[ingest]]\nname = \"prices\"\nkind = \"prices\"\npaths = [\"data/stocks/*.csv\", \"data/etfs/*.csv\"]\n\
             [ingest.rules]\n{rules}\n\n\
             [[ingest]]\nname = \"symbols\"\nkind = \"symbols\"\npaths = [\"data/symbols_valid_meta.csv\"]\n\n\
             [[analysis]]\nname = \"highest_volume_day\"\ntemplate = \"highest_volume_day.sql\"\n\n\
             [report]\nformats = [\"csv\", \"markdown\"]\n{report}\n"
        ),
    );
}

fn write_bytes(p: &Project, rel: &str, bytes: &[u8]) {
    let path = p.path(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `runner run jobs/bad.toml ARGS` with the clock at 2026-12-03 (UTC+14: still that day).
fn run(p: &Project, db: &TestDb, args: &[&str]) -> super::util::Run {
    let mut all = vec!["run", "jobs/bad.toml"];
    all.extend_from_slice(args);
    super::util::Run(
        p.command(Some(db), &all)
            .env("RUNNER_CLOCK_START", "2026-12-03T05:00:00Z")
            .output()
            .unwrap(),
    )
}

fn summary(p: &Project) -> serde_json::Value {
    serde_json::from_str(&p.read("reports/bad/latest/summary.json")).unwrap()
}

#[test]
fn a_bad_row_costs_one_row_with_a_true_reason_and_line() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    let mut bad = HEADER.as_bytes().to_vec();
    bad.extend_from_slice(
        b"2020-03-30,10,11,9,10,10,100\n\
          2020-03-31,10,11,9,1\x00,10,100\n\
          2020-04-01,10,11,9,10,10,100\n\
          2020-04-02,caf\xE9,11,9,10,10,100\n\
          2020-04-03,\"10,11,9,10,10,100\n\
          2020-04-06,10,11,9,11,11,200\n\
          2020-04-07,10,11,9,10,10\n\
          2020-04-08,10,11,9,10,10,100,5\n\
          2020-04-09,10,11,9,\"12\",12,300\n",
    );
    write_bytes(&p, "data/stocks/BAD.csv", &bad);
    let log = run(&p, &db, &[]).expect_code(0).stderr();
    assert!(
        log.contains("4 files (4 new, 0 grown, 0 replaced, 0 unchanged, 0 failed, 0 missing), 21 rows loaded, 7 rejected"),
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT day, close, volume FROM daily_prices WHERE symbol = 'BAD' ORDER BY day"),
        [
            "2020-03-30|10|100",
            "2020-04-01|10|100",
            "2020-04-06|11|200",
            "2020-04-09|12|300"
        ]
    );
    assert_eq!(
        db.lines("SELECT line, reason FROM ingest_rejects WHERE symbol = 'BAD' ORDER BY line"),
        [
            "3|nul_byte: NUL byte in column 5 (`Close`) at byte 2",
            "5|invalid_utf8: column 2 (`Open`) has a byte that is not UTF-8 (0xE9 at byte 4); convert the file to UTF-8",
            "6|unterminated_quote: the quote opening field 2 is not closed on this line",
            "8|field_count: 6 fields, the header has 7",
            "9|field_count: 8 fields, the header has 7",
        ]
    );
    let path = p.path("data/stocks/BAD.csv").display().to_string();
    let rejects = p.read("reports/bad/latest/rejects.csv");
    let bad_lines: Vec<&str> = rejects.lines().filter(|l| l.starts_with(&path)).collect();
    assert_eq!(
        bad_lines,
        [
            format!("{path},3,nul_byte: NUL byte in column 5 (`Close`) at byte 2,\"2020-03-31,10,11,9,1\u{FFFD},10,100\""),
            format!("{path},5,invalid_utf8: column 2 (`Open`) has a byte that is not UTF-8 (0xE9 at byte 4); convert the file to UTF-8,\"2020-04-02,caf\u{FFFD},11,9,10,10,100\""),
            format!("{path},6,unterminated_quote: the quote opening field 2 is not closed on this line,\"2020-04-03,\"\"10,11,9,10,10,100\""),
            format!("{path},8,\"field_count: 6 fields, the header has 7\",\"2020-04-07,10,11,9,10,10\""),
            format!("{path},9,\"field_count: 8 fields, the header has 7\",\"2020-04-08,10,11,9,10,10,100,5\""),
        ]
    );
    assert_eq!(summary(&p)["ingest"]["rejects_by_rule"]["field_count"], 2);
}

#[test]
fn header_problems_fail_their_file_with_a_true_reason_and_the_rest_load() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    let utf16: Vec<u8> = format!("\u{feff}{HEADER}2020-04-01,1,1,1,1,1,1\n")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    write_bytes(&p, "data/stocks/UTF16.csv", &utf16);
    p.write(
        "data/stocks/BLANK.csv",
        &format!("\n{HEADER}2020-04-01,1,1,1,1,1,1\n"),
    );
    write_bytes(
        &p,
        "data/stocks/LATIN.csv",
        b"Date,Open,High,Low,Close,Adj Close,Vol\xFCme\n2020-04-01,1,1,1,1,1,1\n",
    );
    let out = run(&p, &db, &[]).expect_code(1);
    let path = |s: &str| {
        p.path(&format!("data/stocks/{s}.csv"))
            .display()
            .to_string()
    };
    let failures = summary(&p)["failures"].clone();
    assert_eq!(
        failures,
        serde_json::json!([
            format!("{}: line 1 is blank: the header must be the first line (found on line 2)", path("BLANK")),
            format!("{}: header column 7 (`Vol\u{FFFD}me`) has a byte that is not UTF-8 (0xFC); convert the file to UTF-8", path("LATIN")),
            format!("{}: the file is UTF-16; convert it to UTF-8", path("UTF16")),
        ])
    );
    assert!(
        out.stderr()
            .contains("the file is UTF-16; convert it to UTF-8"),
        "{}",
        out.stderr()
    );
    // The fixture's 17 rows load; the three files load nothing and leave no entry.
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "17");
    assert_eq!(
        db.scalar("SELECT string_agg(symbol, ',' ORDER BY symbol) FROM ingest_files"),
        "AAA,BBB,ETF1"
    );
}

#[test]
fn a_50_mb_field_is_one_reject_stored_once_and_capped() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    let field = format!("{}x", "7".repeat(50 * 1024 * 1024 - 1));
    p.write(
        "data/stocks/BIG.csv",
        &format!("Date,Close\n2020-03-31,5\n2020-04-01,{field}\n2020-04-02,6\n"),
    );
    drop(field);
    run(&p, &db, &[]).expect_code(0);
    assert_eq!(
        db.lines("SELECT day, close FROM daily_prices WHERE symbol = 'BIG' ORDER BY day"),
        ["2020-03-31|5", "2020-04-02|6"]
    );
    assert_eq!(
        db.lines("SELECT line, reason, length(raw), right(raw, 40) FROM ingest_rejects WHERE symbol = 'BIG'"),
        [format!(
            "3|no_close: unusable close `{}…` (52428800 bytes)|{}|{}… [truncated, 52428811 bytes]",
            "7".repeat(64),
            4096 + "… [truncated, 52428811 bytes]".chars().count(),
            "7".repeat(11)
        )]
    );
    let size = std::fs::metadata(p.path("reports/bad/latest/rejects.csv"))
        .unwrap()
        .len();
    assert!(size < 5_000, "rejects.csv is {size} bytes");
}

#[test]
fn implausible_days_are_rejected_by_default() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    p.write(
        "data/stocks/DATES.csv",
        "Date,Close\n0000-01-01,1\n1899-12-31,2\n1900-01-01,3\n2020-04-01,4\n2026-12-03,5\n2026-12-04,6\n2092-01-01,7\n9999-12-31,8\n",
    );
    run(&p, &db, &[]).expect_code(0);
    assert_eq!(
        db.lines("SELECT day, close FROM daily_prices WHERE symbol = 'DATES' ORDER BY day"),
        ["1900-01-01|3", "2020-04-01|4", "2026-12-03|5"]
    );
    assert_eq!(
        db.lines("SELECT line, reason FROM ingest_rejects WHERE symbol = 'DATES' ORDER BY line"),
        [
            "2|bad_date: bad date `0000-01-01`: there is no year 0",
            "3|before_min_day: day 1899-12-31 is before min_day 1900-01-01",
            "7|after_today: day 2026-12-04 is after today (2026-12-03)",
            "8|after_today: day 2092-01-01 is after today (2026-12-03)",
            "9|after_today: day 9999-12-31 is after today (2026-12-03)",
        ]
    );
    // The aggregates refresh over what loaded (year 0 used to break them).
    assert_eq!(summary(&p)["as_of"], "2020-04-01");
}

#[test]
fn date_rules_are_set_per_source_and_a_stray_day_does_not_move_as_of() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "after_today = \"flag\"\nmin_day = \"1850-01-01\"", "");
    p.write(
        "data/stocks/ZZZ.csv",
        "Date,Close,Volume\n1899-12-31,2,10\n2020-04-01,4,20\n2092-01-01,7,30\n",
    );
    let log = run(&p, &db, &[]).expect_code(0).stderr();
    assert!(
        log.contains("20 rows loaded, 2 rejected, 2 flagged"),
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT day, close FROM daily_prices WHERE symbol = 'ZZZ' ORDER BY day"),
        ["1899-12-31|2", "2020-04-01|4", "2092-01-01|7"]
    );
    assert_eq!(
        db.lines("SELECT symbol, day, rule, detail FROM data_quality ORDER BY 1, 2"),
        [
            "BBB|2020-03-27|high_below_low|high 18 < low 20",
            "ZZZ|2092-01-01|after_today|day 2092-01-01 is after today (2026-12-03)"
        ]
    );
    // Three of four symbols end on 2020-04-01: the default as_of stays there.
    assert_eq!(summary(&p)["as_of"], "2020-04-01");
    assert!(p
        .path("reports/bad/2020-04-01/highest_volume_day.csv")
        .exists());
    assert_eq!(
        p.read("reports/bad/latest/highest_volume_day.csv"),
        "symbol,day,volume,close\nAAA,2019-09-30,999999,8\nBBB,2020-03-30,700,20\nETF1,2020-04-01,20,49\nZZZ,2020-04-01,20,4\n"
    );
    let md = p.read("reports/bad/latest/report.md");
    assert!(
        md.contains("as-of date: the latest trading day at least 50% of the symbols reached"),
        "{md}"
    );

    // A share of 0.2 takes the latest day one of the four symbols reached.
    job(
        &p,
        "after_today = \"flag\"\nmin_day = \"1850-01-01\"",
        "as_of_share = 0.2",
    );
    run(&p, &db, &[]).expect_code(0);
    assert_eq!(summary(&p)["as_of"], "2092-01-01");
}

#[test]
fn an_explicit_as_of_outside_the_data_is_a_warning_in_the_log_and_the_report() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    let log = run(&p, &db, &["--var", "as_of=2021-06-30"])
        .expect_code(0)
        .stderr();
    let warning = "as_of 2021-06-30 is after the last loaded day (2020-04-01)";
    assert!(log.contains("WARN") && log.contains(warning), "{log}");
    let md = p.read("reports/bad/2021-06-30/report.md");
    assert!(md.contains(&format!("- warning: {warning}")), "{md}");
    let log = run(&p, &db, &["--var", "as_of=1990-01-02"])
        .expect_code(0)
        .stderr();
    assert!(
        log.contains("as_of 1990-01-02 is before the first loaded day (2019-09-30): the reports will be empty"),
        "{log}"
    );
}

#[test]
fn an_empty_database_says_no_prices_loaded_yet() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    let expected = "choosing the as-of day: no prices loaded yet (daily_prices is empty); load prices first (check the [[ingest]] paths) or pass --var as_of=YYYY-MM-DD";
    let err = run(&p, &db, &["--skip-ingest"]).expect_code(1).stderr();
    assert!(err.contains(expected), "{err}");
    assert!(!err.contains("cannot cast"), "{err}");
    let err = p
        .runner(
            Some(&db),
            &["explain", "jobs/bad.toml", "--select", "highest_volume_day"],
        )
        .expect_code(1)
        .stderr();
    assert!(err.contains(expected), "{err}");
}

#[test]
fn bad_metadata_lines_are_rejects_and_the_rest_load() {
    let db = TestDb::new();
    let p = Project::new();
    job(&p, "", "");
    let mut meta = META_HEADER.as_bytes().to_vec();
    meta.extend_from_slice(
        b"Y,AAA,Alpha Inc,N, ,N,100.0,N,,AAA,AAA,N\n\
          Y,AAA,Alpha again,N, ,N,100.0,N,,AAA,AAA,N\n\
          Y,BBB,Caf\xE9 Corp,Q,Q,N,100.0,N,N,,BBB,N\n\
          Y,CCC,\"Unterminated,N, ,N,100.0,N,,CCC,CCC,N\n\
          Y,ETF1,First Test ETF,P, ,maybe,100.0,N,,ETF1,ETF1,N\n\
          Y,DDD,Dee,N, ,N,abc,N,,DDD,DDD,N\n\
          Y,EEE,Ee,N, ,N,1e10,N,,EEE,EEE,N\n\
          Y,FFF,Ef,N, ,N,100\n\
          Y,GGG,\"Gee, Inc.\",N, ,Y,200.0,N,,GGG,GGG,N\n",
    );
    write_bytes(&p, "data/symbols_valid_meta.csv", &meta);
    let log = run(&p, &db, &[]).expect_code(0).stderr();
    assert!(log.contains("17 rows loaded, 9 rejected"), "{log}");
    assert_eq!(
        db.lines("SELECT symbol, security_name, etf, round_lot_size FROM symbols ORDER BY 1"),
        ["AAA|Alpha Inc|false|100", "GGG|Gee, Inc.|true|200"]
    );
    let path = p.path("data/symbols_valid_meta.csv").display().to_string();
    assert_eq!(
        db.lines(&format!(
            "SELECT line, reason, raw FROM ingest_rejects WHERE path = '{path}' ORDER BY line"
        )),
        [
            "3|duplicate_symbol: symbol `AAA` appears earlier, on line 2|Y,AAA,Alpha again,N, ,N,100.0,N,,AAA,AAA,N",
            "4|invalid_utf8: column 3 (`Security Name`) has a byte that is not UTF-8 (0xE9 at byte 4); convert the file to UTF-8|Y,BBB,Caf\u{FFFD} Corp,Q,Q,N,100.0,N,N,,BBB,N",
            "5|unterminated_quote: the quote opening field 3 is not closed on this line|Y,CCC,\"Unterminated,N, ,N,100.0,N,,CCC,CCC,N",
            "6|bad_flag: ETF `maybe` is not Y or N|Y,ETF1,First Test ETF,P, ,maybe,100.0,N,,ETF1,ETF1,N",
            "7|bad_lot_size: Round Lot Size `abc` is not a number|Y,DDD,Dee,N, ,N,abc,N,,DDD,DDD,N",
            "8|bad_lot_size: Round Lot Size `1e10` is out of range (1 to 2147483647)|Y,EEE,Ee,N, ,N,1e10,N,,EEE,EEE,N",
            "9|field_count: 7 fields, the header has 12|Y,FFF,Ef,N, ,N,100",
        ]
    );
    let rejects = p.read("reports/bad/latest/rejects.csv");
    assert_eq!(
        rejects.lines().filter(|l| l.starts_with(&path)).count(),
        7,
        "{rejects}"
    );
    // A second run replaces the file's rejects instead of piling them up.
    run(&p, &db, &[]).expect_code(0);
    assert_eq!(
        db.scalar(&format!(
            "SELECT count(*) FROM ingest_rejects WHERE path = '{path}'"
        )),
        "7"
    );
}

#[test]
fn a_metadata_file_without_a_column_or_empty_fails_alone() {
    for (contents, error) in [
        (
            META_HEADER.replace("ETF,", "").replace(",N,100.0", ",100.0") + "Y,AAA,Alpha,N, ,100.0,N,,AAA,AAA,N\n",
            "the header has no `ETF` column".to_owned(),
        ),
        (
            String::new(),
            "the file is empty; expected a header with `Symbol`, `Nasdaq Traded`, `Security Name`, `Listing Exchange`, `Market Category`, `ETF`, `Round Lot Size`, `Test Issue`, `Financial Status`, `CQS Symbol`, `NASDAQ Symbol`, `NextShares`".to_owned(),
        ),
    ] {
        let db = TestDb::new();
        let p = Project::new();
        job(&p, "", "");
        p.write("data/symbols_valid_meta.csv", &contents);
        let err = run(&p, &db, &[]).expect_code(1).stderr();
        let path = p.path("data/symbols_valid_meta.csv").display().to_string();
        assert!(err.contains(&format!("{path}: {error}")), "{err}");
        // Prices loaded, reports written, nothing of the metadata.
        assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "17");
        assert_eq!(db.scalar("SELECT count(*) FROM symbols"), "0");
        assert_eq!(summary(&p)["failures"], serde_json::json!([format!("{path}: {error}")]));
        assert!(p.path("reports/bad/latest/highest_volume_day.csv").exists());
    }
}

#[test]
fn bad_date_rule_settings_are_config_errors_naming_the_key_and_line() {
    let p = Project::new();
    job(
        &p,
        "min_day = \"1900-13-01\"\nafter_today = \"repair\"\nmin_dya = \"1900-01-01\"",
        "as_of_share = 0",
    );
    let err = p
        .runner(None, &["check", "jobs/bad.toml"])
        .expect_code(2)
        .stderr();
    for expected in [
        "`min_day` must be a date (YYYY-MM-DD) after year 0, found `1900-13-01`",
        "key: `ingest.prices.rules.min_day`",
        " --> jobs/bad.toml:9:11",
        "rule `after_today` has no repair; use `flag` or `reject`",
        "did you mean `min_day`?",
        "`as_of_share` must be above 0 and at most 1, found 0",
        "key: `report.as_of_share`",
    ] {
        assert!(err.contains(expected), "{expected}\n{err}");
    }
}
