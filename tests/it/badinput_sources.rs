//! Hostile file layouts (issue 10): two files for one symbol, names that differ only in
//! case or spaces, a symbol moving folders, a missing folder, a pattern left empty,
//! vanished files under `on_missing`, glob characters in folder names, and everything a
//! pattern sees but cannot load. Each case asserts the exit code, the exact log line,
//! what `daily_prices` holds afterwards and what `summary.json` lists.

use super::util::{Project, Run, TestDb};

const HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

/// Two rows, every price `close` (distinguishes which file was loaded).
fn bars(close: &str) -> String {
    format!("{HEADER}2020-01-02,{close},{close},{close},{close},{close},100\n2020-01-03,{close},{close},{close},{close},{close},200\n")
}

/// A project without the fixture data, and `jobs/src.toml` with a `stocks` and an `etfs`
/// source; `stocks` and `etfs` are extra lines for each `[[ingest]]` table.
fn project(stocks: &str, etfs: &str) -> Project {
    let p = Project::new();
    std::fs::remove_dir_all(p.path("data")).unwrap();
    write_job(&p, stocks, etfs);
    p
}

fn write_job(p: &Project, stocks: &str, etfs: &str) {
    p.write(
        "jobs/src.toml",
        &format!(
            "name = \"src\"\ndatabase_url = \"${{DATABASE_URL}}\"\n\n[vars]\ndata_dir = \"data\"\n\n\
             [[ingest]]\nname = \"stocks\"\nkind = \"prices\"\npaths = [\"${{data_dir}}/stocks/*.csv\"]\n{stocks}\n\n\
             [[ingest]]\nname = \"etfs\"\nkind = \"prices\"\npaths = [\"${{data_dir}}/etfs/*.csv\"]\n{etfs}\n"
        ),
    );
}

fn run(p: &Project, db: &TestDb, extra: &[&str]) -> Run {
    let mut args = vec!["run", "jobs/src.toml"];
    args.extend_from_slice(extra);
    p.runner(Some(db), &args)
}

fn summary(p: &Project) -> serde_json::Value {
    serde_json::from_str(&p.read("reports/src/latest/summary.json")).unwrap()
}

/// The message of every log line at `level` (timestamp and level cut off).
fn logged(log: &str, level: &str) -> Vec<String> {
    let marker = format!(" {level} ");
    log.lines()
        .filter_map(|l| l.split_once(&marker).map(|(_, m)| m.to_owned()))
        .collect()
}

fn prices(db: &TestDb) -> Vec<String> {
    db.lines("SELECT symbol, day, close FROM daily_prices ORDER BY symbol, day")
}

fn manifest(db: &TestDb) -> Vec<String> {
    db.lines("SELECT symbol, asset_class, path FROM ingest_files ORDER BY symbol")
}

/// `dir` with the test's temporary folder cut off, for stable expectations.
fn rel(p: &Project, text: &str) -> String {
    text.replace(&p.dir.path().display().to_string(), "<p>")
}

#[test]
fn two_files_for_one_symbol_fail_that_symbol_and_keep_its_rows() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("data/stocks/SPY.csv", &bars("10"));
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);

    // A stray etfs/SPY.csv appears, and AAA gets a new day.
    p.write("data/etfs/SPY.csv", &bars("99"));
    p.write(
        "data/stocks/AAA.csv",
        &format!("{}2020-01-06,2,2,2,2,2,300\n", bars("1")),
    );
    let out = run(&p, &db, &[]).expect_code(1);
    let log = rel(&p, &out.stderr());
    let conflict =
        "symbol `SPY` comes from 2 files: <p>/data/etfs/SPY.csv, <p>/data/stocks/SPY.csv; \
                    none is loaded and the rows already loaded are kept (remove the stray file, or \
                    give one source a higher `priority`)";
    assert_eq!(logged(&log, "ERROR"), [conflict], "{log}");
    assert!(
        log.lines()
            .last()
            .unwrap()
            .starts_with(&format!("{conflict} (see <p>/reports/src/")),
        "{log}"
    );
    // SPY keeps its stock rows and class; AAA's new day loaded.
    assert_eq!(
        prices(&db),
        [
            "AAA|2020-01-02|1",
            "AAA|2020-01-03|1",
            "AAA|2020-01-06|2",
            "ETF1|2020-01-02|5",
            "ETF1|2020-01-03|5",
            "SPY|2020-01-02|10",
            "SPY|2020-01-03|10",
        ]
    );
    assert_eq!(
        rel(&p, &manifest(&db).join("\n")),
        "AAA|stock|<p>/data/stocks/AAA.csv\nETF1|etf|<p>/data/etfs/ETF1.csv\nSPY|stock|<p>/data/stocks/SPY.csv"
    );
    let s = summary(&p);
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["status"], "partial");
    assert_eq!(
        rel(&p, &s["ingest"]["conflicts"].to_string()),
        serde_json::json!([{
            "paths": ["<p>/data/etfs/SPY.csv", "<p>/data/stocks/SPY.csv"],
            "error": conflict,
        }])
        .to_string()
    );
    assert_eq!(s["ingest"]["missing"], serde_json::json!([]));
    assert!(p.read("reports/src/latest/report.md").contains(
        "\n- ingest: 1 symbol left ambiguous; these prices may be stale (see summary.json)\n"
    ));
}

#[test]
fn priority_says_which_wins_and_the_loser_is_listed_as_shadowed() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("data/stocks/SPY.csv", &bars("10"));
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);

    p.write("data/etfs/SPY.csv", &bars("99"));
    write_job(&p, "", "priority = 1");
    let out = run(&p, &db, &[]).expect_code(0);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "WARN"),
        ["not loaded: <p>/data/stocks/SPY.csv: shadowed by <p>/data/etfs/SPY.csv (source `etfs` has the higher priority)"],
        "{log}"
    );
    assert!(
        log.contains(
            "3 files (0 new, 0 grown, 1 replaced, 2 unchanged, 0 failed, 0 missing), 2 rows loaded"
        ),
        "{log}"
    );
    // The job chose: SPY is now the ETF's rows and class.
    assert_eq!(
        prices(&db),
        [
            "AAA|2020-01-02|1",
            "AAA|2020-01-03|1",
            "ETF1|2020-01-02|5",
            "ETF1|2020-01-03|5",
            "SPY|2020-01-02|99",
            "SPY|2020-01-03|99",
        ]
    );
    assert_eq!(
        rel(&p, &manifest(&db).join("\n")),
        "AAA|stock|<p>/data/stocks/AAA.csv\nETF1|etf|<p>/data/etfs/ETF1.csv\nSPY|etf|<p>/data/etfs/SPY.csv"
    );
    assert_eq!(
        rel(&p, &summary(&p)["ingest"]["ignored"].to_string()),
        serde_json::json!([{
            "path": "<p>/data/stocks/SPY.csv",
            "error": "shadowed by <p>/data/etfs/SPY.csv (source `etfs` has the higher priority)",
        }])
        .to_string()
    );
}

#[test]
fn names_differing_only_by_spaces_or_case_are_conflicts() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("data/stocks/AAPL.csv", &bars("10"));
    p.write("data/stocks/MSFT.csv", &bars("20"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);

    p.write("data/stocks/AAPL .csv", &bars("66"));
    p.write("data/stocks/msft.csv", &bars("77"));
    let out = run(&p, &db, &[]).expect_code(1);
    let log = rel(&p, &out.stderr());
    let tail = "none is loaded and the rows already loaded are kept (remove the stray file, or give one source a higher `priority`)";
    assert_eq!(
        logged(&log, "ERROR"),
        [
            format!("symbols `AAPL ` (<p>/data/stocks/AAPL .csv), `AAPL` (<p>/data/stocks/AAPL.csv) differ only in case or surrounding spaces; {tail}"),
            format!("symbols `MSFT` (<p>/data/stocks/MSFT.csv), `msft` (<p>/data/stocks/msft.csv) differ only in case or surrounding spaces; {tail}"),
        ],
        "{log}"
    );
    assert_eq!(
        prices(&db),
        [
            "AAPL|2020-01-02|10",
            "AAPL|2020-01-03|10",
            "ETF1|2020-01-02|5",
            "ETF1|2020-01-03|5",
            "MSFT|2020-01-02|20",
            "MSFT|2020-01-03|20",
        ]
    );
    assert_eq!(
        summary(&p)["ingest"]["conflicts"].as_array().unwrap().len(),
        2
    );
}

#[test]
fn a_case_variant_of_a_loaded_symbol_is_refused_even_alone() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("data/stocks/AAPL.csv", &bars("10"));
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);

    // Renamed: AAPL.csv is gone, aapl.csv holds other prices.
    std::fs::remove_file(p.path("data/stocks/AAPL.csv")).unwrap();
    p.write("data/stocks/aapl.csv", &bars("66"));
    let out = run(&p, &db, &[]).expect_code(1);
    let log = rel(&p, &out.stderr());
    assert!(
        logged(&log, "ERROR").contains(&"symbol `aapl` differs only in case or surrounding spaces from `AAPL`, loaded from <p>/data/stocks/AAPL.csv: not loaded, the rows of `AAPL` are kept (to let it replace them, list it in a source with a higher `priority` than `stocks`) file=<p>/data/stocks/aapl.csv".to_owned()),
        "{log}"
    );
    assert_eq!(
        logged(&log, "WARN"),
        ["1 file loaded before is gone, rows kept (on_missing = \"keep\"): <p>/data/stocks/AAPL.csv"],
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT DISTINCT symbol FROM daily_prices ORDER BY 1"),
        ["AAA", "AAPL", "ETF1"]
    );
    assert_eq!(
        db.scalar("SELECT string_agg(close::text, ',') FROM daily_prices WHERE symbol = 'AAPL'"),
        "10,10"
    );
}

#[test]
fn a_symbol_moving_to_another_folder_is_refused_unless_its_source_outranks() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("data/stocks/X.csv", &bars("10"));
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);

    // X leaves stocks/ and turns up in etfs/: no silent class flip, no deleted rows.
    std::fs::remove_file(p.path("data/stocks/X.csv")).unwrap();
    p.write("data/etfs/X.csv", &bars("99"));
    let out = run(&p, &db, &[]).expect_code(1);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "ERROR"),
        ["symbol `X` was loaded from <p>/data/stocks/X.csv as `stock`; this file would make it `etf`: not loaded, the rows are kept (to let it replace them, give source `etfs` a higher `priority` than `stocks`) file=<p>/data/etfs/X.csv"],
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT close FROM daily_prices WHERE symbol = 'X' ORDER BY day"),
        ["10", "10"]
    );
    assert_eq!(
        db.scalar("SELECT asset_class FROM ingest_files WHERE symbol = 'X'"),
        "stock"
    );

    // The job says etfs wins: X is replaced and becomes an ETF.
    write_job(&p, "", "priority = 1");
    run(&p, &db, &[]).expect_code(0);
    assert_eq!(
        db.lines("SELECT close FROM daily_prices WHERE symbol = 'X' ORDER BY day"),
        ["99", "99"]
    );
    assert_eq!(
        db.scalar("SELECT asset_class FROM ingest_files WHERE symbol = 'X'"),
        "etf"
    );
}

#[test]
fn a_file_at_another_path_may_grow_the_symbol_but_not_replace_it() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("d1/stocks/X.csv", &bars("10"));
    p.write("d1/etfs/E.csv", &bars("5"));
    run(&p, &db, &["--var", "data_dir=d1"]).expect_code(0);

    // The data moved to d2: a grown X appends, a corrected E is refused.
    p.write(
        "d2/stocks/X.csv",
        &format!("{}2020-01-06,11,11,11,11,11,300\n", bars("10")),
    );
    p.write("d2/etfs/E.csv", &bars("6"));
    let out = run(&p, &db, &["--var", "data_dir=d2"]).expect_code(1);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "ERROR"),
        ["symbol `E` was loaded from <p>/d1/etfs/E.csv; this file would replace its rows: not loaded, the rows are kept (to let it replace them, list it in a source with a higher `priority` than `etfs`) file=<p>/d2/etfs/E.csv"],
        "{log}"
    );
    assert_eq!(
        prices(&db),
        [
            "E|2020-01-02|5",
            "E|2020-01-03|5",
            "X|2020-01-02|10",
            "X|2020-01-03|10",
            "X|2020-01-06|11",
        ]
    );
    assert_eq!(
        rel(&p, &manifest(&db).join("\n")),
        "E|etf|<p>/d1/etfs/E.csv\nX|stock|<p>/d2/stocks/X.csv"
    );
}

#[test]
fn a_missing_folder_fails_the_run_and_deletes_nothing() {
    let db = TestDb::new();
    // Even with on_missing = "delete": a folder that is gone is a missing input.
    let p = project("on_missing = \"delete\"", "on_missing = \"delete\"");
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);

    let out = run(&p, &db, &["--var", "data_dir=/nonexistent"]).expect_code(1);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "ERROR"),
        [
            "pattern `${data_dir}/stocks/*.csv`: folder /nonexistent/stocks does not exist",
            "pattern `${data_dir}/etfs/*.csv`: folder /nonexistent/etfs does not exist",
        ],
        "{log}"
    );
    assert_eq!(
        logged(&log, "WARN"),
        ["2 files loaded before are gone, rows kept: a pattern of their source failed: <p>/data/etfs/ETF1.csv, <p>/data/stocks/AAA.csv"],
        "{log}"
    );
    assert_eq!(
        prices(&db),
        [
            "AAA|2020-01-02|1",
            "AAA|2020-01-03|1",
            "ETF1|2020-01-02|5",
            "ETF1|2020-01-03|5",
        ]
    );
    let s = summary(&p);
    assert_eq!(s["exit_code"], 1);
    assert_eq!(
        s["ingest"]["pattern_failures"],
        serde_json::json!([
            "pattern `${data_dir}/stocks/*.csv`: folder /nonexistent/stocks does not exist",
            "pattern `${data_dir}/etfs/*.csv`: folder /nonexistent/etfs does not exist",
        ])
    );
    assert_eq!(
        rel(&p, &s["ingest"]["missing"].to_string()),
        serde_json::json!([
            {"path": "<p>/data/etfs/ETF1.csv", "symbol": "ETF1", "rows": "kept"},
            {"path": "<p>/data/stocks/AAA.csv", "symbol": "AAA", "rows": "kept"},
        ])
        .to_string()
    );
    let report = p.read("reports/src/latest/report.md");
    assert!(
        report.contains(
            "\n- ingest: 2 patterns without input; these prices may be stale (see summary.json)\n\
             - ingest: 2 files loaded before are gone, rows kept (see summary.json)\n"
        ),
        "{report}"
    );
}

#[test]
fn a_pattern_that_matched_before_and_now_matches_nothing_fails() {
    let db = TestDb::new();
    let p = project("", "on_missing = \"delete\"");
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    p.write("data/etfs/ETF2.csv", &bars("6"));
    run(&p, &db, &[]).expect_code(0);

    // The mount is there but empty.
    std::fs::remove_file(p.path("data/etfs/ETF1.csv")).unwrap();
    std::fs::remove_file(p.path("data/etfs/ETF2.csv")).unwrap();
    let out = run(&p, &db, &[]).expect_code(1);
    let log = rel(&p, &out.stderr());
    let message = "pattern `${data_dir}/etfs/*.csv` matches no file in <p>/data/etfs, but 2 files loaded before came from it (e.g. <p>/data/etfs/ETF1.csv); their rows are kept";
    assert_eq!(logged(&log, "ERROR"), [message], "{log}");
    assert_eq!(
        db.lines("SELECT DISTINCT symbol FROM daily_prices ORDER BY 1"),
        ["AAA", "ETF1", "ETF2"]
    );
    assert_eq!(
        rel(&p, &summary(&p)["ingest"]["pattern_failures"].to_string()),
        serde_json::json!([message]).to_string()
    );
}

#[test]
fn vanished_files_are_one_log_line_and_keep_their_rows_by_default() {
    let db = TestDb::new();
    let p = project("", "");
    for s in ["A", "B", "C", "D", "E", "F", "G"] {
        p.write(&format!("data/stocks/{s}.csv"), &bars("1"));
    }
    p.write("data/etfs/ETF1.csv", &bars("5"));
    run(&p, &db, &[]).expect_code(0);
    for s in ["A", "B", "C", "D", "E", "F"] {
        std::fs::remove_file(p.path(&format!("data/stocks/{s}.csv"))).unwrap();
    }
    let out = run(&p, &db, &[]).expect_code(0);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "WARN"),
        ["6 files loaded before are gone, rows kept (on_missing = \"keep\"): <p>/data/stocks/A.csv, <p>/data/stocks/B.csv, <p>/data/stocks/C.csv, <p>/data/stocks/D.csv, <p>/data/stocks/E.csv, and 1 more (see summary.json)"],
        "{log}"
    );
    assert!(
        log.contains("(0 new, 0 grown, 0 replaced, 2 unchanged, 0 failed, 6 missing)"),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(DISTINCT symbol) FROM daily_prices"),
        "8"
    );
    let missing = summary(&p)["ingest"]["missing"].clone();
    assert_eq!(missing.as_array().unwrap().len(), 6);
    assert_eq!(
        rel(&p, &missing[5].to_string()),
        r#"{"path":"<p>/data/stocks/F.csv","rows":"kept","symbol":"F"}"#
    );
}

#[test]
fn on_missing_delete_removes_the_symbol_and_derived_data_equals_a_clean_load() {
    use super::derived;
    let p = derived::project();
    p.write(
        "jobs/derived.toml",
        &derived::JOB.replace(
            "kind = \"prices\"",
            "kind = \"prices\"\non_missing = \"delete\"",
        ),
    );
    derived::write_symbols(&p, 3, 300);
    let db = TestDb::new();
    derived::run(&p, &db);
    std::fs::remove_file(p.path("data/stocks/S001.csv")).unwrap();
    let out = derived::run(&p, &db);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "WARN"),
        ["1 file loaded before is gone, rows deleted (on_missing = \"delete\"): <p>/data/stocks/S001.csv"],
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT DISTINCT symbol FROM daily_prices ORDER BY 1"),
        ["S000", "S002"]
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM prices_weekly WHERE symbol = 'S001'"),
        "0"
    );
    let s: serde_json::Value =
        serde_json::from_str(&p.read("reports/derived/latest/summary.json")).unwrap();
    assert_eq!(
        rel(&p, &s["ingest"]["missing"].to_string()),
        r#"[{"path":"<p>/data/stocks/S001.csv","rows":"deleted","symbol":"S001"}]"#
    );
    // Aggregates, indicators and the manifest are what a load of the two files gives.
    assert_eq!(derived::fingerprint(&db), derived::clean_load(&p));
}

#[test]
fn glob_characters_in_a_folder_name_are_taken_literally() {
    let db = TestDb::new();
    let p = project("", "");
    p.write("d[1]*x/stocks/AAA.csv", &bars("1"));
    p.write("d[1]*x/etfs/ETF1.csv", &bars("5"));
    // Read as a glob, `d[1]*x` would also match this folder.
    p.write("d1-decoy-x/stocks/DECOY.csv", &bars("9"));
    run(&p, &db, &["--var", "data_dir=d[1]*x"]).expect_code(0);
    assert_eq!(
        db.lines("SELECT DISTINCT symbol FROM daily_prices ORDER BY 1"),
        ["AAA", "ETF1"]
    );
    assert_eq!(
        rel(&p, &manifest(&db).join("\n")),
        "AAA|stock|<p>/d[1]*x/stocks/AAA.csv\nETF1|etf|<p>/d[1]*x/etfs/ETF1.csv"
    );
}

#[test]
fn everything_a_pattern_sees_and_does_not_load_is_listed_with_why() {
    use std::os::unix::ffi::OsStrExt;
    let db = TestDb::new();
    let p = project("", "");
    p.write("data/stocks/AAA.csv", &bars("1"));
    p.write("data/etfs/ETF1.csv", &bars("5"));
    p.write("data/stocks/DIR.csv/inner.csv", &bars("2"));
    std::os::unix::fs::symlink(
        p.path("data/stocks/nowhere.csv"),
        p.path("data/stocks/LINK.csv"),
    )
    .unwrap();
    p.write("data/stocks/UPPER.CSV", &bars("3"));
    let latin1 = p
        .path("data/stocks")
        .join(std::ffi::OsStr::from_bytes(b"CAF\xc9.csv"));
    std::fs::write(&latin1, bars("4")).unwrap();
    // A link to a good file is a good file.
    std::os::unix::fs::symlink(p.path("data/stocks/AAA.csv"), p.path("data/stocks/BBB.csv"))
        .unwrap();

    let out = run(&p, &db, &[]).expect_code(0);
    let log = rel(&p, &out.stderr());
    assert_eq!(
        logged(&log, "WARN"),
        [
            "not loaded: <p>/data/stocks/CAF\u{fffd}.csv: the file name is not valid UTF-8",
            "not loaded: <p>/data/stocks/DIR.csv: a directory, not a file",
            "not loaded: <p>/data/stocks/LINK.csv: a broken symbolic link",
            "not loaded: <p>/data/stocks/UPPER.CSV: matches `*.csv` only when case is ignored; not loaded (patterns are case-sensitive: add one for this spelling to load it)",
        ],
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT DISTINCT symbol FROM daily_prices ORDER BY 1"),
        ["AAA", "BBB", "ETF1"]
    );
    let ignored = summary(&p)["ingest"]["ignored"].clone();
    let listed: Vec<String> = ignored
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            rel(
                &p,
                &format!(
                    "{} | {}",
                    i["path"].as_str().unwrap(),
                    i["error"].as_str().unwrap()
                ),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            "<p>/data/stocks/CAF\u{fffd}.csv | the file name is not valid UTF-8",
            "<p>/data/stocks/DIR.csv | a directory, not a file",
            "<p>/data/stocks/LINK.csv | a broken symbolic link",
            "<p>/data/stocks/UPPER.CSV | matches `*.csv` only when case is ignored; not loaded (patterns are case-sensitive: add one for this spelling to load it)",
        ]
    );
    assert!(p
        .read("reports/src/latest/report.md")
        .contains("\n- ingest: 4 paths matched and not loaded (see summary.json)\n"));
}

#[test]
fn bad_on_missing_and_priority_values_are_config_errors_at_their_line() {
    let p = project("on_missing = \"drop\"", "priority = \"high\"");
    let err = p
        .runner(None, &["check", "jobs/src.toml", "--offline"])
        .expect_code(2)
        .stderr();
    assert!(
        err.contains("unknown variant `drop`, expected `keep` or `delete`"),
        "{err}"
    );
    assert!(err.contains(" --> jobs/src.toml:11:"), "{err}");
    let p = project("", "priority = \"high\"");
    let err = p
        .runner(None, &["check", "jobs/src.toml", "--offline"])
        .expect_code(2)
        .stderr();
    assert!(
        err.contains("invalid type: string \"high\", expected i64"),
        "{err}"
    );
    assert!(err.contains(" --> jobs/src.toml:17:"), "{err}");
}
