//! Expected values are computed by hand from tests/fixtures/basic (see its README).

use super::util::{Project, TestDb};

/// Run the job and return the named report CSVs, without their header lines.
fn run_job(p: &Project, db: &TestDb, vars: &[&str]) -> String {
    let mut args = vec!["run", "jobs/quarterly.toml"];
    for v in vars {
        args.push("--var");
        args.push(v);
    }
    p.runner(Some(db), &args).expect_code(0);
    std::fs::read_link(p.path("reports/quarterly/latest"))
        .unwrap()
        .display()
        .to_string()
}

fn csv(p: &Project, dir: &str, name: &str) -> Vec<String> {
    p.read(&format!("reports/quarterly/{dir}/{name}.csv"))
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn average_volume_of_the_last_full_quarter_respects_boundaries() {
    let db = TestDb::new();
    let p = Project::new();
    // Default as_of is the latest trading day: 2020-04-01, so Q1 2020 is the last full one.
    let dir = run_job(&p, &db, &["symbol=AAA"]);
    assert_eq!(dir, "2020-04-01");
    assert_eq!(
        csv(&p, &dir, "avg_volume_last_quarter"),
        [
            "symbol,quarter,quarter_start,quarter_end,trading_days,days_with_volume,avg_volume",
            "AAA,2020-Q1,2020-01-01,2020-03-31,6,6,308.33",
        ]
    );
    // On the quarter's last day the quarter is complete.
    let dir = run_job(&p, &db, &["symbol=AAA", "as_of=2020-03-31"]);
    assert_eq!(
        csv(&p, &dir, "avg_volume_last_quarter")[1],
        "AAA,2020-Q1,2020-01-01,2020-03-31,6,6,308.33"
    );
    // The day before, it is not: Q4 2019 (3000, 1000, 2000), not the 2019-09-30 record.
    let dir = run_job(&p, &db, &["symbol=AAA", "as_of=2020-03-30"]);
    assert_eq!(
        csv(&p, &dir, "avg_volume_last_quarter")[1],
        "AAA,2019-Q4,2019-10-01,2019-12-31,3,3,2000.00"
    );
    // BBB's NULL volume on 2020-04-01 is outside Q1; its Q1 days are 03-27, 03-30, 03-31.
    let dir = run_job(&p, &db, &["symbol=BBB"]);
    assert_eq!(
        csv(&p, &dir, "avg_volume_last_quarter")[1],
        "BBB,2020-Q1,2020-01-01,2020-03-31,3,3,516.67"
    );
}

#[test]
fn weekly_average_close_buckets_weeks_from_monday() {
    let db = TestDb::new();
    let p = Project::new();
    let dir = run_job(&p, &db, &["weeks=2"]);
    assert_eq!(
        csv(&p, &dir, "weekly_avg_close"),
        [
            "symbol,week,trading_days,avg_close",
            "AAA,2020-03-23,1,13.5000",
            "AAA,2020-03-30,3,15.0000",
            "BBB,2020-03-23,1,19.0000",
            "BBB,2020-03-30,3,21.0000",
            "ETF1,2020-03-30,2,49.5000",
        ]
    );
}

#[test]
fn daily_change_has_a_previous_close_on_the_first_day_of_the_period() {
    let db = TestDb::new();
    let p = Project::new();
    let dir = run_job(&p, &db, &["days=3", "symbols=[AAA,ETF1]"]);
    assert_eq!(
        csv(&p, &dir, "daily_change"),
        [
            "symbol,day,close,prev_day,prev_close,change,pct_change",
            "AAA,2020-03-30,14,2020-03-27,13.5,0.500000,3.7037",
            "AAA,2020-03-31,15,2020-03-30,14,1.000000,7.1429",
            "AAA,2020-04-01,16,2020-03-31,15,1.000000,6.6667",
            "ETF1,2020-03-31,50,,,,",
            "ETF1,2020-04-01,49,2020-03-31,50,-1.000000,-2.0000",
        ]
    );
}

#[test]
fn highest_volume_day_breaks_ties_early_and_ignores_nulls() {
    let db = TestDb::new();
    let p = Project::new();
    let dir = run_job(&p, &db, &[]);
    assert_eq!(
        csv(&p, &dir, "highest_volume_day"),
        [
            "symbol,day,volume,close",
            "AAA,2019-09-30,999999,8",
            "BBB,2020-03-30,700,20",
            "ETF1,2020-04-01,20,49",
        ]
    );
}

#[test]
fn injection_through_a_var_is_just_a_strange_symbol() {
    let db = TestDb::new();
    let p = Project::new();
    let dir = run_job(&p, &db, &["symbol=x'); DROP TABLE daily_prices; --"]);
    assert_eq!(
        csv(&p, &dir, "avg_volume_last_quarter")[1],
        "x'); DROP TABLE daily_prices; --,2020-Q1,2020-01-01,2020-03-31,0,0,"
    );
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "17");
}

#[test]
fn reports_are_written_in_every_format() {
    let db = TestDb::new();
    let p = Project::new();
    let dir = run_job(&p, &db, &[]);
    let md = p.read(&format!("reports/quarterly/{dir}/report.md"));
    assert!(md.contains("## avg_volume_last_quarter"), "{md}");
    assert!(md.contains("2020-04-01"), "{md}");
    let html = p.read(&format!("reports/quarterly/{dir}/report.html"));
    // One chart per declared chart, one summary entry per analysis: counted from the
    // shipped job itself, so adding an analysis to it does not break this test.
    let job: toml::Value = toml::from_str(&p.read("jobs/quarterly.toml")).unwrap();
    let analyses = job["analysis"].as_array().unwrap();
    let charts: usize = analyses
        .iter()
        .map(|a| {
            a.get("chart")
                .and_then(|c| c.as_array())
                .map_or(0, Vec::len)
        })
        .sum();
    assert_eq!(html.matches("<svg").count(), charts, "{html}");
    let summary: serde_json::Value =
        serde_json::from_str(&p.read(&format!("reports/quarterly/{dir}/summary.json"))).unwrap();
    assert_eq!(summary["ingest"]["rows_loaded"], 17);
    let names: Vec<&str> = summary["analyses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let shipped: Vec<&str> = analyses
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, shipped);
    // The shipped data tests pass on the bundled fixture (warn-level ones may not).
    for t in summary["tests"].as_array().unwrap() {
        assert!(t["severity"] == "warn" || t["outcome"] == "passed", "{t}");
    }
}
