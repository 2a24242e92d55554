//! Ingest under real conditions: every quirk of the Kaggle files with its outcome,
//! rules set from the job file, a run killed with SIGKILL mid-way and run again, and
//! two runs of the same job at once.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::util::{Project, TestDb};

const HEADER: &str = "Date,Open,High,Low,Close,Adj Close,Volume\n";

/// A job over `data/q/*.csv` only, with extra lines for its `[[ingest]]` table.
fn quirk_job(p: &Project, extra: &str) {
    p.write(
        "jobs/q.toml",
        &format!(
            "name = \"q\"\ndatabase_url = \"${{DATABASE_URL}}\"\n\n[[ingest]]\nname = \"prices\"\nkind = \"prices\"\npaths = [\"data/q/*.csv\"]\n{extra}\n"
        ),
    );
}

/// The quirky files, each with the outcome the tests below expect.
fn write_quirks(p: &Project) {
    p.write("data/q/EMPTY.csv", "");
    p.write("data/q/HDRONLY.csv", HEADER);
    // BOM, CRLF, trailing blank lines, a row with every field empty.
    p.write(
        "data/q/CRLF.csv",
        "\u{feff}Date,Open,High,Low,Close,Adj Close,Volume\r\n2020-01-02,10,11,9,10.5,10.5,100\r\n2020-01-03,,,,,,\r\n2020-01-06,10.5,11,10,10.75,10.75,806400.0\r\n\r\n\r\n",
    );
    // Columns in another order, mapped by header name.
    p.write(
        "data/q/REORD.csv",
        "Volume,Close,Date,Low,High,Open,Adj Close\n500,2.5,2020-01-02,2,3,2.25,2.4\n",
    );
    // Symbols with a dot, a dash and `#` in the file name.
    p.write(
        "data/q/BRK.A.csv",
        &format!("{HEADER}2020-01-02,1,1,1,1,1,1\n"),
    );
    p.write(
        "data/q/BRK-B.csv",
        &format!("{HEADER}2020-01-02,2,2,2,2,2,2\n"),
    );
    p.write(
        "data/q/AB#C.csv",
        &format!("{HEADER}2020-01-02,3,3,3,3,3,3\n"),
    );
    // The early-history artifacts: an open of 0.0, zero volume, high below low.
    p.write(
        "data/q/OLD.csv",
        &format!("{HEADER}1962-01-02,0.0,0.2233,0.2222,0.2233,0.05,0\n1962-01-03,0.2,0.1,0.3,0.25,0.06,1200\n"),
    );
}

fn run(p: &Project, db: &TestDb, job: &str) -> super::util::Run {
    p.runner(Some(db), &["run", job])
}

#[test]
fn every_quirk_has_its_outcome() {
    let db = TestDb::new();
    let p = Project::new();
    write_quirks(&p);
    quirk_job(&p, "");
    let log = run(&p, &db, "jobs/q.toml").expect_code(0).stderr();
    assert!(
        log.contains("8 files (8 new, 0 grown, 0 replaced, 0 unchanged, 0 failed, 0 missing), 8 rows loaded, 1 rejected, 3 flagged"),
        "{log}"
    );
    assert_eq!(
        db.lines("SELECT symbol, day, open, high, low, close, adj_close, volume FROM daily_prices ORDER BY symbol, day"),
        [
            "AB#C|2020-01-02|3|3|3|3|3|3",
            "BRK-B|2020-01-02|2|2|2|2|2|2",
            "BRK.A|2020-01-02|1|1|1|1|1|1",
            "CRLF|2020-01-02|10|11|9|10.5|10.5|100",
            "CRLF|2020-01-06|10.5|11|10|10.75|10.75|806400",
            "OLD|1962-01-02|NULL|0.2233|0.2222|0.2233|0.05|0",
            "OLD|1962-01-03|0.2|0.1|0.3|0.25|0.06|1200",
            "REORD|2020-01-02|2.25|3|2|2.5|2.4|500",
        ]
    );
    // Empty and header-only files are recorded as loaded with no rows.
    assert_eq!(
        db.lines("SELECT symbol, rows_loaded, rows_rejected FROM ingest_files ORDER BY symbol"),
        [
            "AB#C|1|0",
            "BRK-B|1|0",
            "BRK.A|1|0",
            "CRLF|2|1",
            "EMPTY|0|0",
            "HDRONLY|0|0",
            "OLD|2|0",
            "REORD|1|0"
        ]
    );
    assert_eq!(
        db.lines("SELECT symbol, day, rule FROM data_quality ORDER BY 1, 2, 3"),
        [
            "OLD|1962-01-02|zero_open",
            "OLD|1962-01-02|zero_volume",
            "OLD|1962-01-03|high_below_low"
        ]
    );
    assert_eq!(
        db.lines("SELECT line, reason, raw FROM ingest_rejects"),
        ["3|empty_row: every field but the date is empty|2020-01-03,,,,,,"]
    );
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("reports/q/latest/summary.json")).unwrap();
    let ingest = &summary["ingest"];
    assert_eq!(ingest["files_seen"], 8);
    assert_eq!(ingest["files_skipped"], 0);
    assert_eq!(ingest["files_failed"], 0);
    assert_eq!(ingest["rows_loaded"], 8);
    assert_eq!(ingest["rows_rejected"], 1);
    assert_eq!(
        ingest["rejects_by_rule"],
        serde_json::json!({"empty_row": 1})
    );
    assert_eq!(
        ingest["flags_by_rule"],
        serde_json::json!({"high_below_low": 1, "zero_open": 1, "zero_volume": 1})
    );
    assert!(ingest["bytes_read"].as_u64().unwrap() > 0);
    assert!(ingest["rows_per_sec"].as_f64().unwrap() > 0.0);
}

#[test]
fn rules_are_set_per_source_in_the_job_file() {
    let db = TestDb::new();
    let p = Project::new();
    write_quirks(&p);
    quirk_job(
        &p,
        "\n[ingest.rules]\nzero_open = \"flag\"\nzero_volume = \"reject\"\n",
    );
    let log = run(&p, &db, "jobs/q.toml").expect_code(0).stderr();
    assert!(log.contains("7 rows loaded, 2 rejected"), "{log}");
    // zero_volume now rejects 1962-01-02 (which also kept its 0.0 open as flagged).
    assert_eq!(
        db.lines("SELECT day, open FROM daily_prices WHERE symbol = 'OLD'"),
        ["1962-01-03|0.2"]
    );
    assert_eq!(
        db.lines("SELECT line, reason FROM ingest_rejects WHERE symbol = 'OLD'"),
        ["2|zero_volume: volume 0"]
    );

    // With only `zero_open = "flag"`, the 0.0 open is kept as written.
    let db = TestDb::new();
    quirk_job(&p, "\n[ingest.rules]\nzero_open = \"flag\"\n");
    run(&p, &db, "jobs/q.toml").expect_code(0);
    assert_eq!(
        db.scalar("SELECT open FROM daily_prices WHERE symbol = 'OLD' AND day = '1962-01-02'"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM data_quality WHERE rule = 'zero_open'"),
        "1"
    );
}

#[test]
fn bad_rules_are_config_errors_naming_the_key() {
    let p = Project::new();
    quirk_job(
        &p,
        "\n[ingest.rules]\nzero_opn = \"flag\"\nno_close = \"flag\"\nzero_volume = \"ignore\"\n",
    );
    let err = p
        .runner(None, &["check", "jobs/q.toml"])
        .expect_code(2)
        .stderr();
    assert!(err.contains("unknown rule `zero_opn`"), "{err}");
    assert!(err.contains("key: `ingest.prices.rules.zero_opn`"), "{err}");
    assert!(err.contains("did you mean `zero_open`?"), "{err}");
    assert!(err.contains("rule `no_close` can only reject"), "{err}");
    assert!(err.contains("key: `ingest.prices.rules.no_close`"), "{err}");
    assert!(
        err.contains("unknown outcome `ignore` for rule `zero_volume`"),
        "{err}"
    );
    assert!(err.contains(" --> jobs/q.toml:"), "{err}");
}

#[test]
fn a_file_above_max_reject_ratio_fails_loudly_and_the_rest_load() {
    let db = TestDb::new();
    let p = Project::new();
    write_quirks(&p);
    p.write(
        "data/q/BAD.csv",
        &format!("{HEADER}2020-01-02,1,1,1,1,1,1\n2020-01-03,1,1,1,,1,1\nnot a date,1,1,1,1,1,1\n"),
    );
    quirk_job(&p, "max_reject_ratio = 0.5\n");
    let out = run(&p, &db, "jobs/q.toml").expect_code(1);
    let log = out.stderr();
    assert!(
        log.contains(
            "9 files (8 new, 0 grown, 0 replaced, 0 unchanged, 1 failed, 0 missing), 8 rows loaded"
        ),
        "{log}"
    );
    assert!(log.contains("BAD.csv"), "{log}");
    assert!(
        log.contains("2 of 3 rows rejected (66.7%), above max_reject_ratio 0.5"),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM daily_prices WHERE symbol = 'BAD'"),
        "0"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM ingest_files WHERE symbol = 'BAD'"),
        "0"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "8");
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("reports/q/latest/summary.json")).unwrap();
    assert_eq!(summary["ingest"]["files_failed"], 1);
    assert!(summary["ingest"]["failures"][0]["path"]
        .as_str()
        .unwrap()
        .ends_with("BAD.csv"));
}

/// A generated dataset big enough to kill a run part-way, and a job over it.
fn generated_project(symbols: &str, years: &str) -> Project {
    let p = Project::new();
    p.generate(symbols, years, "11");
    p.write(
        "jobs/g.toml",
        "name = \"g\"\ndatabase_url = \"${DATABASE_URL}\"\n\n[[ingest]]\nname = \"prices\"\nkind = \"prices\"\npaths = [\"gen/stocks/*.csv\", \"gen/etfs/*.csv\"]\n",
    );
    p
}

fn spawn(p: &Project, db: &TestDb, job: &str, env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
    cmd.current_dir(p.dir.path())
        .args(["run", job])
        .env_remove("RUST_LOG")
        .env("DATABASE_URL", &db.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("start runner")
}

/// Files recorded in the manifest, or 0 while the schema does not exist yet.
fn manifest_count(db: &TestDb) -> u64 {
    runner::analysis::execute::query_table(&mut db.conn(), "t", "SELECT count(*) FROM ingest_files")
        .ok()
        .and_then(|t| t.rows[0][0].clone())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Everything a load leaves behind, as one comparable fingerprint.
fn fingerprint(db: &TestDb) -> Vec<String> {
    vec![
        db.scalar("SELECT count(*) FROM daily_prices"),
        db.scalar(
            "SELECT md5(string_agg(concat_ws('|', symbol, day, open, high, low, close, adj_close, volume), ',' ORDER BY symbol, day)) FROM daily_prices",
        ),
        db.scalar("SELECT md5(string_agg(concat_ws('|', symbol, day, rule), ',' ORDER BY symbol, day, rule)) FROM data_quality"),
        db.scalar("SELECT md5(string_agg(concat_ws('|', symbol, line, reason), ',' ORDER BY path, line)) FROM ingest_rejects"),
        db.scalar(
            "SELECT md5(string_agg(concat_ws('|', symbol, size_bytes, content_hash, rows_loaded, rows_rejected, last_day), ',' ORDER BY symbol)) FROM ingest_files",
        ),
    ]
}

#[test]
fn killed_mid_way_then_rerun_equals_a_clean_load() {
    let p = generated_project("300", "3");
    let clean = TestDb::new();
    run(&p, &clean, "jobs/g.toml").expect_code(0);
    let expected = fingerprint(&clean);
    assert_eq!(clean.scalar("SELECT count(*) FROM ingest_files"), "300");
    assert_eq!(
        clean.scalar("SELECT sum(rows_loaded) FROM ingest_files"),
        expected[0]
    );

    let db = TestDb::new();
    // One file per transaction, so there are many commits to be killed between.
    let mut child = spawn(
        &p,
        &db,
        "jobs/g.toml",
        &[("RUNNER_INGEST_BATCH_BYTES", "1")],
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while Instant::now() < deadline {
        seen = manifest_count(&db);
        if seen >= 20 || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL the runner");
    child.wait().unwrap();
    let at_kill = manifest_count(&db);
    assert!(
        seen > 0 && at_kill < 300,
        "not killed mid-way: {at_kill} of 300 files were loaded"
    );
    // Every committed file is complete: its manifest count matches its rows.
    assert_eq!(
        db.scalar("SELECT count(*) FROM daily_prices"),
        db.scalar("SELECT coalesce(sum(rows_loaded), 0) FROM ingest_files")
    );

    let log = run(&p, &db, "jobs/g.toml").expect_code(0).stderr();
    assert!(
        log.contains(&format!("300 files ({} new", 300 - at_kill)),
        "{log}"
    );
    assert_eq!(fingerprint(&db), expected);
    assert_eq!(db.scalar("SELECT count(*) FROM (SELECT symbol, day FROM daily_prices GROUP BY 1, 2 HAVING count(*) > 1) d"), "0");
}

#[test]
fn two_runs_at_once_load_exactly_once() {
    let p = generated_project("40", "2");
    let clean = TestDb::new();
    run(&p, &clean, "jobs/g.toml").expect_code(0);
    let expected = fingerprint(&clean);

    let db = TestDb::new();
    let first = spawn(&p, &db, "jobs/g.toml", &[]);
    let second = spawn(&p, &db, "jobs/g.toml", &[]);
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    for out in &outputs {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let logs: Vec<String> = outputs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    // One of them loaded everything; the other waited for the lock and found nothing to do.
    assert!(
        logs.iter().any(|l| l.contains("40 files (40 new")),
        "{logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("40 files (0 new, 0 grown, 0 replaced, 40 unchanged")),
        "{logs:?}"
    );
    assert_eq!(fingerprint(&db), expected);
    assert_eq!(
        db.lines("SELECT status FROM runs ORDER BY id"),
        ["succeeded", "succeeded"]
    );
}
