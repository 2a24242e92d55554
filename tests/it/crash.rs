//! Runs killed, cut off or refused at any point leave a database and a report folder
//! that the next run finishes into exactly what a clean load gives; the `runs` table
//! always tells what happened; the run lock has no holes.

use std::process::Stdio;
use std::time::{Duration, Instant};

use super::derived::{clean_load, fingerprint, prices_csv, project, run, write_symbols};
use super::util::{Project, TestDb};

/// Small batches, so a crash point inside ingest falls between committed batches.
const SMALL_BATCHES: [(&str, &str); 2] = [
    ("RUNNER_INGEST_BATCH_BYTES", "30000"),
    ("RUNNER_INGEST_WORKERS", "2"),
];

/// 30 files loaded, then changed every way a nightly run meets: a corrected close, a
/// truncated file, a late day appended, a replaced file, and new files.
fn loaded_then_changed(db: &TestDb) -> Project {
    let p = project();
    write_symbols(&p, 30, 250);
    run(&p, db);
    let corrected: Vec<String> = p
        .read("data/stocks/S001.csv")
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let mut fields: Vec<&str> = line.split(',').collect();
            if i == 100 {
                fields[4] = "99.5";
            }
            fields.join(",")
        })
        .collect();
    p.write("data/stocks/S001.csv", &(corrected.join("\n") + "\n"));
    let s2 = p.read("data/stocks/S002.csv");
    p.write(
        "data/stocks/S002.csv",
        &(s2.lines().take(180).collect::<Vec<_>>().join("\n") + "\n"),
    );
    let s3 = p.read("data/stocks/S003.csv");
    p.write(
        "data/stocks/S003.csv",
        &format!("{s3}2019-01-05,5,5,5,5,5,5\n"),
    );
    p.write("data/stocks/S004.csv", &prices_csv(404, 200));
    for i in 30..34 {
        p.write(&format!("data/stocks/S{i:03}.csv"), &prices_csv(i + 1, 250));
    }
    p
}

/// `latest` resolves to a complete report: every file the job writes, a summary whose
/// CSV row counts match the CSVs.
fn assert_latest_complete(p: &Project) {
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("reports/derived/latest/summary.json")).unwrap();
    for file in [
        "report.md",
        "report.html",
        "rejects.csv",
        "weekly_closes.csv",
    ] {
        assert!(
            p.path("reports/derived/latest").join(file).exists(),
            "{file} missing from latest"
        );
    }
    let rows = summary["analyses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "weekly_closes")
        .unwrap()["rows"]
        .as_u64()
        .unwrap();
    let csv = p.read("reports/derived/latest/weekly_closes.csv");
    assert_eq!(csv.lines().count() as u64, rows + 1, "CSV cut short");
    assert!(p
        .read("reports/derived/latest/report.html")
        .ends_with("</html>\n"));
}

/// `runner run` in small batches, killed at `point` (`name:hit`): it must die there.
fn kill_at(p: &Project, db: &TestDb, point: &str) {
    let killed = p
        .command(Some(db), &["run", "jobs/derived.toml"])
        .envs(SMALL_BATCHES)
        .env("RUNNER_CRASH_AT", point)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&killed.stderr);
    assert_eq!(
        killed.status.code(),
        None,
        "{point}: the run was not killed\n{stderr}"
    );
    assert!(stderr.contains(&format!(
        "crash point `{}` reached",
        point.split(':').next().unwrap()
    )));
}

/// The run after a kill, in the same small batches: it must succeed.
fn finish(p: &Project, db: &TestDb) {
    let next = p
        .command(Some(db), &["run", "jobs/derived.toml"])
        .envs(SMALL_BATCHES)
        .output()
        .unwrap();
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
}

fn killed_at(point: &str) {
    let db = TestDb::new();
    let p = loaded_then_changed(&db);
    let expected = clean_load(&p);
    kill_at(&p, &db, point);
    assert_latest_complete(&p);
    finish(&p, &db);
    assert_eq!(fingerprint(&db), expected, "after a kill at {point}");
    assert_latest_complete(&p);
    // The killed run's row says so; the finishing run's row says it succeeded.
    assert_eq!(
        db.lines("SELECT status, coalesce(exit_code::text, '-') FROM runs ORDER BY id"),
        ["succeeded|0", "abandoned|-", "succeeded|0"]
    );
}

/// A first load writes its rows without the primary key and builds the key at its end
/// (`db::storage::key`). Killed between two batches, it leaves the committed files
/// without their key; the next run builds the key first and finishes the load into
/// exactly what a clean load gives.
#[test]
fn a_first_load_killed_midway_builds_its_key_in_the_next_run() {
    const KEY: &str = "SELECT count(*) FROM pg_constraint \
                       WHERE conrelid = 'daily_prices'::regclass AND contype = 'p'";
    let db = TestDb::new();
    let p = project();
    write_symbols(&p, 30, 250);
    let expected = clean_load(&p);
    // TimescaleDB: the compression policy's job waits while the key is away, so that it
    // does not compress the chunks the first load is still writing.
    const SCHEDULED: &str = "SELECT string_agg(scheduled::text, ',') FROM timescaledb_information.jobs \
                             WHERE proc_name = 'policy_compression' AND hypertable_name = 'daily_prices'";
    kill_at(&p, &db, "ingest.after_commit:2");
    assert_eq!(db.scalar(KEY), "0", "the first load kept the key");
    if db.has_timescale() {
        assert_eq!(db.scalar(SCHEDULED), "false");
    }
    let stored: u64 = db
        .scalar("SELECT count(*) FROM daily_prices")
        .parse()
        .unwrap();
    assert!(
        stored > 0 && stored < 30 * 250,
        "{stored} rows after the kill"
    );
    finish(&p, &db);
    assert_eq!(db.scalar(KEY), "1");
    if db.has_timescale() {
        assert_eq!(db.scalar(SCHEDULED), "true");
    }
    assert_eq!(fingerprint(&db), expected);
    // The key holds again: a second copy of a stored day is refused.
    let duplicate = diesel::connection::SimpleConnection::batch_execute(
        &mut db.conn(),
        "INSERT INTO daily_prices (symbol, day, close) \
         SELECT symbol, day, close FROM daily_prices LIMIT 1",
    );
    assert!(duplicate.is_err(), "a duplicate day was accepted");
}

macro_rules! kill_points {
    ($($test:ident => $point:literal,)*) => {
        $(
            #[test]
            fn $test() {
                killed_at($point);
            }
        )*
    };
}

kill_points! {
    killed_inside_the_first_ingest_batch => "ingest.before_commit:1",
    killed_inside_a_later_ingest_batch => "ingest.before_commit:3",
    killed_after_an_ingest_batch_committed => "ingest.after_commit:2",
    killed_after_ingest_before_the_drain => "run.after_ingest",
    killed_after_reading_the_change_log => "aggregates.pending:1",
    killed_inside_the_weekly_refresh => "aggregates.refreshed:1",
    killed_inside_the_monthly_refresh => "aggregates.refreshed:2",
    killed_between_the_two_aggregates => "aggregates.drained:1",
    killed_inside_the_incremental_materialization => "materialize.before_commit",
    killed_after_the_incremental_materialization => "materialize.committed",
    killed_while_writing_report_files => "report.csv_written:1",
    killed_before_publishing_the_report => "report.before_publish",
    killed_between_the_report_and_latest => "report.before_latest",
    killed_before_recording_the_end => "run.before_finish",
}

/// Wait until `sql` (a count) is positive.
fn wait_for(db: &TestDb, sql: &str) {
    let started = Instant::now();
    while db.scalar(sql) == "0" {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "timed out: {sql}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connections_terminated_mid_refresh_leave_the_next_run_to_finish() {
    let db = TestDb::new();
    let p = loaded_then_changed(&db);
    let expected = clean_load(&p);
    let mut child = p
        .command(Some(&db), &["run", "jobs/derived.toml"])
        .env("RUNNER_PAUSE_AT", "aggregates.pending:3000")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Terminate only once the run says it is paused between reading the change log and
    // refreshing: then the kill provably lands mid-drain, however loaded the machine is.
    let stderr = child.stderr.take().unwrap();
    let (paused, reached) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut log = String::new();
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("pause point `aggregates.pending` reached") {
                let _ = paused.send(());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    reached
        .recv_timeout(Duration::from_secs(60))
        .expect("the run reaches the pause point");
    let database = db.scalar("SELECT current_database()");
    db.scalar(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    ));
    let status = child.wait().unwrap();
    let log = reader.join().unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    run(&p, &db);
    assert_eq!(fingerprint(&db), expected);
    assert_latest_complete(&p);
}

/// Plain PostgreSQL only: a continuous aggregate takes no constraint.
#[test]
fn a_refresh_that_fails_on_bad_data_is_done_once_the_data_is_fixed() {
    let db = TestDb::new();
    let p = project();
    write_symbols(&p, 3, 120);
    run(&p, &db);
    if db.has_timescale() {
        return;
    }
    db.execute("ALTER TABLE prices_weekly ADD CONSTRAINT sane_close CHECK (close < 1000)");
    let s1 = p.read("data/stocks/S001.csv");
    p.write(
        "data/stocks/S001.csv",
        &format!("{s1}2019-12-31,5000,5000,5000,5000,5000,1\n"),
    );
    let failed = p
        .runner(Some(&db), &["run", "jobs/derived.toml"])
        .expect_code(1);
    assert!(
        failed.stderr().contains("refreshing prices_weekly"),
        "{}",
        failed.stderr()
    );
    assert_eq!(
        db.scalar("SELECT status FROM runs ORDER BY id DESC LIMIT 1"),
        "failed"
    );
    // The data is fixed (the bad day is corrected in the file).
    p.write(
        "data/stocks/S001.csv",
        &format!("{s1}2019-12-31,50,50,50,50,50,1\n"),
    );
    run(&p, &db);
    db.execute("ALTER TABLE prices_weekly DROP CONSTRAINT sane_close");
    assert_eq!(fingerprint(&db), clean_load(&p));
}

#[test]
fn three_concurrent_first_runs_on_a_missing_database_all_succeed() {
    let db = TestDb::not_created();
    let p = project();
    write_symbols(&p, 12, 100);
    let children: Vec<_> = (0..3)
        .map(|_| {
            p.command(Some(&db), &["run", "jobs/derived.toml"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let logs: Vec<String> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            let log = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(out.status.code(), Some(0), "{log}");
            log
        })
        .collect();
    let loaded = logs.iter().filter(|l| l.contains("(12 new,")).count();
    let idle = logs
        .iter()
        .filter(|l| l.contains("(0 new, 0 grown, 0 replaced, 12 unchanged"))
        .count();
    assert_eq!((loaded, idle), (1, 2), "{logs:#?}");
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "1200");
}

#[test]
fn a_terminated_lock_connection_stops_its_run() {
    let db = TestDb::new();
    let p = project();
    write_symbols(&p, 5, 100);
    let child = p
        .command(Some(&db), &["run", "jobs/derived.toml"])
        .env("RUNNER_PAUSE_AT", "run.locked:2000")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'runner run lock' \
                AND datname = current_database()";
    wait_for(&db, lock);
    db.scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'runner run lock' AND datname = current_database()",
    );
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("lost the run lock"), "{log}");
    assert_eq!(
        db.lines("SELECT status, exit_code FROM runs ORDER BY id"),
        ["failed|1"]
    );
    assert!(!p.path("reports/derived/latest").exists());
    run(&p, &db);
    assert_eq!(fingerprint(&db), clean_load(&p));
}

#[test]
fn no_wait_and_wait_lock_exit_75_while_another_run_holds_the_lock() {
    let db = TestDb::new();
    let p = project();
    write_symbols(&p, 2, 50);
    run(&p, &db);
    let mut holder = db.conn();
    use diesel::connection::SimpleConnection;
    holder
        .batch_execute("SELECT pg_advisory_lock(x'72756e6e6572'::bigint)")
        .unwrap();
    let busy = p
        .runner(Some(&db), &["run", "jobs/derived.toml", "--no-wait"])
        .expect_code(75);
    assert!(
        busy.stderr()
            .contains("another runner is working on this database (waited 0s); nothing was done"),
        "{}",
        busy.stderr()
    );
    let started = Instant::now();
    p.runner(Some(&db), &["run", "jobs/derived.toml", "--wait-lock", "1"])
        .expect_code(75);
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(
        db.lines("SELECT status, exit_code FROM runs ORDER BY id"),
        ["succeeded|0", "skipped|75", "skipped|75"]
    );
    holder
        .batch_execute("SELECT pg_advisory_unlock(x'72756e6e6572'::bigint)")
        .unwrap();
    p.runner(Some(&db), &["run", "jobs/derived.toml", "--no-wait"])
        .expect_code(0);
}

#[test]
fn a_failing_analysis_fails_the_run_but_everything_else_is_published() {
    let db = TestDb::new();
    let p = project();
    write_symbols(&p, 2, 50);
    p.write(
        "templates/broken.sql",
        "SELECT 1 / (count(*) - count(*)) AS boom FROM daily_prices",
    );
    p.write(
        "jobs/derived.toml",
        &(super::derived::JOB.to_owned()
            + "\n[[analysis]]\nname = \"broken\"\ntemplate = \"broken.sql\"\n"),
    );
    let out = p
        .runner(Some(&db), &["run", "jobs/derived.toml"])
        .expect_code(1);
    assert!(
        out.stderr().contains("analysis `broken`"),
        "{}",
        out.stderr()
    );
    assert_latest_complete(&p);
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("reports/derived/latest/summary.json")).unwrap();
    assert_eq!(summary["status"], "partial");
    assert_eq!(summary["exit_code"], 1);
    let broken = &summary["analyses"].as_array().unwrap()[2];
    assert_eq!(broken["name"], "broken");
    assert!(
        broken["failure"]
            .as_str()
            .unwrap()
            .contains("division by zero"),
        "{broken}"
    );
    assert!(!p.path("reports/derived/latest/broken.csv").exists());
    let md = p.read("reports/derived/latest/report.md");
    assert!(md.contains("## broken\n\n> **Failed:** "), "{md}");
    assert_eq!(
        db.lines("SELECT status, exit_code FROM runs ORDER BY id"),
        ["partial|1"]
    );
    assert_eq!(
        db.scalar("SELECT summary->>'status' FROM runs"),
        summary["status"].as_str().unwrap()
    );
}
