//! Analyses that build on each other: materialization, `ref()`, dependency order,
//! `--select`, cycles, and `check` against the live database.

use super::util::{Project, TestDb};

const CONFIG_ERROR: i32 = 2;

/// Listed in reverse dependency order on purpose: runner must sort them.
const JOB: &str = r#"
name = "dag"
[[ingest]]
kind = "prices"
paths = ["data/stocks/*.csv", "data/etfs/*.csv"]

[[analysis]]
name = "top"
template = "dag/top.sql"
depends_on = ["closes"]

[[analysis]]
name = "closes"
template = "dag/closes.sql"
materialize = "view"

[[analysis]]
name = "latest"
template = "dag/latest.sql"
materialize = "table"

[[analysis]]
name = "unrelated"
template = "dag/unrelated.sql"
"#;

fn project() -> Project {
    let p = Project::new();
    p.write("jobs/dag.toml", JOB);
    p.write(
        "templates/dag/latest.sql",
        "SELECT symbol, max(day) AS day FROM daily_prices GROUP BY symbol",
    );
    p.write(
        "templates/dag/closes.sql",
        "SELECT l.symbol, l.day, p.close FROM {{ ref('latest') }} l JOIN daily_prices p USING (symbol, day)",
    );
    p.write(
        "templates/dag/top.sql",
        "SELECT symbol, close FROM analytics.closes ORDER BY close DESC, symbol LIMIT 1",
    );
    p.write("templates/dag/unrelated.sql", "SELECT 1 AS one");
    p
}

fn summary_names(p: &Project) -> Vec<String> {
    let dir = std::fs::read_link(p.path("reports/dag/latest")).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&p.read(&format!("reports/dag/{}/summary.json", dir.display())))
            .unwrap();
    summary["analyses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn render_orders_by_dependencies_and_select_pulls_them_in() {
    let p = project();
    let out = p
        .runner(None, &["render", "jobs/dag.toml", "--select", "top"])
        .expect_code(0)
        .stdout();
    let order: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("-- analysis: "))
        .collect();
    assert_eq!(
        order,
        [
            "latest (dag/latest.sql) -> table \"analytics\".\"latest\"",
            "closes (dag/closes.sql) -> view \"analytics\".\"closes\"",
            "top (dag/top.sql)",
        ]
    );
    assert!(out.contains("FROM \"analytics\".\"latest\" l"), "{out}");
}

#[test]
fn run_select_materializes_dependencies_first_and_reruns_cleanly() {
    let db = TestDb::new();
    let p = project();
    p.runner(Some(&db), &["run", "jobs/dag.toml", "--select", "top"])
        .expect_code(0);
    // Reports in job order, without the unselected analysis.
    assert_eq!(summary_names(&p), ["top", "closes", "latest"]);
    assert_eq!(
        p.read("reports/dag/latest/top.csv"),
        "symbol,close\nETF1,49\n"
    );
    assert_eq!(
        db.lines("SELECT c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                  WHERE n.nspname = 'analytics' AND c.relkind IN ('r', 'v') ORDER BY 1"),
        ["closes|v", "latest|r"]
    );
    // A re-run replaces the table's rows in place (the view on it survives) and sees
    // new data.
    {
        use diesel::connection::SimpleConnection;
        db.conn()
            .batch_execute(
                "INSERT INTO daily_prices (symbol, day, close) VALUES ('BBB', '2020-04-02', 99)",
            )
            .unwrap();
    }
    p.runner(
        Some(&db),
        &[
            "run",
            "jobs/dag.toml",
            "--skip-ingest",
            "--select",
            "latest",
        ],
    )
    .expect_code(0);
    assert_eq!(
        db.lines("SELECT symbol, close FROM analytics.closes ORDER BY symbol"),
        ["AAA|16", "BBB|99", "ETF1|49"]
    );
    // Changing a table's columns swaps in a new table.
    p.write(
        "templates/dag/latest.sql",
        "SELECT symbol, max(day) AS day, count(*) AS days FROM daily_prices GROUP BY symbol",
    );
    p.runner(Some(&db), &["run", "jobs/dag.toml", "--skip-ingest"])
        .expect_code(0);
    assert_eq!(
        db.lines("SELECT * FROM analytics.latest ORDER BY symbol"),
        ["AAA|2020-04-01|11", "BBB|2020-04-02|5", "ETF1|2020-04-01|2"]
    );
    assert_eq!(
        db.lines("SELECT symbol, close FROM analytics.closes ORDER BY symbol"),
        ["AAA|16", "BBB|99", "ETF1|49"]
    );
}

#[test]
fn a_dependency_cycle_is_a_config_error_naming_it() {
    let p = project();
    p.write(
        "templates/dag/latest.sql",
        "SELECT * FROM {{ ref('closes') }}",
    );
    let err = p
        .runner(None, &["check", "jobs/dag.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.contains("cycle: closes -> latest -> closes")
            || err.contains("cycle: latest -> closes -> latest"),
        "{err}"
    );
    let err = p
        .runner(None, &["run", "jobs/dag.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("cycle"), "{err}");
}

#[test]
fn ref_needs_a_materialized_analysis_of_the_job() {
    let p = project();
    p.write(
        "templates/dag/top.sql",
        "SELECT 1\nFROM {{ ref('unrelated') }}",
    );
    let err = p
        .runner(None, &["check", "jobs/dag.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.contains("analysis `unrelated` is not materialized"),
        "{err}"
    );
    assert!(err.contains("dag/top.sql:2"), "{err}");
    p.write("templates/dag/top.sql", "SELECT 1 FROM {{ ref('lates') }}");
    let err = p
        .runner(None, &["check", "jobs/dag.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.contains("no analysis `lates`; did you mean `latest`?"),
        "{err}"
    );
}

#[test]
fn check_plans_every_analysis_on_the_live_database() {
    let db = TestDb::new();
    let p = project();
    // Passes on a fresh database: migrations and the materialized dependencies exist
    // only inside check's rolled-back transaction.
    let out = p
        .runner(Some(&db), &["check", "jobs/dag.toml"])
        .expect_code(0)
        .stdout();
    assert!(out.contains("4 planned by PostgreSQL"), "{out}");
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = 'analytics'"),
        "0"
    );
    // The shipped indicators job too (its reports read the never-built indicators table).
    p.runner(Some(&db), &["check", "jobs/indicators.toml"])
        .expect_code(0);
    // A typo'd column fails at check time, naming the analysis and the SQL line.
    p.write("templates/dag/closes.sql", "SELECT l.symbol, l.day,\n       p.closing\nFROM {{ ref('latest') }} l JOIN daily_prices p USING (symbol, day)");
    let err = p
        .runner(Some(&db), &["check", "jobs/dag.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("analysis `closes` failed"), "{err}");
    assert!(err.contains("column p.closing does not exist"), "{err}");
    assert!(
        err.contains("rendered SQL line 2\n   |        p.closing"),
        "{err}"
    );
    // Its dependent is skipped rather than reported again.
    assert!(!err.contains("analysis `top`"), "{err}");
    // Offline, only the templates are checked.
    p.runner(Some(&db), &["check", "--offline", "jobs/dag.toml"])
        .expect_code(0);
}

#[test]
fn incremental_analyses_need_a_time_column() {
    let p = project();
    p.write(
        "jobs/bad.toml",
        "name = \"bad\"\n[[analysis]]\nname = \"a\"\ntemplate = \"dag/unrelated.sql\"\nmaterialize = \"incremental\"\n",
    );
    let err = p
        .runner(None, &["check", "jobs/bad.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("needs `time_column`"), "{err}");
    assert!(err.contains("jobs/bad.toml:5:"), "{err}");
}

#[test]
fn a_failing_materialization_names_the_analysis_and_keeps_the_old_table() {
    let db = TestDb::new();
    let p = project();
    p.runner(Some(&db), &["run", "jobs/dag.toml", "--select", "latest"])
        .expect_code(0);
    p.write(
        "templates/dag/latest.sql",
        "SELECT symbol, max(day) AS day\nFROM daily_prices\nGROUP BY symbol\nHAVING 1 / (count(*) - count(*)) = 1",
    );
    let err = p
        .runner(
            Some(&db),
            &[
                "run",
                "jobs/dag.toml",
                "--skip-ingest",
                "--select",
                "latest",
            ],
        )
        .expect_code(1)
        .stderr();
    assert!(
        err.contains("analysis `latest` failed: division by zero"),
        "{err}"
    );
    // The failed rebuild changed nothing.
    assert_eq!(
        db.lines("SELECT symbol FROM analytics.latest ORDER BY symbol"),
        ["AAA", "BBB", "ETF1"]
    );
}

#[test]
fn select_operators_and_exclude_work_like_dbt() {
    let db = TestDb::new();
    let p = project();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "jobs/dag.toml"];
        all.extend(args);
        p.runner(Some(&db), &all).expect_code(0);
        summary_names(&p)
    };
    // `latest+`: latest and everything downstream of it (closes, then top).
    assert_eq!(run(&["--select", "latest+"]), ["top", "closes", "latest"]);
    // `+closes` (same as `closes`): closes and what it needs.
    assert_eq!(
        run(&["--skip-ingest", "--select", "+closes"]),
        ["closes", "latest"]
    );
    // Everything but `unrelated` and `top`.
    assert_eq!(
        run(&[
            "--skip-ingest",
            "--exclude",
            "unrelated",
            "--exclude",
            "top"
        ]),
        ["closes", "latest"]
    );
    // Excluding a dependency uses its kept result.
    assert_eq!(
        run(&["--skip-ingest", "--select", "top", "--exclude", "latest"]),
        ["top", "closes"]
    );
    let err = p
        .runner(Some(&db), &["run", "jobs/dag.toml", "--exclude", "lates"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(err.contains("job `dag` has no analysis `lates`"), "{err}");
    assert!(err.contains("did you mean `latest`?"), "{err}");
}
