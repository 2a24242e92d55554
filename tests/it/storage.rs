use runner::db::storage::{self, Aggregate, PgInterval, StorageSettings};

use super::util::{Project, TestDb};

fn connect(db: &TestDb) -> (runner::db::PooledConn, runner::db::Capabilities) {
    let (pool, caps) =
        runner::cmd::prepare_database(&db.url, 2).expect("prepare the test database");
    (pool.get().expect("a pooled connection"), caps)
}

fn apply(
    conn: &mut diesel::PgConnection,
    caps: &runner::db::Capabilities,
    settings: &StorageSettings,
) -> Vec<String> {
    storage::apply_settings(conn, caps, settings).expect("apply [storage]")
}

#[test]
fn applying_the_same_settings_twice_changes_nothing_and_each_change_is_one_action() {
    let db = TestDb::new();
    let (mut conn, caps) = connect(&db);
    let defaults = StorageSettings::default();
    let first = apply(&mut conn, &caps, &defaults);
    assert!(
        first.iter().any(|a| a.starts_with("created prices_weekly")),
        "{first:?}"
    );
    assert!(
        first
            .iter()
            .any(|a| a.starts_with("created prices_monthly")),
        "{first:?}"
    );
    assert_eq!(apply(&mut conn, &caps, &defaults), Vec::<String>::new());

    // Dropping an aggregate is one action on both backends, and so is bringing it back.
    let weekly_only = StorageSettings {
        aggregates: [Aggregate::Weekly].into_iter().collect(),
        ..defaults.clone()
    };
    assert_eq!(
        apply(&mut conn, &caps, &weekly_only),
        ["dropped prices_monthly"]
    );
    assert_eq!(apply(&mut conn, &caps, &weekly_only), Vec::<String>::new());
    assert_eq!(apply(&mut conn, &caps, &defaults).len(), 1);

    if !db.has_timescale() {
        // Chunking, compression and retention are TimescaleDB's: nothing to change here.
        let other = StorageSettings {
            chunk_days: 30,
            retention: Some(PgInterval::parse("40 years").unwrap()),
            ..defaults.clone()
        };
        assert_eq!(apply(&mut conn, &caps, &other), Vec::<String>::new());
        assert_eq!(db.scalar("SELECT count(*) FROM pg_class WHERE relname IN ('prices_weekly', 'prices_monthly') AND relkind = 'r'"), "2");
        return;
    }

    // The TimescaleDB objects the defaults ask for.
    assert_eq!(
        db.scalar("SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'daily_prices'"),
        "365 days"
    );
    assert_eq!(
        db.lines(
            "SELECT attname, segmentby_column_index, orderby_column_index, orderby_asc \
             FROM timescaledb_information.compression_settings WHERE hypertable_name = 'daily_prices' ORDER BY attname"
        ),
        ["day|NULL|1|false", "symbol|1|NULL|NULL"]
    );
    assert_eq!(
        db.lines(
            "SELECT proc_name, config ->> 'compress_after' FROM timescaledb_information.jobs \
             WHERE hypertable_name = 'daily_prices' ORDER BY proc_name"
        ),
        ["policy_compression|1 year"]
    );
    assert_eq!(
        db.lines(
            "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates ORDER BY view_name"
        ),
        // The daily aggregates are materialized only; the intraday rollups are real-time.
        [
            "intraday_daily|false",
            "intraday_hourly|false",
            "prices_monthly|true",
            "prices_weekly|true"
        ]
    );
    assert_eq!(
        db.scalar(
            "SELECT count(*) FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'"
        ),
        "4",
        "a refresh policy for each of the four continuous aggregates"
    );

    // One setting changed → one action, and the database follows.
    let monthly_chunks = StorageSettings {
        chunk_days: 30,
        ..defaults.clone()
    };
    let actions = apply(&mut conn, &caps, &monthly_chunks);
    assert_eq!(actions.len(), 1, "{actions:?}");
    assert!(
        actions[0].starts_with("chunk interval of daily_prices: 365 → 30 days"),
        "{actions:?}"
    );
    assert_eq!(
        db.scalar("SELECT time_interval FROM timescaledb_information.dimensions WHERE hypertable_name = 'daily_prices'"),
        "30 days"
    );

    let later = StorageSettings {
        compress_after: Some(PgInterval::parse("2 years").unwrap()),
        ..monthly_chunks.clone()
    };
    let actions = apply(&mut conn, &caps, &later);
    assert_eq!(
        actions,
        ["compression policy: compress chunks older than 2 years (was 1 year)"]
    );
    assert_eq!(
        db.scalar("SELECT config ->> 'compress_after' FROM timescaledb_information.jobs WHERE proc_name = 'policy_compression' AND hypertable_name = 'daily_prices'"),
        "2 years"
    );

    let retained = StorageSettings {
        retention: Some(PgInterval::parse("40 years").unwrap()),
        ..later.clone()
    };
    assert_eq!(
        apply(&mut conn, &caps, &retained),
        ["added retention policy: drop chunks older than 40 years"]
    );
    assert_eq!(apply(&mut conn, &caps, &retained), Vec::<String>::new());
    assert_eq!(
        db.scalar("SELECT config ->> 'drop_after' FROM timescaledb_information.jobs WHERE proc_name = 'policy_retention'"),
        "40 years"
    );

    let uncompressed = StorageSettings {
        compress_after: None,
        retention: None,
        ..retained.clone()
    };
    let actions = apply(&mut conn, &caps, &uncompressed);
    assert_eq!(
        actions,
        [
            "removed the compression policy",
            "decompressed 0 chunk(s) and disabled compression on daily_prices",
            "removed the retention policy",
        ]
    );
    assert_eq!(
        db.scalar("SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_name = 'daily_prices'"),
        "false"
    );
}

/// Hand-checked from tests/fixtures/basic (see its README): e.g. AAA's week of
/// 2019-12-30 holds 10, 11, 12, 12.5 (volumes 1000, 2000, 100, 200); BBB's week of
/// 2020-03-30 has no volume on 2020-04-01, so 3 trading days but 2 with volume.
const WEEKLY: [&str; 8] = [
    "AAA|2019-09-30|8|9|8|9|1002999|8.5|2|2",
    "AAA|2019-12-30|10|12.5|10|12.5|3300|11.375|4|4",
    "AAA|2020-02-10|13|13|13|13|300|13|1|1",
    "AAA|2020-03-23|13.5|13.5|13.5|13.5|350|13.5|1|1",
    "AAA|2020-03-30|14|16|14|16|5900|15|3|3",
    "BBB|2020-03-23|19|18|20|19|150|19|1|1",
    "BBB|2020-03-30|20|22.5|19.5|22|1400|21|3|2",
    "ETF1|2020-03-30|50|50|49|49|30|49.5|2|2",
];

const MONTHLY: [&str; 11] = [
    "AAA|2019-09-01|8|8|8|8|999999|8|1|1",
    "AAA|2019-10-01|9|9|9|9|3000|9|1|1",
    "AAA|2019-12-01|10|11|10|11|3000|10.5|2|2",
    "AAA|2020-01-01|12|12.5|12|12.5|300|12.25|2|2",
    "AAA|2020-02-01|13|13|13|13|300|13|1|1",
    "AAA|2020-03-01|13.5|15|13.5|15|1250|14.1667|3|3",
    "AAA|2020-04-01|16|16|16|16|5000|16|1|1",
    "BBB|2020-03-01|19|21.5|19.5|21|1550|20|3|3",
    "BBB|2020-04-01|22|22.5|21.5|22|NULL|22|1|0",
    "ETF1|2020-03-01|50|50|50|50|10|50|1|1",
    "ETF1|2020-04-01|49|49|49|49|20|49|1|1",
];

fn aggregate_lines(db: &TestDb, relation: &str) -> Vec<String> {
    db.lines(&format!(
        "SELECT symbol, bucket, open, high, low, close, volume, round(avg_close::numeric, 4)::float8, trading_days, volume_days \
         FROM {relation} ORDER BY symbol, bucket"
    ))
}

#[test]
fn weekly_and_monthly_aggregates_hold_hand_checked_values() {
    let p = Project::with_database();
    let db = p.db();
    let log = p.run_ok(&["run", "jobs/quarterly.toml"]).stderr();
    assert!(log.contains("rebuilt prices_weekly"), "{log}");
    assert!(log.contains("rebuilt prices_monthly"), "{log}");
    assert_eq!(aggregate_lines(db, "prices_weekly"), WEEKLY);
    assert_eq!(aggregate_lines(db, "prices_monthly"), MONTHLY);
    if db.has_timescale() {
        assert_eq!(
            db.scalar("SELECT count(*) FROM timescaledb_information.continuous_aggregates WHERE hypertable_name = 'daily_prices'"),
            "2"
        );
    }
}

#[test]
fn templates_read_the_aggregates_through_ohlcv() {
    let p = Project::with_database()
        .template(
            "monthly_volume.sql",
            "SELECT symbol, sum(volume) / sum(volume_days) AS avg_volume\n\
             FROM {{ ohlcv('monthly') }}\n\
             WHERE bucket >= DATE '2020-01-01' AND bucket < DATE '2020-04-01'\n\
             GROUP BY symbol ORDER BY symbol\n",
        )
        .job(
            "monthly",
            "name = \"monthly\"\n\
             [[ingest]]\nkind = \"prices\"\npaths = [\"data/stocks/*.csv\", \"data/etfs/*.csv\"]\n\
             [[analysis]]\nname = \"monthly_volume\"\ntemplate = \"monthly_volume.sql\"\n\
             [report]\nformats = [\"csv\"]\n",
        );
    p.run_ok(&["run", "jobs/monthly.toml"]);
    // AAA's Q1 2020 volumes 100..500 average 308.33 (fixture README), from the aggregate.
    let csv = p.read("reports/monthly/latest/monthly_volume.csv");
    let aaa = csv
        .lines()
        .find(|l| l.starts_with("AAA,"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(aaa.starts_with("AAA,308.33"), "{csv}");
    assert!(csv.contains("BBB,516.66"), "{csv}");
}

#[test]
fn a_changed_file_over_compressed_chunks_reloads_and_the_aggregates_follow() {
    let p = Project::with_database();
    let db = p.db();
    p.run_ok(&["run", "jobs/quarterly.toml"]);
    p.run_ok(&["maintain", "jobs/quarterly.toml"]);
    if db.has_timescale() {
        // Every chunk is older than the default `compress_after` (1 year).
        assert_eq!(
            db.lines(
                "SELECT count(*) AS chunks, count(*) FILTER (WHERE is_compressed) AS compressed \
                 FROM timescaledb_information.chunks \
                 WHERE hypertable_name = 'daily_prices'"
            ),
            ["2|2"]
        );
    }
    // AAA loses its first row (2019-09-30) and its 2020-01-02 close becomes 30.
    let aaa = p.read("data/stocks/AAA.csv");
    let changed: String = aaa
        .lines()
        .filter(|l| !l.starts_with("2019-09-30"))
        .map(|l| {
            if l.starts_with("2020-01-02") {
                "2020-01-02,12,30,12,30,30,100".to_owned()
            } else {
                l.to_owned()
            }
        })
        .map(|l| l + "\n")
        .collect();
    p.write("data/stocks/AAA.csv", &changed);
    let log = p.run_ok(&["run", "jobs/quarterly.toml"]).stderr();
    assert!(log.contains("1 replaced"), "{log}");
    if db.has_timescale() {
        // The deleted day counts as touched, so September's buckets are refreshed too.
        assert!(
            log.contains("refreshed prices_weekly for 1 symbol(s) within [2019-09-30, 2020-04-06)"),
            "{log}"
        );
    } else {
        // The replaced file's buckets, September's gone, were written with its rows.
        assert!(
            log.contains("prices_weekly: the ingest wrote the buckets of all 1 change(s) itself"),
            "{log}"
        );
    }
    assert_eq!(
        db.scalar("SELECT count(*) FROM daily_prices WHERE symbol = 'AAA'"),
        "10"
    );
    assert_eq!(
        db.scalar("SELECT close FROM daily_prices WHERE symbol = 'AAA' AND day = '2020-01-02'"),
        "30"
    );

    let mut weekly: Vec<String> = WEEKLY.iter().map(|s| s.to_string()).collect();
    weekly[0] = "AAA|2019-09-30|9|9|9|9|3000|9|1|1".into();
    weekly[1] = "AAA|2019-12-30|10|30|10|12.5|3300|15.875|4|4".into();
    let mut monthly: Vec<String> = MONTHLY.iter().map(|s| s.to_string()).collect();
    monthly.remove(0);
    monthly[2] = "AAA|2020-01-01|12|30|12|12.5|300|21.25|2|2".into();
    assert_eq!(aggregate_lines(db, "prices_weekly"), weekly);
    assert_eq!(aggregate_lines(db, "prices_monthly"), monthly);

    // Maintenance recompresses what the reload touched; the values stay.
    p.run_ok(&["maintain", "jobs/quarterly.toml"]);
    if db.has_timescale() {
        assert_eq!(
            db.scalar(
                "SELECT count(*) FROM show_chunks('daily_prices') c \
                 WHERE _timescaledb_functions.chunk_status(c) <> 1"
            ),
            "0",
            "every chunk fully compressed again"
        );
    }
    assert_eq!(
        db.lines("SELECT day, close FROM daily_prices WHERE symbol = 'AAA' AND day <= '2020-01-02' ORDER BY day"),
        ["2019-10-01|9", "2019-12-30|10", "2019-12-31|11", "2020-01-02|30"]
    );
    assert_eq!(aggregate_lines(db, "prices_weekly"), weekly);
}

#[test]
fn bad_storage_values_are_config_errors_at_their_key() {
    let p = Project::new().extend_job(
        "quarterly",
        "bad",
        "[storage]\nchunk_interval = \"a fortnight\"\naggregates = [\"weekly\", \"daily\"]\n",
    );
    let out = p.run(&["check", "jobs/bad.toml"]).expect_code(2).stderr();
    assert!(out.contains("storage.chunk_interval"), "{out}");
    assert!(out.contains("`a fortnight` is not an interval"), "{out}");
    assert!(out.contains("unknown aggregate `daily`"), "{out}");
}

/// The aggregate-reading variants of the headline analyses that the storage benchmark
/// times (scripts/bench-storage/templates) must give the raw analyses' exact CSVs.
#[test]
fn analyses_via_the_aggregates_equal_the_raw_analyses() {
    let p = Project::with_database();
    super::util::copy_dir(
        &super::util::repo().join("scripts/bench-storage/templates"),
        &p.path("templates"),
    );
    let mut job = String::from(
        "name = \"pairs\"\n[vars]\nsymbol = \"AAA\"\nweeks = 30\nsymbols = []\n\
         [[ingest]]\nkind = \"prices\"\npaths = [\"data/stocks/*.csv\", \"data/etfs/*.csv\"]\n\
         [report]\nformats = [\"csv\"]\n",
    );
    let names = [
        "avg_volume_last_quarter",
        "weekly_avg_close",
        "highest_volume_day",
    ];
    for name in names {
        job += &format!("[[analysis]]\nname = \"{name}\"\ntemplate = \"{name}.sql\"\n");
        job += &format!("[[analysis]]\nname = \"{name}_agg\"\ntemplate = \"{name}_agg.sql\"\n");
    }
    let p = p.job("pairs", &job);
    p.run_ok(&["run", "jobs/pairs.toml"]);
    for name in names {
        let raw = p.read(&format!("reports/pairs/latest/{name}.csv"));
        assert_eq!(
            p.read(&format!("reports/pairs/latest/{name}_agg.csv")),
            raw,
            "{name}"
        );
        assert!(raw.lines().count() > 1, "{name}: {raw}");
    }
    // A mid-month as_of: the record-day search must not see bars after it.
    p.run_ok(&[
        "run",
        "jobs/pairs.toml",
        "--skip-ingest",
        "--var",
        "as_of=2020-03-30",
    ]);
    let raw = p.read("reports/pairs/latest/highest_volume_day.csv");
    assert!(raw.contains("BBB,2020-03-30,700,20"), "{raw}");
    assert_eq!(
        p.read("reports/pairs/latest/highest_volume_day_agg.csv"),
        raw
    );
}
