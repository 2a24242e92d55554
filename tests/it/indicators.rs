//! The indicator library (jobs/indicators.toml, templates/market/) against values
//! computed independently: tests/fixtures/market/expected.py computes every number from
//! the textbook definitions in plain Python (no SQL, no shared code), and its results
//! are written out below. The conventions are documented in templates/market/indicators.sql.

use diesel::connection::SimpleConnection;

use super::util::{copy_dir, repo, Project, TestDb};

/// A project with the market fixture as `market/`.
fn project() -> Project {
    let p = Project::new();
    copy_dir(&repo().join("tests/fixtures/market"), &p.path("market"));
    p
}

const VARS: &[&str] = &[
    "data_dir=market",
    "symbols=[ACME,BOLT,SPY]",
    "chart_symbol=ACME",
    "top_n=2",
];

fn run(p: &Project, db: &TestDb, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "jobs/indicators.toml"];
    for v in VARS {
        args.extend(["--var", v]);
    }
    args.extend(extra);
    p.runner(Some(db), &args).expect_code(0);
    serde_json::from_str(&p.read("reports/indicators/latest/summary.json")).unwrap()
}

fn csv(p: &Project, name: &str) -> Vec<String> {
    p.read(&format!("reports/indicators/latest/{name}.csv"))
        .lines()
        .map(str::to_owned)
        .collect()
}

const COLUMNS: &str =
    "simple_return, log_return, sma20, sma50, sma200, ema12, ema26, macd, macd_signal, \
                       macd_hist, rsi14, bb_upper, bb_lower, atr14, vol20";

/// (symbol, seq, day, values of COLUMNS) from expected.py; None = NULL.
#[rustfmt::skip]
const EXPECTED: &[(&str, u32, &str, [Option<f64>; 15])] = &[
    ("ACME", 1, "2019-01-02", [None, None, None, None, None, Some(48.2), Some(48.2), Some(0.0), Some(0.0), Some(0.0), None, None, None, None, None]),
    ("ACME", 14, "2019-01-21", [Some(-0.0321966418556), Some(-0.0327263547546), None, None, None, Some(54.5216452372), Some(52.3658477482), Some(2.15579748902), Some(1.68426645154), Some(0.471531037475), None, None, None, Some(2.41428571429), None]),
    ("ACME", 15, "2019-01-22", [Some(0.0364872115901), Some(0.0358373147472), None, None, None, Some(55.0490844315), Some(52.7794886557), Some(2.26959577575), Some(1.80133231639), Some(0.468263459368), Some(67.4793832915), None, None, Some(2.43397959184), None]),
    ("ACME", 20, "2019-01-29", [Some(-0.0312651087832), Some(-0.0317642945995), Some(55.5775), None, None, Some(57.9626847174), Some(55.1245044952), Some(2.83818022213), Some(2.40786527802), Some(0.430314944114), Some(65.0088725733), Some(62.7640843765), Some(48.3909156235), Some(2.45470783117), None]),
    ("ACME", 21, "2019-01-30", [Some(0.0324405257029), Some(0.0319254419692), Some(56.2705), None, None, Some(58.5930409147), Some(55.638244903), Some(2.9547960117), Some(2.51725142476), Some(0.437544586944), Some(67.4694336341), Some(63.1440041282), Some(49.3969958718), Some(2.46508584323), Some(0.545338390172)]),
    ("ACME", 50, "2019-03-12", [Some(0.0201383551115), Some(0.0199382603637), Some(65.513), Some(60.9792), None, Some(65.4242186868), Some(64.1988073195), Some(1.2254113673), Some(1.61021452192), Some(-0.384803154623), Some(55.3932644801), Some(67.7014889764), Some(63.3245110236), Some(2.31447048722), Some(0.463596553427)]),
    ("ACME", 200, "2019-10-08", [Some(0.0217038240071), Some(0.0214716493968), Some(67.745), Some(61.567), Some(54.09135), Some(68.2707933766), Some(66.1586972494), Some(2.1120961272), Some(2.53197957104), Some(-0.419883443841), Some(56.5734496574), Some(70.9535043244), Some(64.5364956756), Some(2.40628939198), Some(0.457962759231)]),
    ("ACME", 260, "2019-12-31", [Some(0.0272620446533), Some(0.0268970538558), Some(47.292), Some(55.2968), Some(52.91405), Some(45.5613844788), Some(48.8941958147), Some(-3.33281133594), Some(-3.39208610772), Some(0.0592747717775), Some(37.9466972753), Some(53.0244779982), Some(41.5595220018), Some(2.23847526642), Some(0.657687348007)]),
    ("BOLT", 260, "2019-12-31", [Some(-0.00929752066116), Some(-0.00934101239314), Some(26.2155), Some(26.7192), Some(24.54105), Some(27.4788893326), Some(26.6951670035), Some(0.783722329095), Some(0.372502661748), Some(0.411219667347), Some(65.3189768948), Some(29.4562621017), Some(22.9747378983), Some(1.03290715681), Some(0.333250999865)]),
    ("SPY", 260, "2019-12-31", [Some(0.0057715961775), Some(0.00575500432665), Some(319.071), Some(323.8412), Some(315.5314), Some(318.520231523), Some(320.055909287), Some(-1.53567776438), Some(-1.72838070451), Some(0.192702940123), Some(46.4146273719), Some(322.032762313), Some(316.109237687), Some(1.8628505304), Some(0.0693812294599)]),
];

#[test]
fn every_indicator_matches_an_independent_computation() {
    let db = TestDb::new();
    let p = project();
    run(&p, &db, &[]);
    assert_eq!(
        db.scalar("SELECT count(*) FROM analytics.indicators"),
        "780"
    );
    let names: Vec<&str> = COLUMNS.split(", ").map(str::trim).collect();
    for (symbol, seq, day, expected) in EXPECTED {
        let row = &db.rows(&format!(
            "SELECT day::text, {COLUMNS} FROM analytics.indicators WHERE symbol = '{symbol}' AND seq = {seq}"
        ))[0];
        assert_eq!(row[0].as_deref(), Some(*day), "{symbol} #{seq}");
        for ((name, want), got) in names.iter().zip(expected).zip(&row[1..]) {
            let got: Option<f64> = got.as_ref().map(|v| v.parse().unwrap());
            match (want, got) {
                (None, None) => {}
                (Some(w), Some(g)) => assert!(
                    (w - g).abs() <= 1e-9 * w.abs().max(1.0),
                    "{symbol} #{seq} {name}: expected {w}, got {g}"
                ),
                _ => panic!("{symbol} #{seq} {name}: expected {want:?}, got {got:?}"),
            }
        }
    }
}

#[test]
fn market_reports_match_an_independent_computation() {
    let db = TestDb::new();
    let p = project();
    run(&p, &db, &[]);
    assert_eq!(
        csv(&p, "top_movers"),
        [
            "direction,rank,symbol,start_day,start_close,end_day,end_close,return_pct",
            "gainer,1,BOLT,2019-10-02,25.04,2019-12-31,28.77,14.90",
            "gainer,2,SPY,2019-10-02,321.86,2019-12-31,318.9,-0.92",
            "loser,1,ACME,2019-10-02,67.08,2019-12-31,43.71,-34.84",
            "loser,2,SPY,2019-10-02,321.86,2019-12-31,318.9,-0.92",
        ]
    );
    assert_eq!(
        csv(&p, "max_drawdown"),
        [
            "symbol,max_drawdown_pct,peak_day,peak_close,trough_day,trough_close",
            "ACME,-39.77,2019-10-09,70.64,2019-12-30,42.55",
            "BOLT,-20.19,2019-10-25,29.81,2019-12-02,23.79",
            "SPY,-4.15,2019-10-25,330.45,2019-12-23,316.72",
        ]
    );
    assert_eq!(
        csv(&p, "volume_spikes"),
        [
            "symbol,day,volume,window_mean,window_stddev,z_score",
            "ACME,2019-12-18,60000,12115.0,1462.5,32.74",
            "SPY,2019-12-04,45000,12415.0,1278.1,25.49",
            "BOLT,2019-12-25,30000,12715.0,1290.4,13.39",
        ]
    );
    assert_eq!(
        csv(&p, "return_correlation"),
        [
            "symbol_a,symbol_b,correlation,days",
            "ACME,ACME,1.0000,64",
            "ACME,BOLT,0.0419,64",
            "ACME,SPY,0.0984,64",
            "BOLT,ACME,0.0419,64",
            "BOLT,BOLT,1.0000,64",
            "BOLT,SPY,0.0248,64",
            "SPY,ACME,0.0984,64",
            "SPY,BOLT,0.0248,64",
            "SPY,SPY,1.0000,64",
        ]
    );
    assert_eq!(
        csv(&p, "beta"),
        [
            "symbol,benchmark,beta,correlation,days",
            "ACME,SPY,0.7765,0.0992,64",
            "BOLT,SPY,0.1171,0.0232,64"
        ]
    );
    let latest = csv(&p, "latest_indicators");
    assert_eq!(latest.len(), 4, "{latest:?}");
    assert!(latest[1].starts_with("ACME,2019-12-31,43.71,2.73,47.29,55.30,52.91,45.56,48.89,-3.3328,-3.3921,37.95,41.56,53.02,2.2385,65.77"), "{}", latest[1]);
    // The HTML report: a contents entry and a section per analysis shown, one SVG per
    // declared chart (3 on price_chart, including the candlestick, 1 each on
    // top_movers, max_drawdown and beta); the incremental indicators table is not shown.
    let html = p.read("reports/indicators/latest/report.html");
    assert_eq!(html.matches("<svg").count(), 6, "{html}");
    assert!(html.contains("Daily bars with SMA 20/50 and Bollinger bands"));
    assert!(!html.contains("id=\"indicators\""));
}

/// Everything in analytics.indicators as text, ordered.
fn dump(db: &TestDb) -> Vec<String> {
    db.lines("SELECT i::text FROM analytics.indicators i ORDER BY symbol, day")
}

#[test]
fn nightly_runs_compute_only_new_days_and_equal_a_full_rebuild() {
    let db = TestDb::new();
    let p = project();
    let first = run(&p, &db, &[]);
    assert_eq!(first["analyses"][0]["written"], 780);
    let full = dump(&db);
    // "Last night" ACME and SPY had data to different days (continued from stored
    // values), and BOLT only 10 days (still warming up: recomputed from its first day).
    db.conn()
        .batch_execute(
            "DELETE FROM analytics.indicators WHERE (symbol = 'ACME' AND day > '2019-11-15') \
             OR (symbol = 'SPY' AND day > '2019-12-20') OR (symbol = 'BOLT' AND seq > 10)",
        )
        .unwrap();
    let kept = db.scalar("SELECT count(*) FROM analytics.indicators");
    let nightly = run(&p, &db, &["--skip-ingest"]);
    assert_eq!(
        nightly["analyses"][0]["written"],
        780 - kept.parse::<i64>().unwrap()
    );
    assert_eq!(
        dump(&db),
        full,
        "an incremental run must equal the full build exactly"
    );
    // Nothing new: nothing written.
    let again = run(&p, &db, &["--skip-ingest"]);
    assert_eq!(again["analyses"][0]["written"], 0);
    assert_eq!(dump(&db), full);
}

#[test]
fn empty_results_keep_their_headers_and_injection_is_harmless() {
    let db = TestDb::new();
    let p = project();
    run(
        &p,
        &db,
        &["--var", "chart_symbol=x'); DROP TABLE daily_prices; --"],
    );
    assert_eq!(db.scalar("SELECT count(*) FROM daily_prices"), "780");
    assert_eq!(
        csv(&p, "price_chart"),
        ["day,open,high,low,close,volume,sma20,sma50,bb_upper,bb_lower,macd,macd_signal,rsi14"]
    );
    let md = p.read("reports/indicators/latest/report.md");
    let section = &md[md.find("## price_chart").unwrap()..];
    assert!(section.contains("| day |"), "{section}");
    let html = p.read("reports/indicators/latest/report.html");
    let section = &html[html.find("id=\"price_chart\"").unwrap()..];
    assert!(
        section.contains("<th") && section.contains(">rsi14<"),
        "{section}"
    );
    // Its three declared charts are still there, saying there is no data.
    assert_eq!(html.matches("<svg").count(), 6);
}

/// The indicator columns whose every value both engines compute with the same float8
/// operations in the same order (recursions, returns, true range): equal to the bit.
const EXACT: &[&str] = &[
    "close",
    "simple_return",
    "log_return",
    "ema12",
    "ema26",
    "macd",
    "macd_signal",
    "macd_hist",
    "rsi_avg_gain",
    "rsi_avg_loss",
    "rsi14",
    "tr",
    "atr14",
];
/// The windows: the template averages `numeric` values, runner sums float8.
const WINDOWS: &[&str] = &[
    "sma20",
    "sma50",
    "sma200",
    "bb_middle",
    "bb_upper",
    "bb_lower",
    "vol20",
];

/// Every row of analytics.indicators, key first, then EXACT, then WINDOWS.
fn indicator_rows(db: &TestDb) -> Vec<Vec<Option<String>>> {
    db.rows(&format!(
        "SELECT symbol, day::text, seq, {}, {} FROM analytics.indicators ORDER BY symbol, day",
        EXACT.join(", "),
        WINDOWS.join(", ")
    ))
}

/// `native` and `template` hold the same rows: keys and EXACT columns equal, windows
/// within 1e-12 (relative, or absolute below 1), NULL in the same places.
fn assert_same_indicators(native: &[Vec<Option<String>>], template: &[Vec<Option<String>>]) {
    assert_eq!(native.len(), template.len());
    let exact = 3 + EXACT.len();
    for (n, t) in native.iter().zip(template) {
        assert_eq!(n[..exact], t[..exact], "{:?}", &t[..3]);
        for (i, (a, b)) in n[exact..].iter().zip(&t[exact..]).enumerate() {
            let (a, b) = match (a, b) {
                (None, None) => continue,
                (Some(a), Some(b)) => (a.parse::<f64>().unwrap(), b.parse::<f64>().unwrap()),
                _ => panic!("{:?} {}: {a:?} against {b:?}", &t[..3], WINDOWS[i]),
            };
            assert!(
                (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0),
                "{:?} {}: {a} against {b}",
                &t[..3],
                WINDOWS[i]
            );
        }
    }
}

/// A project with generated data (malformed rows included, so some highs and lows are
/// NULL) and, as `jobs/sql.toml`, the indicators job without `native`. 70 symbols are
/// three batches of the native computation: its two reading connections take them in
/// turn (0 and 2, 1), and the writer must put them back in order.
fn generated_project() -> Project {
    let p = Project::new();
    p.generate("70", "2", "7");
    // Highs and lows missing here and there (one or both): the true range then takes
    // what there is.
    let mut files: Vec<_> = std::fs::read_dir(p.path("gen/stocks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in &files[..3] {
        let text = std::fs::read_to_string(path).unwrap();
        let lines: Vec<String> = text
            .lines()
            .enumerate()
            .map(|(i, line)| {
                let mut fields: Vec<&str> = line.split(',').collect();
                if i > 0 && fields.len() == 7 {
                    if i % 37 == 5 || i % 101 == 9 {
                        fields[2] = "";
                    }
                    if i % 41 == 7 || i % 101 == 9 {
                        fields[3] = "";
                    }
                }
                fields.join(",")
            })
            .collect();
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }
    let job = p.read("jobs/indicators.toml");
    assert!(job.contains("\nnative = \"indicators\"\n"));
    p.write(
        "jobs/sql.toml",
        &job.replace("\nnative = \"indicators\"\n", "\n"),
    );
    p
}

fn run_job(p: &Project, db: &TestDb, job: &str, extra: &[&str]) {
    let mut args = vec!["run", job, "--var", "data_dir=gen"];
    args.extend(extra);
    p.runner(Some(db), &args).expect_code(0);
}

#[test]
fn runner_computes_the_rows_its_template_defines() {
    let p = generated_project();
    let native = TestDb::new();
    let template = TestDb::new();
    run_job(&p, &native, "jobs/indicators.toml", &[]);
    run_job(&p, &template, "jobs/sql.toml", &[]);
    assert_ne!(
        native.scalar("SELECT count(*) FROM daily_prices WHERE high IS NULL OR low IS NULL"),
        "0",
        "the data should exercise the true range's NULL handling"
    );
    let native_rows = indicator_rows(&native);
    assert_eq!(
        native_rows.len().to_string(),
        native.scalar("SELECT count(*) FROM daily_prices")
    );
    assert_same_indicators(&native_rows, &indicator_rows(&template));

    // A table the template built is continued natively: its stored values seed runner's.
    template.execute(
        "DELETE FROM analytics.indicators i USING (SELECT symbol, max(day) - 40 AS cut \
         FROM daily_prices GROUP BY symbol) c WHERE i.symbol = c.symbol AND i.day > c.cut",
    );
    run_job(&p, &template, "jobs/indicators.toml", &["--skip-ingest"]);
    assert_same_indicators(&native_rows, &indicator_rows(&template));
}

#[test]
fn a_template_that_parted_from_its_native_computation_fails_the_analysis() {
    let p = project();
    p.write(
        "templates/market/indicators.sql",
        "SELECT symbol, day, close FROM daily_prices",
    );
    let db = TestDb::new();
    let mut args = vec!["run", "jobs/indicators.toml", "--select", "indicators"];
    for v in VARS {
        args.extend(["--var", v]);
    }
    let out = p.runner(Some(&db), &args);
    assert_ne!(out.code(), 0);
    let log = out.stderr();
    assert!(
        log.contains(
            "its template's columns are not the ones runner's native `indicators` computes"
        ) && log.contains("template: symbol text, day date, close double precision")
            && log.contains("remove `native` to run the template as written"),
        "{log}"
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'analytics' AND tablename = 'indicators'"),
        "0"
    );
}
