//! `[[test]]`: every built-in test passing and failing on a hand-made fixture, a custom
//! test, severities and the exit code.

use super::util::{Project, TestDb};

/// Trading days seen across symbols: 2020-03-02..06, 09, 10, 11. AAA stops on the
/// 10th; BBB lacks the 4th, has a close of 500 and a row without a volume.
const AAA: &str = "Date,Open,High,Low,Close,Adj Close,Volume
2020-03-02,10,11,9,10,10,100
2020-03-03,10,11,9,10.5,10.5,100
2020-03-04,10,11,9,11,11,100
2020-03-05,10,11,9,10,10,100
2020-03-06,10,11,9,10,10,100
2020-03-09,10,11,9,10,10,100
2020-03-10,10,11,9,10,10,100
";
const BBB: &str = "Date,Open,High,Low,Close,Adj Close,Volume
2020-03-02,20,21,19,20,20,200
2020-03-03,20,21,19,20,20,200
2020-03-05,20,21,19,20,20,
2020-03-06,20,501,19,500,500,200
2020-03-09,20,21,19,20,20,200
2020-03-10,20,21,19,20,20,200
2020-03-11,20,21,19,20,20,200
";

const JOB: &str = r#"
name = "tested"
database_url = "${DATABASE_URL:-postgres://postgres@localhost:5432/stocks}"

[[ingest]]
kind = "prices"
paths = ["data/stocks/*.csv"]

[[analysis]]
name = "last_closes"
template = "last_closes.sql"

[[test]]
kind = "unique"
on = "daily_prices"
columns = ["symbol", "day"]

[[test]]
kind = "not_null"
on = "daily_prices"
columns = ["volume"]
severity = "warn"

[[test]]
kind = "accepted_range"
on = "daily_prices"
column = "close"
min = 0
max = 100

[[test]]
kind = "row_count"
on = "symbols"
min = 1
severity = "warn"

[[test]]
name = "fresh_symbols"
kind = "freshness"
on = "daily_prices"
partition = "symbol"
within = 0
severity = "warn"

[[test]]
kind = "no_gaps"
on = "daily_prices"
severity = "warn"

[[test]]
kind = "unique"
on = "last_closes"
columns = ["symbol"]

[[test]]
kind = "custom"
template = "tests/negative_volume.sql"
"#;

fn project(job: &str) -> Project {
    Project::new()
        .without_fixture()
        .data("stocks/AAA.csv", AAA)
        .data("stocks/BBB.csv", BBB)
        .job("tested", job)
        .template(
            "last_closes.sql",
            "SELECT DISTINCT ON (symbol) symbol, day, close FROM daily_prices ORDER BY symbol, day DESC",
        )
        .template(
            "tests/negative_volume.sql",
            "SELECT * FROM daily_prices WHERE volume < 0",
        )
}

fn outcomes(p: &Project) -> Vec<String> {
    let summary: serde_json::Value =
        serde_json::from_str(&p.read("reports/tested/latest/summary.json")).unwrap();
    summary["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{} {} {} {}",
                t["name"].as_str().unwrap(),
                t["severity"].as_str().unwrap(),
                t["outcome"].as_str().unwrap(),
                t["message"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn built_in_and_custom_tests_pass_and_fail_with_exact_messages() {
    let db = TestDb::new();
    let p = project(JOB);
    let out = p
        .runner(Some(&db), &["run", "jobs/tested.toml"])
        .expect_code(3);
    let log = out.stderr();
    assert!(
        log.contains("test accepted_range_daily_prices_close (error): 1 failing row"),
        "{log}"
    );
    assert!(
        log.contains("data tests failed: accepted_range_daily_prices_close"),
        "{log}"
    );
    assert_eq!(
        outcomes(&p),
        [
            "unique_daily_prices_symbol_day error passed passed",
            "not_null_daily_prices_volume warn failed 1 failing row",
            "accepted_range_daily_prices_close error failed 1 failing row",
            "row_count_symbols warn failed 1 failing row",
            "fresh_symbols warn failed 1 failing row",
            "no_gaps_daily_prices warn failed 1 failing row",
            "unique_last_closes_symbol error passed passed",
            "custom_tests_negative_volume error passed passed",
        ]
    );
    let md = p.read("reports/tested/latest/report.md");
    assert!(md.contains("## Data tests"), "{md}");
    assert!(
        md.contains("- ❌ `accepted_range_daily_prices_close` (error): 1 failing row"),
        "{md}"
    );
    assert!(
        md.contains("- ⚠️ `fresh_symbols` (warn): 1 failing row"),
        "{md}"
    );
    // The failing rows are shown: the stale symbol, the gap, the bad close.
    assert!(md.contains("| AAA    | 2020-03-10 | 2020-03-11 |"), "{md}");
    assert!(md.contains("| BBB    | 2020-03-04  |"), "{md}");
    let html = p.read("reports/tested/latest/report.html");
    assert!(
        html.contains("<h3>accepted_range_daily_prices_close: failing rows</h3>"),
        "{html}"
    );
    assert_eq!(
        db.lines("SELECT status, exit_code FROM runs"),
        ["partial|3"]
    );
}

#[test]
fn warn_level_failures_keep_exit_0() {
    let db = TestDb::new();
    let job = JOB.replace("max = 100\n", "max = 100\nseverity = \"warn\"\n");
    let p = project(&job);
    p.runner(Some(&db), &["run", "jobs/tested.toml"])
        .expect_code(0);
    assert_eq!(
        db.lines("SELECT status, exit_code FROM runs"),
        ["succeeded|0"]
    );
}

#[test]
fn bad_test_sections_are_config_errors_at_their_key() {
    let p = project(&format!(
        "{JOB}\n[[test]]\nkind = \"uniq\"\non = \"daily_prices\"\n"
    ));
    let err = p
        .runner(None, &["check", "jobs/tested.toml", "--offline"])
        .expect_code(2)
        .stderr();
    assert!(
        err.contains(
            "unknown test kind `uniq`: expected unique, not_null, accepted_range, row_count, \
             freshness, no_gaps or custom"
        ),
        "{err}"
    );
    assert!(err.contains("test[8].kind"), "{err}");
    let p = project(&format!(
        "{JOB}\n[[test]]\nkind = \"not_null\"\non = \"prices\"\ncolumns = [\"x\"]\n"
    ));
    let err = p
        .runner(None, &["check", "jobs/tested.toml", "--offline"])
        .expect_code(2)
        .stderr();
    assert!(
        err.contains(
            "`on = \"prices\"` is neither an analysis of this job nor one of daily_prices, \
             symbols, prices_weekly, prices_monthly, intraday_bars"
        ),
        "{err}"
    );
}
