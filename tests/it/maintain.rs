use super::util::Project;

#[test]
fn maintain_vacuums_compresses_and_reports() {
    let p = Project::with_database();
    let db = p.db();
    p.run_ok(&["run", "jobs/quarterly.toml"]);
    let out = p.run_ok(&["maintain", "jobs/quarterly.toml"]);
    let report = p.read("reports/quarterly/maintenance.md");
    assert_eq!(out.stdout(), report, "the report is also printed");
    for section in [
        "# Maintenance report",
        "## Done",
        "## Storage of daily_prices",
        "## Tables",
        "## Indexes",
        "### Never scanned (not backing a constraint)",
        "## Cache",
        "Buffer cache hit ratio",
    ] {
        assert!(report.contains(section), "missing {section}:\n{report}");
    }
    assert!(
        report.contains("- VACUUM (ANALYZE) daily_prices in "),
        "{report}"
    );
    assert!(
        report.contains("| ingest_files | 3 |"),
        "live rows after ANALYZE:\n{report}"
    );
    // The primary keys back constraints: never listed as unused, whatever their scans.
    assert!(!report.contains("`daily_prices_pkey` on"), "{report}");
    assert!(
        report.contains("| daily_prices | daily_prices_pkey |"),
        "{report}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'ingest_files' AND last_vacuum IS NOT NULL"),
        "1"
    );
    if db.has_timescale() {
        assert!(
            report.contains("- compression: compress_chunk on 2 chunk(s) older than 1 year"),
            "{report}"
        );
        assert!(report.contains("| chunks (compressed / all) |"), "{report}");
        assert!(report.contains("| 2 / 2 |"), "{report}");
        assert!(report.contains("Chunk interval: 365 days."), "{report}");
        assert_eq!(
            db.scalar("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'daily_prices' AND NOT is_compressed"),
            "0"
        );
    } else {
        assert!(
            report.contains("Plain PostgreSQL: no chunks or compression"),
            "{report}"
        );
    }

    // Nothing changed since: the second maintenance vacuums nothing of runner's prices.
    let again = p.run_ok(&["maintain", "jobs/quarterly.toml"]).stdout();
    assert!(!again.contains("VACUUM (ANALYZE) daily_prices "), "{again}");
}

#[test]
fn unused_indexes_are_listed_unless_they_back_a_constraint() {
    let p = Project::with_database();
    p.run_ok(&["run", "jobs/quarterly.toml"]);
    p.db()
        .execute("CREATE INDEX prices_by_volume ON daily_prices (volume)");
    let report = p.run_ok(&["maintain", "jobs/quarterly.toml"]).stdout();
    assert!(
        report.contains("- `prices_by_volume` on `daily_prices`"),
        "{report}"
    );
}

#[test]
fn explain_shows_the_plan_with_actual_times_and_buffers() {
    let p = Project::with_database();
    p.run_ok(&["run", "jobs/quarterly.toml"]);
    let out = p
        .run_ok(&[
            "explain",
            "jobs/quarterly.toml",
            "--select",
            "highest_volume_day",
        ])
        .stdout();
    assert!(out.starts_with("-- highest_volume_day ("), "{out}");
    assert!(out.contains("actual time="), "{out}");
    assert!(out.contains("Buffers: shared"), "{out}");
    assert!(out.contains("Execution Time:"), "{out}");

    let err = p
        .run(&[
            "explain",
            "jobs/quarterly.toml",
            "--select",
            "highest_volume",
        ])
        .expect_code(2)
        .stderr();
    assert!(err.contains("did you mean `highest_volume_day`?"), "{err}");
}

#[test]
fn explain_refuses_sql_that_writes() {
    let p = Project::with_database()
        .template(
            "sneaky.sql",
            "WITH gone AS (DELETE FROM daily_prices RETURNING 1) SELECT count(*) FROM gone",
        )
        .extend_job(
            "quarterly",
            "sneaky",
            "[[analysis]]\nname = \"sneaky\"\ntemplate = \"sneaky.sql\"\n",
        );
    p.run_ok(&["run", "jobs/quarterly.toml"]);
    let err = p
        .run(&["explain", "jobs/sneaky.toml", "--select", "sneaky"])
        .expect_code(1)
        .stderr();
    assert!(err.contains("read-only transaction"), "{err}");
    assert_eq!(p.db().scalar("SELECT count(*) FROM daily_prices"), "17");
}

#[test]
fn maintenance_can_run_as_a_step_after_each_ingest() {
    let p = Project::with_database().extend_job(
        "quarterly",
        "nightly",
        "[storage]\nmaintain_after_ingest = true\n",
    );
    let log = p.run_ok(&["run", "jobs/nightly.toml"]).stderr();
    assert!(
        log.contains("maintain: VACUUM (ANALYZE) daily_prices"),
        "{log}"
    );
    let summary = p.read("reports/quarterly/latest/summary.json");
    assert!(summary.contains("\"rebuilt prices_weekly in "), "{summary}");
    assert!(
        summary.contains("VACUUM (ANALYZE) daily_prices"),
        "{summary}"
    );
    assert_eq!(
        p.db().scalar("SELECT count(*) FROM pg_stat_user_tables WHERE relname = 'daily_prices' AND last_vacuum IS NOT NULL"),
        "1"
    );
}
