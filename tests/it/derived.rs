//! What is derived from the prices stays equal to a clean load: the weekly and monthly
//! aggregates and the incremental `analytics.indicators`, after corrections, truncations,
//! late days, replaced files and runs killed at any point.
//!
//! The reference is always a fresh database loaded from the same files in one clean run,
//! compared table by table with [`fingerprint`].

use std::fmt::Write as _;

use super::util::{Project, TestDb};

/// A job with everything derived: both aggregates (the default), the incremental
/// indicators and a report with CSV, Markdown and HTML.
pub const JOB: &str = r#"
name = "derived"
database_url = "${DATABASE_URL:-postgres://postgres@localhost:5432/stocks}"

[[ingest]]
name = "prices"
kind = "prices"
paths = ["data/stocks/*.csv"]

[[analysis]]
name = "indicators"
template = "market/indicators.sql"
materialize = "incremental"
time_column = "day"
unique_key = ["symbol", "day"]
outputs = []

[[analysis]]
name = "weekly_closes"
template = "weekly_closes.sql"

[report]
dir = "reports/derived"
formats = ["csv", "markdown", "html"]
"#;

const WEEKLY_CLOSES: &str =
    "SELECT symbol, bucket, close, trading_days FROM prices_weekly ORDER BY symbol, bucket";

/// A project with [`JOB`] and no data yet.
pub fn project() -> Project {
    let p = Project::new();
    std::fs::remove_dir_all(p.path("data")).unwrap();
    p.write("jobs/derived.toml", JOB);
    p.write("templates/weekly_closes.sql", WEEKLY_CLOSES);
    p
}

/// A reproducible daily file: `days` weekdays from 2019-01-01, a random walk seeded by
/// `seed`, with a Kaggle header.
pub fn prices_csv(seed: u64, days: usize) -> String {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    let mut close = 20.0 + (seed % 50) as f64;
    let mut day = chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap();
    let mut written = 0;
    while written < days {
        use chrono::Datelike;
        if day.weekday().number_from_monday() <= 5 {
            let open = close;
            close = (close * (1.0 + (next() - 0.5) * 0.06)).max(1.0);
            let high = open.max(close) * (1.0 + next() * 0.01);
            let low = open.min(close) * (1.0 - next() * 0.01);
            let volume = 1_000 + (next() * 100_000.0) as u64;
            let _ = writeln!(
                out,
                "{day},{open:.4},{high:.4},{low:.4},{close:.4},{close:.4},{volume}"
            );
            written += 1;
        }
        day = day.succ_opt().unwrap();
    }
    out
}

/// Write `symbols` files `data/stocks/S000.csv`… of `days` rows each.
pub fn write_symbols(p: &Project, symbols: u64, days: usize) {
    for i in 0..symbols {
        p.write(
            &format!("data/stocks/S{i:03}.csv"),
            &prices_csv(i + 1, days),
        );
    }
}

/// Every table a run writes, each as `table: rows, md5 of its sorted rows as text`.
/// Manifest timestamps of the load itself are left out; everything else must match.
pub fn fingerprint(db: &TestDb) -> Vec<String> {
    let tables = [
        ("daily_prices", "SELECT * FROM daily_prices"),
        ("prices_weekly", "SELECT * FROM prices_weekly"),
        ("prices_monthly", "SELECT * FROM prices_monthly"),
        ("analytics.indicators", "SELECT * FROM analytics.indicators"),
        ("data_quality", "SELECT * FROM data_quality"),
        ("ingest_rejects", "SELECT * FROM ingest_rejects"),
        (
            "ingest_files",
            "SELECT symbol, path, source, asset_class, size_bytes, mtime_ns, content_hash, \
             rows_loaded, rows_rejected, last_day FROM ingest_files",
        ),
    ];
    tables
        .iter()
        .map(|(name, sql)| {
            let line = db.scalar(&format!(
                "SELECT count(*) || ', ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) \
                 FROM ({sql}) t"
            ));
            format!("{name}: {line}")
        })
        .collect()
}

/// Load the project's files into a fresh database in one clean run.
pub fn clean_load(p: &Project) -> Vec<String> {
    let db = TestDb::new();
    run(p, &db);
    fingerprint(&db)
}

pub fn run(p: &Project, db: &TestDb) -> super::util::Run {
    p.runner(Some(db), &["run", "jobs/derived.toml"])
        .expect_code(0)
}

/// Replace line `n` (1-based, header = 1) of a file.
fn edit_line(p: &Project, rel: &str, n: usize, f: impl Fn(&str) -> String) {
    let text = p.read(rel);
    let lines: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i + 1 == n { f(l) } else { l.to_owned() })
        .collect();
    p.write(rel, &(lines.join("\n") + "\n"));
}

fn set_close(line: &str, close: &str) -> String {
    let mut fields: Vec<&str> = line.split(',').collect();
    fields[4] = close;
    fields.join(",")
}

/// Load, change the files with `change`, run again: everything equals a clean load.
fn after_change_equals_clean_load(change: impl Fn(&Project)) {
    let p = project();
    write_symbols(&p, 3, 300);
    let db = TestDb::new();
    run(&p, &db);
    change(&p);
    run(&p, &db);
    assert_eq!(fingerprint(&db), clean_load(&p));
}

#[test]
fn a_changed_close_mid_file_recomputes_indicators_from_that_day() {
    after_change_equals_clean_load(|p| {
        edit_line(p, "data/stocks/S001.csv", 150, |l| set_close(l, "33.3333"))
    });
}

#[test]
fn a_truncated_file_leaves_no_stale_derived_rows() {
    after_change_equals_clean_load(|p| {
        let text = p.read("data/stocks/S002.csv");
        let kept: Vec<&str> = text.lines().take(200).collect();
        p.write("data/stocks/S002.csv", &(kept.join("\n") + "\n"));
    });
}

#[test]
fn a_replaced_file_recomputes_its_symbol() {
    after_change_equals_clean_load(|p| {
        p.write("data/stocks/S000.csv", &prices_csv(99, 250));
    });
}

/// A day missing from the loaded file, appended at its end later: a late addition to
/// history (loaded, not rejected as "already loaded"), and everything after it is
/// recomputed.
#[test]
fn an_appended_out_of_order_day_is_loaded_and_recomputes_what_follows() {
    let p = project();
    write_symbols(&p, 3, 300);
    let full = p.read("data/stocks/S001.csv");
    let lines: Vec<&str> = full.lines().collect();
    let late = lines[120];
    let without: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 120)
        .map(|(_, l)| *l)
        .collect();
    p.write("data/stocks/S001.csv", &(without.join("\n") + "\n"));
    let db = TestDb::new();
    run(&p, &db);
    p.write(
        "data/stocks/S001.csv",
        &(without.join("\n") + "\n" + late + "\n"),
    );
    let log = run(&p, &db).stderr();
    assert!(log.contains("1 grown"), "{log}");
    assert!(log.contains("1 rows loaded, 0 rejected"), "{log}");
    assert_eq!(fingerprint(&db), clean_load(&p));
}

/// A typo row dated in the future does not make every later genuine row a duplicate.
#[test]
fn a_future_typo_row_does_not_block_later_rows() {
    let p = project();
    write_symbols(&p, 1, 100);
    let base = p.read("data/stocks/S000.csv");
    p.write(
        "data/stocks/S000.csv",
        &format!("{base}2031-01-01,1,1,1,1,1,1\n"),
    );
    let db = TestDb::new();
    run(&p, &db);
    let grown = format!("{base}2031-01-01,1,1,1,1,1,1\n2019-05-21,2,2,2,2,2,2\n");
    p.write("data/stocks/S000.csv", &grown);
    let log = run(&p, &db).stderr();
    assert!(log.contains("1 rows loaded, 0 rejected"), "{log}");
    assert_eq!(
        db.scalar("SELECT close FROM daily_prices WHERE symbol = 'S000' AND day = '2019-05-21'"),
        "2"
    );
    assert_eq!(fingerprint(&db), clean_load(&p));
}

/// A run that no file changed still drains what an earlier run logged.
#[test]
fn a_run_drains_the_log_even_when_no_file_changed() {
    let p = project();
    write_symbols(&p, 2, 120);
    let db = TestDb::new();
    run(&p, &db);
    let clean = fingerprint(&db);
    // As if a run had loaded and died before refreshing: stale buckets, logged span.
    // (A continuous aggregate cannot be edited; there the log is the only witness.)
    if !db.has_timescale() {
        db.execute("DELETE FROM prices_weekly WHERE symbol = 'S001'");
    }
    db.execute("DELETE FROM analytics.indicators WHERE symbol = 'S001' AND day > '2019-03-01'");
    db.execute(
        "INSERT INTO change_log (source, symbol, first_at, last_at) \
         VALUES ('daily_prices', 'S001', '2019-01-01', '2019-06-28')",
    );
    let log = run(&p, &db).stderr();
    assert!(
        log.contains("0 new, 0 grown, 0 replaced, 2 unchanged"),
        "{log}"
    );
    assert!(
        log.contains("refreshed prices_weekly for 1 symbol(s)"),
        "{log}"
    );
    assert_eq!(fingerprint(&db), clean);
    assert_eq!(db.scalar("SELECT count(*) FROM change_log"), "0");
}

/// A job that only loads the files and keeps both aggregates.
const AGGREGATES_JOB: &str = r#"
name = "aggregates"
database_url = "${DATABASE_URL:-postgres://postgres@localhost:5432/stocks}"

[[ingest]]
name = "prices"
kind = "prices"
# The test writes stocks only: a pattern whose folder does not exist fails the run.
paths = ["data/stocks/*.csv"]
"#;

/// The aggregates as loaded, then as the SQL definition recomputes them from
/// `daily_prices` (the consumers told to rebuild): the two must be the same bytes.
fn ingest_buckets_equal_sql_buckets(p: &Project) {
    p.write("jobs/aggregates.toml", AGGREGATES_JOB);
    let db = TestDb::new();
    let log = p
        .runner(Some(&db), &["run", "jobs/aggregates.toml"])
        .expect_code(0)
        .stderr();
    if !db.has_timescale() {
        // On plain PostgreSQL the ingest wrote every bucket; nothing was refreshed.
        assert!(
            log.contains("prices_weekly: the ingest wrote the buckets of all"),
            "{log}"
        );
        assert!(!log.contains("refreshed prices_"), "{log}");
    }
    let aggregates = |db: &TestDb| -> Vec<String> {
        ["prices_weekly", "prices_monthly"]
            .iter()
            .map(|t| {
                db.scalar(&format!(
                    "SELECT count(*) || ', ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {t} t"
                ))
            })
            .collect()
    };
    let written = aggregates(&db);
    assert!(!written[0].starts_with("0,"), "no buckets: {written:?}");
    rebuild_aggregates(p, &db);
    assert_eq!(aggregates(&db), written);
}

/// Tell both aggregates to rebuild and run [`AGGREGATES_JOB`]: their SQL definition
/// computes them again from `daily_prices`.
fn rebuild_aggregates(p: &Project, db: &TestDb) {
    db.execute("UPDATE change_log_consumers SET rebuild = true WHERE consumer LIKE 'aggregate:%'");
    let log = p
        .runner(Some(db), &["run", "jobs/aggregates.toml"])
        .expect_code(0)
        .stderr();
    assert!(log.contains("rebuilt prices_weekly"), "{log}");
    assert!(log.contains("rebuilt prices_monthly"), "{log}");
}

#[test]
fn buckets_written_by_the_ingest_equal_the_sql_aggregates_on_the_fixture() {
    ingest_buckets_equal_sql_buckets(&Project::new());
}

/// Rows that test the bucket arithmetic: gaps of up to 40 days (empty weeks and
/// months), days from 1998 across the 2000-01-03 week origin, late days written out of
/// order, missing opens and volumes, volumes written as floats, and closes of every
/// shape — 4 decimals, float32 noise (`23.4500007629395`), 17-digit doubles, tiny and
/// large values — whose mean must come out of the ingest and of SQL to the same bit.
fn awkward_csv(seed: u64, rows: usize) -> String {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut day =
        chrono::NaiveDate::from_ymd_opt(1998, 12, 20).unwrap() + chrono::Days::new(seed % 9);
    let mut lines = Vec::new();
    for _ in 0..rows {
        day = day
            + chrono::Days::new(if next() < 0.9 {
                1
            } else {
                2 + (next() * 38.0) as u64
            });
        let base = 1.0 + next() * 200.0;
        let close = match (next() * 6.0) as u32 {
            0 => format!("{:.4}", base),
            1 => format!("{}", f64::from(base as f32)),
            2 => format!("{:.15}", f64::from(base as f32)),
            3 => format!("{}", base * 1e-4),
            4 => format!("{}", base * 1e4 + next()),
            _ => format!("{}", base),
        };
        let c: f64 = close.parse().unwrap();
        let open = if next() < 0.1 {
            String::new()
        } else {
            format!("{}", c * (1.0 + (next() - 0.5) * 0.02))
        };
        let o: f64 = open.parse().unwrap_or(c);
        let high = format!("{}", o.max(c) * 1.01);
        let low = format!("{}", o.min(c) * 0.99);
        let volume = match (next() * 10.0) as u32 {
            0 => String::new(),
            1 => format!("{}.0", (next() * 1e6) as u64),
            2 => format!("{}", (next() * 9e12) as u64),
            _ => format!("{}", (next() * 1e6) as u64),
        };
        lines.push(format!(
            "{day},{open},{high},{low},{close},{close},{volume}"
        ));
    }
    // A few late days: moved to the end of the file, as if added afterwards.
    for i in (5..lines.len()).step_by(37) {
        let late = lines.remove(i);
        lines.push(late);
    }
    let mut out = String::from("Date,Open,High,Low,Close,Adj Close,Volume\n");
    for line in lines {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[test]
fn buckets_written_by_the_ingest_equal_the_sql_aggregates_on_awkward_data() {
    let p = Project::new();
    std::fs::remove_dir_all(p.path("data")).unwrap();
    for i in 0..12u64 {
        p.write(
            &format!("data/stocks/W{i:02}.csv"),
            &awkward_csv(i + 1, 400 + 40 * i as usize),
        );
    }
    // A one-row file, and a header-only one.
    p.write(
        "data/stocks/ONE.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n2000-01-02,,,,0.1,0.1,\n",
    );
    p.write(
        "data/stocks/NONE.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume\n",
    );
    ingest_buckets_equal_sql_buckets(&p);
}

/// Grown files (appended and late days) are refreshed by SQL, replaced ones written by
/// the ingest, in one run: the result equals a clean load.
#[test]
fn mixed_written_and_refreshed_buckets_equal_a_clean_load() {
    let p = project();
    for i in 0..6u64 {
        p.write(
            &format!("data/stocks/W{i:02}.csv"),
            &awkward_csv(i + 1, 300),
        );
    }
    let db = TestDb::new();
    run(&p, &db);
    // W00 grows by a late day and a new one; W01 is replaced; W02 loses its last rows.
    let w0 = p.read("data/stocks/W00.csv");
    p.write(
        "data/stocks/W00.csv",
        &format!("{w0}1998-12-01,3,3.5,2.5,3.25,3.25,7\n2030-01-02,4,4,4,4,4,\n"),
    );
    p.write("data/stocks/W01.csv", &awkward_csv(99, 250));
    let w2 = p.read("data/stocks/W02.csv");
    p.write(
        "data/stocks/W02.csv",
        &(w2.lines().take(200).collect::<Vec<_>>().join("\n") + "\n"),
    );
    let log = run(&p, &db).stderr();
    assert!(log.contains("1 grown, 2 replaced"), "{log}");
    assert_eq!(fingerprint(&db), clean_load(&p));
}

/// The corrections above at once, with the indicators computed by runner itself
/// (`native`, as jobs/indicators.toml ships): deleted from the changed day on and
/// continued from the stored row before it, they equal a clean load to the bit.
#[test]
fn native_indicators_follow_corrections_as_the_template_does() {
    let p = project();
    p.write(
        "jobs/derived.toml",
        &JOB.replace("outputs = []\n", "native = \"indicators\"\noutputs = []\n"),
    );
    write_symbols(&p, 4, 300);
    let db = TestDb::new();
    run(&p, &db);
    edit_line(&p, "data/stocks/S001.csv", 150, |l| set_close(l, "33.3333"));
    let text = p.read("data/stocks/S002.csv");
    let kept: Vec<&str> = text.lines().take(200).collect();
    p.write("data/stocks/S002.csv", &(kept.join("\n") + "\n"));
    p.write("data/stocks/S000.csv", &prices_csv(99, 250));
    p.write("data/stocks/S003.csv", &prices_csv(4, 305));
    let log = run(&p, &db).stderr();
    assert!(log.contains("1 grown"), "{log}");
    assert_eq!(fingerprint(&db), clean_load(&p));
}

/// The mean close of a bucket is its closes added as doubles in day order, divided by
/// the row count, whichever way the bucket was made: 0.1 + 0.2 + 0.3 in that order is
/// 0.6000000000000001, a third of which is 0.20000000000000004 (added the other way
/// round it would be 0.19999999999999998). The ingest writes it on plain PostgreSQL,
/// the continuous aggregate's refresh on TimescaleDB, and a rebuild in SQL on both.
#[test]
fn the_mean_close_adds_the_closes_in_day_order() {
    let p = Project::new().without_fixture();
    p.write("jobs/aggregates.toml", AGGREGATES_JOB);
    p.write(
        "data/stocks/ABC.csv",
        "Date,Open,High,Low,Close,Adj Close,Volume
         2020-01-06,1,1,1,0.1,0.1,10
         2020-01-07,1,1,1,0.2,0.2,10
         2020-01-08,1,1,1,0.3,0.3,10
",
    );
    let db = TestDb::new();
    let mean = |db: &TestDb| {
        db.lines(
            "SELECT avg_close::text FROM prices_weekly UNION ALL \
             SELECT avg_close::text FROM prices_monthly",
        )
    };
    p.runner(Some(&db), &["run", "jobs/aggregates.toml"])
        .expect_code(0);
    let expected = ["0.20000000000000004", "0.20000000000000004"];
    assert_eq!(mean(&db), expected);
    rebuild_aggregates(&p, &db);
    assert_eq!(mean(&db), expected);
}

/// An aggregate an earlier runner made (its comment is not this runner's definition:
/// until v2 the mean close was a `numeric` average) is dropped and made again, and then
/// equals a clean load, whatever it held.
#[test]
fn an_aggregate_defined_by_an_earlier_runner_is_recreated() {
    let p = project();
    write_symbols(&p, 3, 90);
    let db = TestDb::new();
    run(&p, &db);
    let kind = if db.has_timescale() { "VIEW" } else { "TABLE" };
    db.execute(&format!("COMMENT ON {kind} prices_weekly IS NULL"));
    if !db.has_timescale() {
        db.execute("UPDATE prices_weekly SET avg_close = avg_close + 1");
    }
    let log = run(&p, &db).stderr();
    assert!(
        log.contains("recreated prices_weekly") && !log.contains("recreated prices_monthly"),
        "{log}"
    );
    assert!(log.contains("rebuilt prices_weekly"), "{log}");
    assert_eq!(fingerprint(&db), clean_load(&p));
    // Once recreated it is current: the next run leaves it alone.
    let log = run(&p, &db).stderr();
    assert!(!log.contains("recreated"), "{log}");
}

/// TimescaleDB: the continuous aggregates get their `(symbol, bucket)` index after
/// their first refresh, not before it (the refresh would maintain it row by row).
#[test]
fn the_continuous_aggregates_are_indexed_by_symbol_after_their_refresh() {
    let p = project();
    write_symbols(&p, 2, 30);
    let db = TestDb::new();
    if !db.has_timescale() {
        return;
    }
    run(&p, &db);
    let indexes = |db: &TestDb| {
        db.lines(
            "SELECT a.view_name || ': ' || i.indexdef \
             FROM timescaledb_information.continuous_aggregates a \
             JOIN pg_indexes i ON i.schemaname = a.materialization_hypertable_schema \
              AND i.tablename = a.materialization_hypertable_name \
             WHERE a.view_name LIKE 'prices_%' AND i.indexdef LIKE '%(symbol, bucket)' \
             ORDER BY 1",
        )
    };
    let found = indexes(&db);
    assert_eq!(found.len(), 2, "{found:?}");
    assert!(found[0].starts_with("prices_monthly: CREATE INDEX prices_monthly_symbol_bucket"));
    assert!(found[1].starts_with("prices_weekly: CREATE INDEX prices_weekly_symbol_bucket"));
    // A refresh that ended before the index was built leaves it to the next run.
    db.execute("DROP INDEX _timescaledb_internal.prices_weekly_symbol_bucket");
    db.execute("UPDATE change_log_consumers SET rebuild = true WHERE consumer LIKE 'aggregate:%'");
    run(&p, &db);
    assert_eq!(indexes(&db), found);
}

/// The aggregates' catch-up runs alongside the native analyses, and the SQL analyses
/// wait for it: here it is held back 3 s after reading the change log, the native
/// indicators are done meanwhile, and `weekly_closes` (SQL over `prices_weekly`) still
/// reads the bucket of the day just appended.
#[test]
fn sql_analyses_wait_for_the_aggregates_native_ones_do_not() {
    let p = project();
    p.write(
        "jobs/derived.toml",
        &JOB.replace(
            "unique_key = [\"symbol\", \"day\"]",
            "unique_key = [\"symbol\", \"day\"]\nnative = \"indicators\"",
        ),
    );
    write_symbols(&p, 3, 120);
    let db = TestDb::new();
    run(&p, &db);
    // A late Tuesday for S001, in a week of its own (bucket Monday 2019-12-30).
    let s1 = p.read("data/stocks/S001.csv");
    p.write(
        "data/stocks/S001.csv",
        &format!("{s1}2019-12-31,70,80,60,77.25,77.25,5000\n"),
    );
    let log = p
        .command(Some(&db), &["run", "jobs/derived.toml"])
        .env("RUNNER_PAUSE_AT", "aggregates.pending:3000")
        .output()
        .unwrap();
    let log = super::util::Run(log).expect_code(0).stderr();
    let at = |needle: &str| {
        log.find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not in the log:\n{log}"))
    };
    assert!(
        at("analysis done analysis=indicators") < at("refreshed prices_weekly"),
        "the native analysis waited for the aggregates:\n{log}"
    );
    assert!(
        at("refreshed prices_weekly") < at("analysis done analysis=weekly_closes"),
        "{log}"
    );
    let csv = p.read("reports/derived/latest/weekly_closes.csv");
    assert!(
        csv.lines().any(|l| l == "S001,2019-12-30,77.25,1"),
        "the new week is missing:\n{csv}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM analytics.indicators WHERE day = '2019-12-31'"),
        "1"
    );
    assert_eq!(fingerprint(&db), clean_load(&p));
}
