//! Schedules: bad keys are config errors at their position, `runner schedule` prints
//! exactly the crontab it promises, and `runner daemon` starts a job on time under the
//! test clock, makes up a missed run (or not), and stops cleanly on SIGTERM.
//! Next-run times and the DST policy are unit tests in `job::schedule`.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::util::{Project, TestDb};

const CONFIG_ERROR: i32 = 2;

/// A tiny scheduled job: load the two fixture files, write a CSV report.
fn tiny_job(extra: &str) -> String {
    format!(
        r#"name = "tiny"
schedule = "30 6 * * 1-5"
timezone = "America/New_York"
{extra}
[[ingest]]
name = "prices"
kind = "prices"
paths = ["data/stocks/*.csv"]

[report]
dir = "reports/tiny"
formats = ["csv"]
"#
    )
}

/// A project whose `jobs/` holds only `files`.
fn project(files: &[(&str, &str)]) -> Project {
    let p = Project::new();
    std::fs::remove_dir_all(p.path("jobs")).unwrap();
    for (name, text) in files {
        p.write(&format!("jobs/{name}"), text);
    }
    p
}

#[test]
fn bad_schedule_keys_are_config_errors_at_their_position() {
    let p = project(&[(
        "t.toml",
        "name = \"t\"\nschedule = \"61 6 * * *\"\ntimezone = \"America/NewYork\"\nmissed = \"later\"\n",
    )]);
    let err = p
        .runner(None, &["check", "--offline", "jobs/t.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert_eq!(
        err,
        "error: unknown time zone `America/NewYork`
 --> jobs/t.toml:3:12
  |
3 | timezone = \"America/NewYork\"
  |            ^^^^^^^^^^^^^^^^^
  = key: `timezone`
  = help: did you mean `America/New_York`?
error: `missed` must be `run_once` or `skip`, found `later`
 --> jobs/t.toml:4:10
  |
4 | missed = \"later\"
  |          ^^^^^^^
  = key: `missed`
error: schedule `61 6 * * *`: minute 61 is out of range 0-59
 --> jobs/t.toml:2:12
  |
2 | schedule = \"61 6 * * *\"
  |            ^^^^^^^^^^^^
  = key: `schedule`
  = help: five fields: minute hour day-of-month month day-of-week, e.g. \"30 6 * * 1-5\"
3 problems found
"
    );
    // `schedule` and `daemon` refuse the same file the same way.
    for command in ["schedule", "daemon"] {
        let again = p
            .runner(None, &[command, "jobs/"])
            .expect_code(CONFIG_ERROR)
            .stderr();
        assert!(again.contains(" --> "), "{again}");
        assert!(again.ends_with("3 problems found\n"), "{again}");
    }
}

#[test]
fn keys_that_need_a_schedule_say_so_and_no_schedule_at_all_is_an_error() {
    let p = project(&[("t.toml", "name = \"t\"\ntimezone = \"UTC\"\n")]);
    let err = p
        .runner(None, &["check", "--offline", "jobs/t.toml"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert!(
        err.starts_with(
            "error: `timezone` is set but the job has no `schedule`\n --> jobs/t.toml:2:12"
        ),
        "{err}"
    );
    p.write("jobs/t.toml", "name = \"t\"\n");
    let err = p
        .runner(None, &["daemon", "jobs/"])
        .expect_code(CONFIG_ERROR)
        .stderr();
    assert_eq!(
        err,
        "error: no job in `jobs/` has a `schedule`\n  = help: add `schedule = \"30 6 * * 1-5\"` (and `timezone = \"America/New_York\"`) to a job file\n"
    );
}

#[test]
fn schedule_prints_crontab_lines_that_cannot_overlap_and_mail_failures() {
    let p = project(&[
        ("tiny.toml", &tiny_job("")),
        ("utc.toml", "name = \"hourly\"\nschedule = \"5 * * * *\"\n"),
        ("manual.toml", "name = \"manual\"\n"),
    ]);
    let out = p
        .runner(None, &["schedule", "jobs/"])
        .expect_code(0)
        .stdout();
    let root = p.dir.path().canonicalize().unwrap();
    let out = out
        .replace(env!("CARGO_BIN_EXE_runner"), "RUNNER")
        .replace(&root.display().to_string(), "ROOT")
        .replace(&p.dir.path().display().to_string(), "ROOT");
    assert_eq!(
        out,
        r#"# runner schedule jobs/
# Install with `crontab -e` (paste) or `runner schedule ... | crontab -` (replaces the table).
# cron's environment is bare: set DATABASE_URL and MAILTO above these lines if the jobs need them.
# --no-wait: a run never queues behind one holding the database (exit 75, the next time catches up).
# Output goes to the log; any exit code but 0 prints one line, which cron mails to MAILTO.
# CRON_TZ is honoured by cronie and others; a cron that ignores it reads the times in the system zone.
# Create the log folder first: mkdir -p ROOT/logs

# manual (ROOT/jobs/manual.toml): no schedule

# tiny: 30 6 * * 1-5 in America/New_York
CRON_TZ=America/New_York
30 6 * * 1-5 RUNNER run ROOT/jobs/tiny.toml --no-wait >> ROOT/logs/tiny.log 2>&1 || echo "runner: tiny exited with $?, see" ROOT/logs/tiny.log

# hourly: 5 * * * * in UTC
CRON_TZ=UTC
5 * * * * RUNNER run ROOT/jobs/utc.toml --no-wait >> ROOT/logs/hourly.log 2>&1 || echo "runner: hourly exited with $?, see" ROOT/logs/hourly.log
"#
    );
}

#[test]
fn crontab_lines_quote_odd_paths_and_escape_percent() {
    let p = project(&[("tiny.toml", &tiny_job(""))]);
    let out = p
        .runner(
            None,
            &["schedule", "jobs/tiny.toml", "--log-dir", "my logs/50%"],
        )
        .expect_code(0)
        .stdout();
    let root = p.dir.path().display().to_string();
    assert!(
        out.contains(&format!(
            ">> '{root}/my logs/50\\%/tiny.log' 2>&1 || echo \"runner: tiny exited with $?, see\" '{root}/my logs/50\\%/tiny.log'\n"
        )),
        "{out}"
    );
}

/// A daemon over `p`'s jobs against `db`, its stdout lines sent to the receiver.
fn daemon(p: &Project, db: &TestDb, clock_start: &str) -> (Child, mpsc::Receiver<String>) {
    let mut child = p
        .command(Some(db), &["daemon", "jobs/"])
        .env("RUNNER_CLOCK_START", clock_start)
        .env("RUNNER_CLOCK_SPEED", "1")
        // Each run holds the database lock 1.5 s: long enough to SIGTERM mid-run.
        .env("RUNNER_PAUSE_AT", "run.locked:1500")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// Lines until one contains `wanted` (that one included); panics after 30 s.
fn read_until(lines: &mpsc::Receiver<String>, wanted: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                let done = line.contains(wanted);
                seen.push(line);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("no line with `{wanted}` in 30 s; got:\n{}", seen.join("\n")),
        }
    }
}

fn terminate(child: &Child) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Lines without the leading clock time.
fn messages(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split_once(' ').map_or(l.as_str(), |(_, m)| m).to_owned())
        .collect()
}

#[test]
fn daemon_starts_a_job_on_time_and_waits_for_it_on_sigterm() {
    let db = TestDb::new();
    let p = project(&[("tiny.toml", &tiny_job(""))]);
    // Monday 2026-03-09, the first weekday after spring-forward: 06:30 EDT is 10:30Z.
    let (mut child, lines) = daemon(&p, &db, "2026-03-09T10:29:58Z");
    let before = read_until(&lines, "started tiny");
    terminate(&child);
    let after = read_until(&lines, "stopped");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{before:?} {after:?}");

    assert!(
        before[0].starts_with("2026-03-09T10:29:58Z runner daemon "),
        "{before:?}"
    );
    assert!(before[0].ends_with(&format!(": 1 scheduled job (pid {})", child.id())));
    // No runs table yet: nothing to make up.
    assert_eq!(
        messages(&before[1..]).iter().map(|m| m.split(" (pid").next().unwrap().to_owned()).collect::<Vec<_>>(),
        [
            "cannot read the last run of tiny (relation \"runs\" does not exist): not making up missed runs",
            "next run of tiny at 2026-03-09 06:30:00 EDT (2026-03-09T10:30:00Z)",
            "started tiny",
        ]
    );
    assert!(
        before[3].starts_with("2026-03-09T10:30:00Z started tiny (pid "),
        "{before:?}"
    );
    // SIGTERM came mid-run: the daemon says so, waits for the run, then stops.
    let after = messages(&after);
    assert_eq!(
        after[0],
        "SIGTERM: starting no new runs, waiting for 1 running"
    );
    assert!(
        after[1].starts_with("tiny finished: exit 0 in "),
        "{after:?}"
    );
    let seconds: f64 = after[1]
        .trim_start_matches("tiny finished: exit 0 in ")
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(seconds >= 1.5, "{after:?}");
    assert_eq!(after[2..], ["stopped"]);
    assert_eq!(
        db.lines("SELECT job, status, exit_code FROM runs"),
        ["tiny|succeeded|0"]
    );
}

/// Migrate `db` and record a finished run of `tiny` that started at `started_at`.
fn with_last_run(p: &Project, db: &TestDb, started_at: &str) {
    p.runner(Some(db), &["migrate"]).expect_code(0);
    db.execute(&format!(
        "INSERT INTO runs (job, started_at, finished_at, status, exit_code) \
         VALUES ('tiny', '{started_at}', '{started_at}', 'succeeded', 0)"
    ));
}

#[test]
fn daemon_runs_a_missed_run_once_at_start() {
    let db = TestDb::new();
    let p = project(&[("tiny.toml", &tiny_job(""))]);
    // Last run Thursday; the daemon comes back Monday 08:00 EDT, after the 06:30 run.
    with_last_run(&p, &db, "2026-03-05 11:30:05+00");
    let (mut child, lines) = daemon(&p, &db, "2026-03-09T12:00:00Z");
    let seen = messages(&read_until(&lines, "next run of tiny"));
    terminate(&child);
    read_until(&lines, "stopped");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        seen[1..3],
        [
            "tiny missed its run at 2026-03-09 06:30:00 EDT: running it once now".to_owned(),
            seen[2].clone(),
        ]
    );
    assert!(seen[2].starts_with("started tiny (pid "), "{seen:?}");
    assert!(seen[3].starts_with("tiny finished: exit 0 in "), "{seen:?}");
    // Once, not for each of the missed Friday and Monday: next is Tuesday.
    assert_eq!(
        seen[4],
        "next run of tiny at 2026-03-10 06:30:00 EDT (2026-03-10T10:30:00Z)"
    );
    assert_eq!(
        db.lines("SELECT status FROM runs ORDER BY id"),
        ["succeeded", "succeeded"]
    );
}

#[test]
fn daemon_skips_missed_runs_when_told_to() {
    let db = TestDb::new();
    let p = project(&[("tiny.toml", &tiny_job("missed = \"skip\""))]);
    with_last_run(&p, &db, "2026-03-05 11:30:05+00");
    let (mut child, lines) = daemon(&p, &db, "2026-03-09T12:00:00Z");
    let seen = messages(&read_until(&lines, "next run of tiny"));
    terminate(&child);
    let rest = messages(&read_until(&lines, "stopped"));
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(
        seen[1..],
        ["next run of tiny at 2026-03-10 06:30:00 EDT (2026-03-10T10:30:00Z)"]
    );
    assert_eq!(
        rest,
        [
            "SIGTERM: starting no new runs, waiting for 0 running",
            "stopped"
        ]
    );
    assert_eq!(db.scalar("SELECT count(*) FROM runs"), "1");
}
