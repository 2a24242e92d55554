//! Issue 10, the run-time half: runs never hang (connect and statement timeouts),
//! analyses cannot change state (read-only, materializations write only their target),
//! results stream (memory bounded by `max_rows`), broken pipes end output quietly,
//! no exit-time crash, passwords never printed, warnings a user needs.

use std::io::Write;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::util::{Project, TestDb};

/// A job over the fixture with one analysis `name` whose template is `sql`, plus the
/// extra keys in `analysis_keys` (TOML lines).
fn job_with(p: &Project, name: &str, sql: &str, analysis_keys: &str) {
    p.write(
        "jobs/hostile.toml",
        &format!(
            r#"
name = "hostile"
[[ingest]]
kind = "prices"
paths = ["data/stocks/*.csv", "data/etfs/*.csv"]

[[analysis]]
name = "{name}"
template = "hostile/{name}.sql"
{analysis_keys}

[report]
formats = ["csv", "markdown"]
max_rows = 5
"#
        ),
    );
    p.write(&format!("templates/hostile/{name}.sql"), sql);
}

fn summary(p: &Project) -> serde_json::Value {
    serde_json::from_str(&p.read("reports/hostile/latest/summary.json")).unwrap()
}

fn failures(p: &Project) -> Vec<String> {
    summary(p)["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_owned())
        .collect()
}

/// A server that accepts TCP connections and never says a word.
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().take(8) {
            held.push(stream);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    (port, handle)
}

fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or_default()
}

#[test]
fn a_server_that_never_answers_fails_within_the_connect_timeout() {
    let (port, _server) = silent_server();
    let p = Project::new();
    job_with(&p, "one", "SELECT 1 AS one", "");
    let url = format!("postgres://nobody@127.0.0.1:{port}/none");
    let started = Instant::now();
    let run = p
        .command(
            None,
            &["run", "jobs/hostile.toml", "--connect-timeout", "2"],
        )
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(
        elapsed < Duration::from_secs(6),
        "took {elapsed:?} for a 2 s timeout"
    );
    assert_eq!(
        last_line(&String::from_utf8_lossy(&run.stderr)),
        format!("cannot connect to {url}: no answer within 2 s (the connect timeout; set `connect_timeout` in the job or pass --connect-timeout SECONDS)")
    );

    // The job key does the same.
    let job = p.read("jobs/hostile.toml");
    p.write("jobs/hostile.toml", &format!("connect_timeout = 2\n{job}"));
    let started = Instant::now();
    let run = p
        .command(None, &["doctor", "jobs/hostile.toml"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    assert!(started.elapsed() < Duration::from_secs(6));
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("no answer within 2 s"),
        "{run:?}"
    );
}

#[test]
fn a_zero_connect_timeout_is_a_config_error() {
    let p = Project::new();
    job_with(&p, "one", "SELECT 1 AS one", "statement_timeout = 0");
    let out = p
        .runner(None, &["check", "--offline", "jobs/hostile.toml"])
        .expect_code(2)
        .stderr();
    assert!(
        out.contains("error: `analysis.one.statement_timeout` must be at least 1 (seconds); 0 would wait forever"),
        "{out}"
    );
}

#[test]
fn a_sleeping_analysis_is_cancelled_by_its_statement_timeout() {
    let db = TestDb::new();
    let p = Project::new();
    job_with(
        &p,
        "slow",
        "SELECT pg_sleep(60)::text AS slept",
        "statement_timeout = 1",
    );
    let started = Instant::now();
    p.runner(Some(&db), &["run", "jobs/hostile.toml"])
        .expect_code(1);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        failures(&p),
        ["analysis `slow`: cancelled after 1 s: it ran longer than its statement_timeout (set `statement_timeout` in seconds on the analysis or the job)"]
    );
    // The next run is not held up by it.
    job_with(&p, "slow", "SELECT 1 AS fast", "statement_timeout = 1");
    p.runner(Some(&db), &["run", "jobs/hostile.toml", "--skip-ingest"])
        .expect_code(0);
    assert_eq!(p.read("reports/hostile/latest/slow.csv"), "fast\n1\n");
}

#[test]
fn analyses_cannot_change_state_and_later_runs_work() {
    let db = TestDb::new();
    let p = Project::new();
    job_with(&p, "reset", "SELECT setval('runs_id_seq', 1) AS v", "");
    p.runner(Some(&db), &["run", "jobs/hostile.toml"])
        .expect_code(1);
    assert_eq!(
        failures(&p),
        ["analysis `reset`: analysis `reset` failed: cannot execute setval() in a read-only transaction\n  = analyses run read-only: a template may read the database, not change it"]
    );
    let first = summary(&p)["run_id"].as_i64().unwrap();

    // A materialized table: its query is read-only too, and nothing is created.
    job_with(
        &p,
        "reset",
        "SELECT nextval('runs_id_seq') AS v",
        "materialize = \"table\"",
    );
    p.runner(Some(&db), &["run", "jobs/hostile.toml", "--skip-ingest"])
        .expect_code(1);
    assert_eq!(
        failures(&p),
        ["analysis `reset`: analysis `reset` failed: cannot execute nextval() in a read-only transaction\n  = analyses run read-only: a template may read the database, not change it"]
    );
    assert_eq!(
        db.scalar("SELECT count(*) FROM pg_class WHERE relname = 'reset'"),
        "0"
    );

    // A lock that would outlive the analysis fails it.
    job_with(&p, "reset", "SELECT pg_advisory_lock(42)::text AS l", "");
    p.runner(Some(&db), &["run", "jobs/hostile.toml", "--skip-ingest"])
        .expect_code(1);
    assert_eq!(
        failures(&p),
        ["analysis `reset`: analysis `reset` failed: it took 1 advisory lock(s) (pg_advisory_lock) that would outlive it; an analysis may read, not lock — released"]
    );

    // Later runs work, with their ids in sequence.
    job_with(&p, "reset", "SELECT 2 AS two", "materialize = \"table\"");
    p.runner(Some(&db), &["run", "jobs/hostile.toml", "--skip-ingest"])
        .expect_code(0);
    assert_eq!(summary(&p)["run_id"].as_i64().unwrap(), first + 3);
    assert_eq!(db.lines("SELECT two FROM analytics.reset"), ["2"]);
}

#[test]
fn a_template_that_is_not_one_select_is_a_config_error() {
    let p = Project::new();
    for (sql, why) in [
        ("DELETE FROM daily_prices", "it starts with `DELETE`"),
        ("insert into runs default values", "it starts with `INSERT`"),
        (
            "SELECT 1 AS one; DROP TABLE daily_prices",
            "it holds more than one statement",
        ),
    ] {
        job_with(&p, "dml", sql, "");
        let err = p
            .runner(None, &["run", "jobs/hostile.toml"])
            .expect_code(2)
            .stderr();
        let template = p.path("templates/hostile/dml.sql");
        assert_eq!(
            err.trim_end(),
            format!(
                "error: an analysis must be one SELECT: template `hostile/dml.sql` of analysis `dml` renders to something else ({why})\n --> {}:1:1\n  = key: `analysis.dml.template`\n  = help: an analysis reads; use `materialize` to keep its result in a table",
                template.display()
            )
        );
    }
}

#[test]
fn large_results_stream_to_csv_and_documents_keep_max_rows() {
    let db = TestDb::new();
    let p = Project::new();
    job_with(
        &p,
        "many",
        "SELECT g AS n, CASE WHEN g % 3 = 0 THEN NULL ELSE 'v,' || g END AS label FROM generate_series(1, 12345) g",
        "",
    );
    p.runner(Some(&db), &["run", "jobs/hostile.toml"])
        .expect_code(0);
    let csv = p.read("reports/hostile/latest/many.csv");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 12346);
    assert_eq!(lines[..4], ["n,label", "1,\"v,1\"", "2,\"v,2\"", "3,"]);
    assert_eq!(lines[12345], "12345,");
    assert_eq!(summary(&p)["analyses"][0]["rows"], 12345);
    let md = p.read("reports/hostile/latest/report.md");
    assert!(md.contains("Showing 5 of 12,345 rows."), "{md}");
    assert!(md.contains("… 12,340 more rows in many.csv"), "{md}");
}

#[test]
fn a_materialized_table_streams_and_keeps_every_row() {
    let db = TestDb::new();
    let p = Project::new();
    job_with(
        &p,
        "kept",
        "SELECT g AS n, g::numeric / 7 AS frac, NULLIF('', '') AS nothing, '' AS empty FROM generate_series(1, 7000) g",
        "materialize = \"table\"",
    );
    p.runner(Some(&db), &["run", "jobs/hostile.toml"])
        .expect_code(0);
    assert_eq!(
        db.lines("SELECT count(*) AS rows, sum(n) AS total, min(frac)::text AS least, count(nothing) AS nulls, count(empty) AS empties FROM analytics.kept"),
        ["7000|24503500|0.14285714285714285714|0|7000"]
    );
    assert_eq!(
        db.lines("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'analytics.kept'::regclass AND attnum > 0 ORDER BY attnum"),
        ["integer", "numeric", "text", "text"]
    );
    let csv = p.read("reports/hostile/latest/kept.csv");
    assert_eq!(csv.lines().count(), 7001);
    assert_eq!(csv.lines().nth(1), Some("1,0.14285714285714285714,,"));
}

/// `runner render … | head -1`: the reader goes away; runner ends quietly.
#[test]
fn a_closed_stdout_ends_output_quietly() {
    let p = Project::new();
    let mut child = p
        .command(
            None,
            &["render", "jobs/quarterly.toml", "--var", "as_of=2020-04-01"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

/// `runner run … 2>&1 | head -1`: the log's reader goes away mid-run; the run still
/// finishes and records its end.
#[test]
fn a_closed_stderr_never_aborts_a_run() {
    let db = TestDb::new();
    let p = Project::new();
    let mut child = p
        .command(Some(&db), &["run", "jobs/quarterly.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    assert_eq!(
        db.lines("SELECT status, exit_code FROM runs ORDER BY id"),
        ["succeeded|0"]
    );
}

/// The exit-time SIGSEGV (a pool thread inside libpq while `exit` tore down OpenSSL)
/// showed in about one `explain` in a hundred; 200 runs would have hit it.
#[test]
fn many_short_runs_never_crash_at_exit() {
    use std::os::unix::process::ExitStatusExt;
    let db = TestDb::new();
    let p = Project::new();
    p.runner(Some(&db), &["run", "jobs/quarterly.toml"])
        .expect_code(0);
    let started = Instant::now();
    let mut runs = 0;
    while runs < 200 && started.elapsed() < Duration::from_secs(25) {
        let out = p
            .command(
                Some(&db),
                &["explain", "jobs/quarterly.toml", "--select", "daily_change"],
            )
            .output()
            .unwrap();
        assert_eq!(out.status.signal(), None, "run {runs}: {out:?}");
        assert_eq!(out.status.code(), Some(0), "run {runs}: {out:?}");
        runs += 1;
    }
    assert!(runs >= 50, "only {runs} runs in 25 s");
    let _ = std::io::stderr().flush();
}

/// `text` must not hold `secret` (or, for the misread forms, a piece of it).
fn assert_hidden(secret: &str, text: &str, what: &str) {
    assert!(
        !text.contains(secret),
        "{what} shows the password {secret:?}:\n{text}"
    );
    for piece in secret.split(['@', '/', '?', ' ']).filter(|p| p.len() >= 4) {
        assert!(
            !text.contains(piece),
            "{what} shows {piece:?} of {secret:?}:\n{text}"
        );
    }
}

#[test]
fn passwords_are_never_printed_when_the_connection_fails() {
    let p = Project::new();
    job_with(&p, "one", "SELECT 1 AS one", "");
    for (url, secret, expected) in [
        (
            "host=127.0.0.1 port=1 user=nobody password='my secret phrase' dbname=none",
            "my secret phrase",
            "cannot connect to host=127.0.0.1 port=1 user=nobody password=*** dbname=none: connection to server at \"127.0.0.1\", port 1 failed: Connection refused",
        ),
        (
            "postgres://nobody:hunter@2024/secret@127.0.0.1:1/none",
            "hunter@2024/secret",
            "the password in the database URL postgres://nobody:***@127.0.0.1:1/none holds an unencoded `@`, `/`, `?` or `#`, which libpq would read as part of the host or path; percent-encode them (%40, %2F, %3F, %23)",
        ),
        (
            "postgresql://nobody:open/sesame?now@127.0.0.1:1/none",
            "open/sesame?now",
            "the password in the database URL postgresql://nobody:***@127.0.0.1:1/none holds an unencoded `@`, `/`, `?` or `#`, which libpq would read as part of the host or path; percent-encode them (%40, %2F, %3F, %23)",
        ),
        (
            "mysql://nobody:hunter2@127.0.0.1:1/none",
            "hunter2",
            "cannot connect to mysql://nobody:***@127.0.0.1:1/none: missing \"=\" after \"mysql://nobody:***@127.0.0.1:1/none\" in connection info string",
        ),
        (
            "postgres://nobody:pa%éss@127.0.0.1:1/none",
            "pa%éss",
            "cannot connect to postgres://nobody:***@127.0.0.1:1/none: invalid percent-encoded token: \"***\"",
        ),
    ] {
        for args in [&["run", "jobs/hostile.toml"][..], &["doctor"][..], &["check", "jobs/hostile.toml"][..]] {
            let out = p
                .command(None, args)
                .env("DATABASE_URL", url)
                .output()
                .unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_hidden(secret, &stdout, "stdout");
            assert_hidden(secret, &stderr, "stderr");
            assert!(out.status.signal_free(), "{args:?} {url}: {out:?}");
            if args[0] == "run" {
                assert_eq!(out.status.code(), Some(1), "{url}: {out:?}");
                assert!(
                    stderr.lines().any(|line| line == expected),
                    "{url}: {stderr}"
                );
            }
        }
    }
}

trait SignalFree {
    fn signal_free(&self) -> bool;
}

impl SignalFree for std::process::ExitStatus {
    fn signal_free(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.signal().is_none()
    }
}

#[test]
fn passwords_are_never_stored_or_printed_by_a_run_that_connects() {
    let db = TestDb::new();
    let p = Project::new();
    job_with(&p, "one", "SELECT 1 AS one", "");
    // The test server trusts local connections, so any password gets in.
    let server = url::Url::parse(&db.url).expect("the test URL parses");
    let keyword = format!(
        "host={} port={} user=postgres password='my secret phrase' dbname={}",
        server.host_str().unwrap_or("127.0.0.1"),
        server.port().unwrap_or(5432),
        db.name
    );
    let url = db.url.replacen(
        "postgres://postgres@",
        "postgres://postgres:s3cr%C3%A9t%20pw@",
        1,
    );
    for (conninfo, secrets) in [
        (keyword.as_str(), vec!["my secret phrase"]),
        (url.as_str(), vec!["s3cr%C3%A9t%20pw", "s3cré t pw"]),
    ] {
        let out = p
            .command(None, &["run", "jobs/hostile.toml"])
            .env("DATABASE_URL", conninfo)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let runs = db.lines(
            "SELECT coalesce(vars::text, '') || coalesce(summary::text, '') || coalesce(error, '') || coalesce(report_dir, '') FROM runs",
        );
        for secret in secrets {
            assert_hidden(secret, &String::from_utf8_lossy(&out.stdout), "stdout");
            assert_hidden(secret, &String::from_utf8_lossy(&out.stderr), "stderr");
            assert_hidden(
                secret,
                &p.read("reports/hostile/latest/summary.json"),
                "summary.json",
            );
            assert_hidden(
                secret,
                &p.read("reports/hostile/latest/report.md"),
                "report.md",
            );
            assert_hidden(secret, &runs.join("\n"), "the runs table");
        }
        assert!(p.read("reports/hostile/latest/report.md").contains("***"));
    }
}

#[test]
fn an_unknown_var_is_a_warning_with_the_closest_name() {
    let p = Project::new();
    let out = p
        .runner(
            None,
            &[
                "render",
                "jobs/quarterly.toml",
                "--var",
                "symbl=MSFT",
                "--var",
                "as_of=2020-04-01",
                "--var",
                "report_dir=elsewhere",
            ],
        )
        .expect_code(0);
    assert_eq!(
        out.stderr(),
        "warning: `--var symbl`: neither the job nor its templates use a variable `symbl`, so it changes nothing; did you mean `symbol`?\n"
    );
    assert!(out.stdout().contains("'AAPL'"), "the job's symbol stays");
}

#[test]
fn a_symbol_that_matches_nothing_is_a_warning_in_the_log_and_the_report() {
    let db = TestDb::new();
    let p = Project::new();
    let out = p
        .runner(
            Some(&db),
            &["run", "jobs/quarterly.toml", "--var", "symbol=AAX"],
        )
        .expect_code(0);
    let expected = "`symbol` = `AAX` matches no symbol with prices in the database; its analyses will be empty (did you mean `AAA`?)";
    assert!(
        out.stderr()
            .lines()
            .any(|l| l.contains(" WARN ") && l.ends_with(expected)),
        "{}",
        out.stderr()
    );
    let md = p.read("reports/quarterly/latest/report.md");
    assert!(md.contains(&format!("- warning: {expected}")), "{md}");
}

#[test]
fn an_undefined_template_variable_is_named_with_its_line() {
    let p = Project::new();
    job_with(&p, "undef", "SELECT 1 AS one\nWHERE {{ sybmol }} = 1", "");
    let err = p
        .runner(None, &["check", "--offline", "jobs/hostile.toml"])
        .expect_code(2)
        .stderr();
    assert_eq!(
        err.trim_end(),
        format!(
            "error: template `hostile/undef.sql`: `sybmol` is undefined\n --> {}:2:10\n  |\n2 | WHERE {{{{ sybmol }}}} = 1\n  |          ^^^^^^\n  = key: `analysis.undef`\n  = help: templates see the job's [vars], `as_of`, `job` and `timescaledb`; define `sybmol` in [vars] or pass --var sybmol=…",
            p.path("templates/hostile/undef.sql").display()
        )
    );
}
