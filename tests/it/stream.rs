//! `runner stream` and `runner replay` against the real nats-server (JetStream on
//! `NATS_URL`, default 127.0.0.1:4222). Each test has its own database and its own
//! stream and subjects, deleted at the end, so the tests run in parallel.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use futures_util::StreamExt;
use serde_json::Value;

use super::util::{Project, Run, TestDb};

static FEEDS: AtomicUsize = AtomicUsize::new(0);

fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

fn end_day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 4, 1).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// A project with a one-feed job on a stream of its own.
struct FeedTest {
    db: TestDb,
    p: Project,
    stream: String,
    prefix: String,
}

impl FeedTest {
    /// `settings` are extra lines of the `[[feed]]` table (they replace the default
    /// `max_batch_delay` and `ack_wait` when they set them).
    fn new(settings: &str) -> Self {
        let n = FEEDS.fetch_add(1, Ordering::Relaxed);
        let stream = format!("T{}_{n}", std::process::id());
        let prefix = format!("t{}_{n}", std::process::id());
        let defaults: String = [("max_batch_delay", "\"100ms\""), ("ack_wait", "\"1s\"")]
            .iter()
            .filter(|(key, _)| {
                !settings
                    .lines()
                    .any(|l| l.trim_start().starts_with(&format!("{key} ")))
            })
            .map(|(key, value)| format!("{key} = {value}\n"))
            .collect();
        let p = Project::new();
        p.write(
            "jobs/feed.toml",
            &format!(
                "name = \"feed\"\n\n[[feed]]\nname = \"bars\"\nstream = \"{stream}\"\n\
                 subjects = [\"{prefix}.bars.>\"]\ndead_letter_subject = \"{prefix}.dead\"\n\
                 {defaults}{settings}\n"
            ),
        );
        let t = FeedTest {
            db: TestDb::new(),
            p,
            stream,
            prefix,
        };
        t.runner(&["migrate", "jobs/feed.toml"]).expect_code(0);
        t
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_runner"));
        cmd.current_dir(self.p.dir.path())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("RUNNER_CRASH_AT")
            .env("DATABASE_URL", &self.db.url)
            .env("NATS_URL", nats_url());
        cmd
    }

    fn runner(&self, args: &[&str]) -> Run {
        Run(self.command(args).output().expect("run the runner binary"))
    }

    /// `runner replay` with `args`; its JSON.
    fn replay(&self, args: &[&str]) -> Value {
        let mut all = vec!["replay", "jobs/feed.toml"];
        all.extend_from_slice(args);
        json(&self.runner(&all).expect_code(0))
    }

    /// `runner stream --until-drained`, crashing at `crash` when given.
    fn consume(&self, crash: Option<&str>) -> Run {
        Run(self.stream_command(crash).output().unwrap())
    }

    fn stream_command(&self, crash: Option<&str>) -> Command {
        let mut cmd = self.command(&["stream", "jobs/feed.toml", "--until-drained"]);
        if let Some(point) = crash {
            cmd.env("RUNNER_CRASH_AT", point);
        }
        cmd
    }

    fn spawn(&self, crash: Option<&str>) -> Child {
        self.stream_command(crash)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn status(&self) -> Value {
        json(
            &self
                .runner(&["stream", "jobs/feed.toml", "--status", "--json"])
                .expect_code(0),
        )
    }

    /// The stored bars, one line each: symbol|epoch|open|high|low|close|volume.
    fn bars(&self) -> Vec<String> {
        self.db.lines(
            "SELECT symbol, extract(epoch FROM ts)::bigint, open, high, low, close, volume \
             FROM intraday_bars ORDER BY symbol, ts",
        )
    }

    /// Publish `(subject, msg id, payload)` straight to JetStream.
    fn publish(&self, messages: &[(String, String, String)]) {
        // Creates the stream when this is the first publish.
        self.replay(&["--limit", "0"]);
        runtime().block_on(async {
            let client = async_nats::connect(nats_url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            for (subject, id, payload) in messages {
                js.send_publish(
                    subject.clone(),
                    async_nats::jetstream::context::Publish::build()
                        .payload(payload.clone().into())
                        .message_id(id),
                )
                .await
                .unwrap()
                .await
                .unwrap();
            }
        });
    }
}

impl Drop for FeedTest {
    fn drop(&mut self) {
        let stream = self.stream.clone();
        runtime().block_on(async {
            if let Ok(client) = async_nats::connect(nats_url()).await {
                let _ = async_nats::jetstream::new(client)
                    .delete_stream(&stream)
                    .await;
            }
        });
    }
}

fn json(run: &Run) -> Value {
    let out = run.stdout();
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no output\n{}", run.stderr()));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {out}\n{}", run.stderr()))
}

/// The bars `replay --seed --symbols --days` publishes, as [`FeedTest::bars`] shows
/// them, minus every `skip_every`-th message (made poison).
fn expected(seed: u64, symbols: usize, days: usize, skip_every: Option<usize>) -> Vec<String> {
    let mut rows: Vec<String> = runner::stream::replay::generate(seed, symbols, days, end_day())
        .unwrap()
        .enumerate()
        .filter(|(i, _)| skip_every.is_none_or(|k| (i + 1) % k != 0))
        .map(|(_, b)| {
            format!(
                "{}|{}|{}|{}|{}|{}|{}",
                b.symbol,
                b.ts.timestamp(),
                b.open,
                b.high,
                b.low,
                b.close,
                b.volume
            )
        })
        .collect();
    rows.sort();
    rows
}

fn killed(run: &Run) -> bool {
    run.0.status.code().is_none()
}

#[test]
fn published_bars_are_stored_exactly_and_poison_goes_to_rejects_and_dead_letters() {
    let t = FeedTest::new("batch_size = 200");
    let published = t.replay(&[
        "--seed",
        "3",
        "--symbols",
        "4",
        "--days",
        "1",
        "--poison-every",
        "500",
    ]);
    assert_eq!(
        (published["messages"].as_u64(), published["poison"].as_u64()),
        (Some(1560), Some(3))
    );

    // Listen on the dead-letter subject while the consumer runs.
    let rt = runtime();
    // The client and subscription are dropped inside the runtime (before `_enter`).
    let _enter = rt.enter();
    let client = rt.block_on(async_nats::connect(nats_url())).unwrap();
    let mut dead = rt
        .block_on(client.subscribe(format!("{}.dead", t.prefix)))
        .unwrap();
    rt.block_on(client.flush()).unwrap();

    let counters = json(&t.consume(None).expect_code(0));
    assert_eq!(counters["received"], 1560);
    assert_eq!(counters["committed"], 1560);
    assert_eq!(counters["acked"], 1560);
    assert_eq!(counters["bars"], 1557);
    assert_eq!(counters["rejected"], 3);
    assert_eq!(counters["dead_lettered"], 3);
    assert_eq!(counters["redelivered"], 0);
    assert_eq!(counters["last_seq"], 1560);
    // 1560 messages in batches of at most 200.
    assert!(counters["batches"].as_u64().unwrap() >= 8, "{counters}");
    assert_eq!(counters["stopped_by"], "drained");
    assert_eq!(t.bars(), expected(3, 4, 1, Some(500)));
    assert_eq!(
        t.db.lines("SELECT seq, subject, reason, payload FROM stream_rejects ORDER BY seq"),
        (1..=3)
            .map(|k| {
                let seq = k * 500;
                // Message 500 is minute 124 of symbol S00003 (4 symbols, minute-major).
                format!(
                    "{seq}|{}.bars.S0000{}|invalid JSON: expected ident at line 1 column 2|not a bar #{seq}",
                    t.prefix,
                    (seq - 1) % 4
                )
            })
            .collect::<Vec<_>>()
    );
    let letters: Vec<(String, String)> = rt.block_on(async {
        let mut got = Vec::new();
        while got.len() < 3 {
            let m = tokio::time::timeout(Duration::from_secs(5), dead.next())
                .await
                .expect("three dead letters")
                .unwrap();
            let h = m.headers.unwrap();
            got.push((
                h.get("Runner-Seq").unwrap().to_string(),
                String::from_utf8_lossy(&m.payload).into_owned(),
            ));
        }
        got
    });
    assert_eq!(
        letters,
        [500, 1000, 1500].map(|s| (s.to_string(), format!("not a bar #{s}")))
    );
    let status = t.status();
    assert_eq!(status["broker"]["num_pending"], 0);
    assert_eq!(status["broker"]["num_ack_pending"], 0);
    assert_eq!(status["broker"]["ack_floor_seq"], 1560);
    assert_eq!(status["database"]["last_applied_seq"], 1560);
    assert_eq!(status["database"]["rejects"], 3);
    let text = t
        .runner(&["stream", "jobs/feed.toml", "--status"])
        .expect_code(0)
        .stdout();
    assert!(text.contains("lag (num_pending): 0\n"), "{text}");
    assert!(text.contains("last applied seq:  1560\n"), "{text}");
}

#[test]
fn republishing_the_same_msg_ids_stores_each_bar_once() {
    let t = FeedTest::new("");
    let first = t.replay(&["--seed", "5", "--symbols", "2", "--days", "1"]);
    let second = t.replay(&["--seed", "5", "--symbols", "2", "--days", "1"]);
    assert_eq!(
        (first["messages"].as_u64(), first["duplicates"].as_u64()),
        (Some(780), Some(0))
    );
    assert_eq!(
        (second["messages"].as_u64(), second["duplicates"].as_u64()),
        (Some(780), Some(780))
    );
    let counters = json(&t.consume(None).expect_code(0));
    assert_eq!(counters["committed"], 780);
    assert_eq!(t.bars(), expected(5, 2, 1, None));
}

/// Crash at `point`, restart, and find exactly the published bars; the restart's
/// counters.
fn crash_then_restart(point: &str) -> Value {
    let t = FeedTest::new("batch_size = 100");
    t.replay(&["--seed", "11", "--symbols", "3", "--days", "1"]);
    let crashed = t.consume(Some(point));
    assert!(
        killed(&crashed),
        "{point} did not kill: {}",
        crashed.stderr()
    );
    assert!(crashed.stderr().contains(&format!(
        "crash point `{}` reached",
        point.split(':').next().unwrap()
    )));
    let counters = json(&t.consume(None).expect_code(0));
    assert_eq!(
        t.bars(),
        expected(11, 3, 1, None),
        "after a kill at {point}"
    );
    assert_eq!(t.db.scalar("SELECT count(*) FROM intraday_bars"), "1170");
    assert_eq!(t.db.scalar("SELECT last_seq FROM stream_offsets"), "1170");
    assert_eq!(counters["stopped_by"], "drained");
    let status = t.status();
    assert_eq!(status["broker"]["ack_floor_seq"], 1170);
    counters
}

#[test]
fn kill_after_copy_before_commit_loses_and_duplicates_nothing() {
    crash_then_restart("stream.after_copy:3");
}

#[test]
fn kill_after_commit_before_ack_loses_and_duplicates_nothing() {
    let counters = crash_then_restart("stream.after_commit:3");
    // The killed batch was committed, so its redelivery meets stored keys and takes
    // the upsert instead of the plain COPY.
    assert!(counters["upsert_batches"].as_u64() >= Some(1), "{counters}");
}

#[test]
fn kill_mid_batch_while_acknowledging_loses_and_duplicates_nothing() {
    let counters = crash_then_restart("stream.mid_ack:2");
    assert!(counters["upsert_batches"].as_u64() >= Some(1), "{counters}");
}

#[test]
fn kill_with_a_batch_received_but_not_written_loses_nothing() {
    crash_then_restart("stream.batch_received:4");
}

#[test]
fn a_redelivered_bar_does_not_undo_a_later_correction() {
    // One batch of the whole session (cut by size as soon as it is there), and an
    // `ack_wait` long enough for the correction to commit before the killed process's
    // messages come back.
    let t = FeedTest::new("batch_size = 390\nmax_batch_delay = \"1s\"\nack_wait = \"6s\"");
    t.replay(&["--seed", "23", "--symbols", "1", "--days", "1"]);
    // Everything committed, nothing acknowledged.
    let crashed = t.consume(Some("stream.after_commit:1"));
    assert!(killed(&crashed), "{}", crashed.stderr());
    assert_eq!(t.db.scalar("SELECT count(*) FROM intraday_bars"), "390");
    let subject = format!("{}.bars.S00000", t.prefix);
    t.publish(&[(
        subject,
        "fix".into(),
        r#"{"ts":"2020-04-01T14:30:00Z","open":1,"high":1000,"low":0.5,"close":999,"volume":7}"#
            .into(),
    )]);
    // The correction (seq 391) first, then, after `ack_wait`, the redelivered originals
    // (seq 1..=390), which hit the rows they wrote and the corrected one.
    let counters = json(&t.consume(None).expect_code(0));
    assert!(counters["upsert_batches"].as_u64() >= Some(2), "{counters}");
    assert!(counters["redelivered"].as_u64() >= Some(1), "{counters}");
    let mut want = expected(23, 1, 1, None);
    let at = want
        .iter()
        .position(|l| l.starts_with("S00000|1585751400|"))
        .expect("the 14:30 bar was published");
    want[at] = "S00000|1585751400|1|1000|0.5|999|7".to_owned();
    assert_eq!(t.bars(), want);
    assert_eq!(
        t.db.scalar("SELECT seq FROM intraday_bars WHERE ts = '2020-04-01T14:30:00Z'"),
        "391"
    );
    // The change log saw every batch, redelivered or not, so the rollups agree.
    let (stored, raw) = rollup_and_raw(&t, "intraday_hourly", "hour");
    assert_eq!(stored, raw);
}

#[test]
fn two_consumers_share_the_feed_and_survive_one_being_killed() {
    let t = FeedTest::new("batch_size = 50");
    t.replay(&["--seed", "13", "--symbols", "4", "--days", "1"]);
    let a = t.spawn(Some("stream.after_commit:4"));
    let b = t.spawn(None);
    let a = Run(a.wait_with_output().unwrap());
    let b = Run(b.wait_with_output().unwrap());
    assert!(killed(&a), "{}", a.stderr());
    let counters = json(&b.expect_code(0));
    assert_eq!(t.bars(), expected(13, 4, 1, None));
    let applied: u64 =
        t.db.scalar("SELECT messages FROM stream_offsets")
            .parse()
            .unwrap();
    let by_b = counters["committed"].as_u64().unwrap();
    // `a` committed at least 4 batches before dying; `b` took the rest and a's unacked.
    assert!(by_b > 0 && by_b < applied, "b {by_b}, applied {applied}");
    assert!(applied >= 1560, "{applied}");
}

#[test]
fn sigterm_finishes_the_batch_in_flight_and_acks_exactly_what_committed() {
    let t = FeedTest::new("batch_size = 50");
    let mut replay = t
        .command(&[
            "replay",
            "jobs/feed.toml",
            "--seed",
            "17",
            "--symbols",
            "3",
            "--days",
            "2",
            "--rate",
            "1500",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let consumer = t
        .command(&["stream", "jobs/feed.toml"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let kill = Command::new("kill")
        .args(["-TERM", &consumer.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopped = Run(consumer.wait_with_output().unwrap()).expect_code(0);
    let counters = json(&stopped);
    assert_eq!(counters["stopped_by"], "signal");
    let rows: u64 =
        t.db.scalar("SELECT count(*) FROM intraday_bars")
            .parse()
            .unwrap();
    assert!(rows > 0 && rows < 2340, "{rows}");
    // Everything committed was acknowledged, and nothing else: with one consumer the
    // acknowledged sequences are 1..=rows and the stored offset is the same.
    assert_eq!(counters["acked"].as_u64(), Some(rows));
    assert_eq!(
        t.db.scalar("SELECT last_seq FROM stream_offsets"),
        rows.to_string()
    );
    assert_eq!(t.status()["broker"]["ack_floor_seq"].as_u64(), Some(rows));
    replay.wait().unwrap();
    json(&t.consume(None).expect_code(0));
    assert_eq!(t.bars(), expected(17, 3, 2, None));
}

/// The rollups, as lines, and the same aggregates from raw `intraday_bars` computed
/// another way (window functions instead of ordered arrays).
fn rollup_and_raw(t: &FeedTest, rollup: &str, unit: &str) -> (Vec<String>, Vec<String>) {
    let stored = t.db.lines(&format!(
        "SELECT symbol, extract(epoch FROM bucket)::bigint, open, high, low, close, volume, bars \
         FROM {rollup} ORDER BY 1, 2"
    ));
    let raw = t.db.lines(&format!(
        "SELECT DISTINCT symbol, extract(epoch FROM b)::bigint, \
           first_value(open) OVER w, max(high) OVER w, min(low) OVER w, last_value(close) OVER w, \
           sum(volume) OVER w, count(*) OVER w \
         FROM (SELECT *, to_timestamp(floor(extract(epoch FROM ts) / {secs}) * {secs}) AS b FROM intraday_bars) x \
         WINDOW w AS (PARTITION BY symbol, b ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) \
         ORDER BY 1, 2",
        secs = if unit == "hour" { 3600 } else { 86400 }
    ));
    (stored, raw)
}

#[test]
fn rollups_equal_aggregates_of_the_raw_bars_after_corrections() {
    let t = FeedTest::new("batch_size = 300");
    t.replay(&["--seed", "19", "--symbols", "3", "--days", "2"]);
    json(&t.consume(None).expect_code(0));
    for (rollup, unit) in [("intraday_hourly", "hour"), ("intraday_daily", "day")] {
        let (stored, raw) = rollup_and_raw(&t, rollup, unit);
        assert_eq!(stored.len(), if unit == "hour" { 3 * 2 * 7 } else { 3 * 2 });
        assert_eq!(stored, raw, "{rollup}");
    }
    // Corrections of two stored bars and one late bar, then the same comparison.
    let subject = format!("{}.bars.S00001", t.prefix);
    let bar = |ts: &str, close: f64| {
        format!(r#"{{"ts":"{ts}","open":1,"high":1000,"low":0.5,"close":{close},"volume":7}}"#)
    };
    t.publish(&[
        (
            subject.clone(),
            "c1".into(),
            bar("2020-04-01T14:30:00Z", 999.0),
        ),
        (
            subject.clone(),
            "c2".into(),
            bar("2020-03-31T20:59:00Z", 0.75),
        ),
        (
            subject.clone(),
            "c3".into(),
            bar("2020-04-01T22:00:00Z", 5.0),
        ),
    ]);
    let counters = json(&t.consume(None).expect_code(0));
    // Two stored keys in the batch: the plain COPY gave way to the upsert, which
    // still inserted the late bar.
    assert_eq!(counters["upsert_batches"], 1, "{counters}");
    assert_eq!(
        t.db.scalar("SELECT close FROM intraday_bars WHERE symbol = 'S00001' AND ts = '2020-04-01T14:30:00Z'"),
        "999"
    );
    for (rollup, unit) in [("intraday_hourly", "hour"), ("intraday_daily", "day")] {
        let (stored, raw) = rollup_and_raw(&t, rollup, unit);
        assert_eq!(stored, raw, "{rollup} after corrections");
    }
    assert_eq!(
        t.db.scalar("SELECT close || '/' || bars FROM intraday_daily WHERE symbol = 'S00001' AND bucket = '2020-04-01T00:00:00Z'"),
        "5/391"
    );
}

#[test]
fn kaggle_csv_lines_replayed_one_per_bar_follow_the_ingest_rules() {
    let t = FeedTest::new("format = \"csv\"");
    let published = t.replay(&["--files", "data/stocks/BBB.csv"]);
    assert_eq!(published["messages"], 6);
    json(&t.consume(None).expect_code(0));
    // Like file ingest: no close and a bad date are rejected, a float volume is the
    // same number, high below low is flagged, an empty volume is NULL.
    assert_eq!(
        t.bars(),
        [
            "BBB|1585267200|19|18|20|19|150",
            "BBB|1585526400|20|20.5|19.5|20|700",
            "BBB|1585612800|21|21.5|20.5|21|700",
            "BBB|1585699200|22|22.5|21.5|22|NULL",
        ]
    );
    assert_eq!(
        t.db.lines("SELECT seq, reason, payload FROM stream_rejects ORDER BY seq"),
        [
            "1|no_close: missing close|2020-03-26,19,19,19,,19,100",
            "3|bad_date: bad ts `2020-13-01` (expected RFC 3339, YYYY-MM-DD or epoch milliseconds)|2020-13-01,1,1,1,1,1,1",
        ]
    );
    assert_eq!(
        t.db.lines("SELECT symbol, ts::date, rule, detail FROM intraday_quality"),
        ["BBB|2020-03-27|high_below_low|high 18 < low 20"]
    );
}

#[test]
fn feed_settings_are_checked_with_their_positions() {
    let p = Project::new();
    p.write(
        "jobs/bad.toml",
        "name = \"bad\"\n\n[[feed]]\nname = \"bars\"\nstream = \"B S\"\nsubjects = [\"bars.1m\"]\n\
         format = \"xml\"\nbatch_size = 0\nmax_batch_delay = \"soon\"\ndead_letter_subject = \"bars.1m\"\n\
         refresh = [\"intraday_houry\"]\n[feed.rules]\nzero_volum = \"flag\"\n",
    );
    let out = p
        .runner(None, &["check", "--offline", "jobs/bad.toml"])
        .expect_code(2)
        .stderr();
    for expected in [
        "bad.toml:5:",
        "stream name `B S` must be letters, digits, `_` and `-`",
        "bad.toml:6:",
        "subject `bars.1m` has no wildcard last token to carry the symbol",
        "bad.toml:7:",
        "unknown format `xml`: use `json` or `csv`",
        "bad.toml:8:",
        "must be between 1 and 100000, found 0",
        "`soon` is not a duration like `200ms`, `5s` or `1m`",
        "dead-letter subject `bars.1m` is one of the feed's own subjects",
        "unknown rollup `intraday_houry`; feeds refresh intraday_hourly, intraday_daily (did you mean `intraday_hourly`?)",
        "unknown rule `zero_volum`",
    ] {
        assert!(out.contains(expected), "missing `{expected}` in\n{out}");
    }
}

#[test]
fn today_so_far_puts_the_streamed_session_next_to_daily_history() {
    let t = FeedTest::new(
        "\n[[analysis]]\nname = \"today_so_far\"\ntemplate = \"realtime/today_so_far.sql\"",
    );
    t.runner(&["run", "jobs/quarterly.toml"]).expect_code(0);
    let subject = format!("{}.bars.AAA", t.prefix);
    t.publish(&[
        (
            subject.clone(),
            "a1".into(),
            r#"{"ts":"2020-04-02T14:30:00Z","open":16.2,"high":16.6,"low":16.1,"close":16.5,"volume":1000}"#.into(),
        ),
        (
            subject,
            "a2".into(),
            r#"{"ts":"2020-04-02T14:31:00Z","open":16.5,"high":17.7,"low":16.4,"close":17.6,"volume":3000}"#.into(),
        ),
    ]);
    json(&t.consume(None).expect_code(0));
    t.runner(&["run", "jobs/feed.toml"]).expect_code(0);
    // AAA's daily history: last close 16 on 2020-04-01; its 11 volumes average 92077.18.
    let csv =
        std::fs::read_to_string(t.p.path("reports/feed/2020-04-01/today_so_far.csv")).unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        [
            "symbol,day,bars,open,high,low,last,prev_day,prev_close,change_pct,volume_so_far,avg_volume_20,volume_vs_avg",
            "AAA,2020-04-02,2,16.2,17.7,16.1,17.6,2020-04-01,16,10.00,4000,92077,0.04",
        ]
    );
}

/// The broker's and the database's numbers after a partial consume, checked against
/// what the test made happen: `max_ack_pending = 100` with batches of 100 means a
/// process holds exactly one batch; killing it after its commit leaves that batch
/// applied but unacknowledged.
#[test]
fn status_shows_lag_pending_acks_redeliveries_and_last_applied_seq_of_a_partial_consume() {
    let t = FeedTest::new(
        "batch_size = 100\nmax_ack_pending = 100\nmax_batch_delay = \"500ms\"\nack_wait = \"3s\"",
    );
    t.replay(&["--seed", "23", "--symbols", "2", "--days", "1"]);
    // The durable consumer is made by the first `runner stream`.
    let status = t.status();
    assert!(status["broker"].is_null(), "{status}");
    assert_eq!(status["database"]["last_applied_seq"], 0);

    // First delivery of 1..=100: committed, killed before the ack.
    assert!(killed(&t.consume(Some("stream.after_commit:1"))));
    let status = t.status();
    assert_eq!(status["broker"]["stream_messages"], 780);
    assert_eq!(status["broker"]["num_pending"], 680);
    assert_eq!(status["broker"]["num_ack_pending"], 100);
    assert_eq!(status["broker"]["num_redelivered"], 0);
    assert_eq!(status["broker"]["ack_floor_seq"], 0);
    assert_eq!(status["database"]["last_applied_seq"], 100);
    assert_eq!(status["database"]["messages_applied"], 100);

    // After `ack_wait` the same 100 come back (nothing else can: the ack window is
    // full), are committed again and again not acknowledged.
    std::thread::sleep(Duration::from_millis(3300));
    assert!(killed(&t.consume(Some("stream.after_commit:1"))));
    let status = t.status();
    assert_eq!(status["broker"]["num_pending"], 680);
    assert_eq!(status["broker"]["num_ack_pending"], 100);
    assert_eq!(status["broker"]["num_redelivered"], 100);
    assert_eq!(status["database"]["last_applied_seq"], 100);
    assert_eq!(status["database"]["messages_applied"], 200);
    let text = t
        .runner(&["stream", "jobs/feed.toml", "--status"])
        .expect_code(0)
        .stdout();
    for line in [
        "lag (num_pending): 680\n",
        "ack pending:       100\n",
        "redelivered:       100\n",
        "last applied seq:  100\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }

    // A clean run takes the redelivered batch and the rest.
    std::thread::sleep(Duration::from_millis(3300));
    let counters = json(&t.consume(None).expect_code(0));
    assert_eq!(counters["received"], 780);
    assert_eq!(counters["committed"], 780);
    assert_eq!(counters["redelivered"], 100);
    assert_eq!(counters["acked"], 780);
    assert_eq!(counters["last_seq"], 780);
    let status = t.status();
    assert_eq!(status["broker"]["num_pending"], 0);
    assert_eq!(status["broker"]["num_ack_pending"], 0);
    assert_eq!(status["broker"]["num_redelivered"], 0);
    assert_eq!(status["broker"]["ack_floor_seq"], 780);
    assert_eq!(status["database"]["last_applied_seq"], 780);
    assert_eq!(status["database"]["messages_applied"], 980);
    assert_eq!(t.bars(), expected(23, 2, 1, None));
}

/// Without a terminal: a log line with rates and lag every `--log-every`, and a last
/// line and JSON counters with the totals.
#[test]
fn without_a_terminal_progress_is_logged_as_lines_with_rates_and_lag() {
    let t = FeedTest::new("batch_size = 100");
    t.replay(&[
        "--seed",
        "29",
        "--symbols",
        "3",
        "--days",
        "1",
        "--poison-every",
        "300",
    ]);
    let mut cmd = t.command(&[
        "stream",
        "jobs/feed.toml",
        "--until-drained",
        "--log-every",
        "1ms",
    ]);
    let run = Run(cmd.output().unwrap()).expect_code(0);
    let stderr = run.stderr();
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("stream bars: "))
        .collect();
    // A line after each batch at least (1170 messages, batches of at most 100).
    assert!(progress.len() >= 12, "{stderr}");
    for l in &progress {
        assert!(
            l.contains("/s now, ") && l.contains("/s overall), ") && l.contains(", lag "),
            "{l}"
        );
    }
    // The lag falls to 0 as the feed drains.
    assert!(
        progress.last().unwrap().contains(", lag 0, last seq 1170"),
        "{stderr}"
    );
    let last = stderr
        .lines()
        .find(|l| l.contains("stream bars stopped (drained): 1170 committed ("))
        .unwrap_or_else(|| panic!("no final line in\n{stderr}"));
    assert!(
        last.contains("3 rejected, 3 dead-lettered, 0 redelivered, lag 0, last seq 1170"),
        "{last}"
    );
    let counters = json(&run);
    assert_eq!(counters["committed"], 1170);
    assert_eq!(counters["rejected"], 3);
    assert_eq!(counters["dead_lettered"], 3);
    assert_eq!(counters["bars"], 1167);
    assert!(counters["messages_per_s"].as_f64().unwrap() > 0.0);
    assert!(counters["elapsed_s"].as_f64().unwrap() > 0.0);
    // Linux reports the peak RSS; a few MB at least, far below a GB.
    let rss = counters["peak_rss_kb"].as_u64().unwrap();
    assert!((1_000..1_000_000).contains(&rss), "{rss}");
}

/// Without the hourly rollup the daily one is computed from the bars themselves.
#[test]
fn the_daily_rollup_alone_is_built_from_the_bars() {
    let t = FeedTest::new("batch_size = 250\nrefresh = [\"intraday_daily\"]");
    t.replay(&["--seed", "31", "--symbols", "2", "--days", "2"]);
    json(&t.consume(None).expect_code(0));
    let (stored, raw) = rollup_and_raw(&t, "intraday_daily", "day");
    assert_eq!(stored.len(), 2 * 2);
    assert_eq!(stored, raw);
    if !t.db.has_timescale() {
        // A runner-maintained table nobody asked for stays empty. (On TimescaleDB the
        // hourly continuous aggregate exists anyway and real-time aggregation shows
        // the newest bars in it.)
        assert_eq!(t.db.scalar("SELECT count(*) FROM intraday_hourly"), "0");
    }
}
