//! What a stream process reports: live progress (a spinner on a terminal, a log line
//! with rates and lag every few seconds under a supervisor), the counters printed as
//! JSON on exit, and `runner stream --status`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::broker::ConsumerState;
use super::write::{Batch, Path, Written};
use crate::job::feed::Feed;

/// How often a progress line is logged without a terminal, unless `--log-every` says.
pub const LOG_EVERY: Duration = Duration::from_secs(5);

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(samples: &mut [f32]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_by(f32::total_cmp);
        let at = |q: f64| {
            let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
            f64::from(samples[i])
        };
        Percentiles {
            count: samples.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        }
    }
}

/// Where a process spent its time, summed over its batches (milliseconds): what to
/// look at first when a feed falls behind.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PhaseTimes {
    /// From a batch's first message to its last (filling by size or delay).
    pub collect_ms: f64,
    pub decode_ms: f64,
    /// The batch transaction, commit included.
    pub write_ms: f64,
    /// Dead letters and acknowledgements.
    pub ack_ms: f64,
    /// Plain PostgreSQL: refreshing the rollups from the change log.
    pub rollups_ms: f64,
}

impl PhaseTimes {
    fn rounded(&self) -> PhaseTimes {
        let r = |v: f64| v.round();
        PhaseTimes {
            collect_ms: r(self.collect_ms),
            decode_ms: r(self.decode_ms),
            write_ms: r(self.write_ms),
            ack_ms: r(self.ack_ms),
            rollups_ms: r(self.rollups_ms),
        }
    }
}

/// Counters of one process, printed as JSON on exit.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Counters {
    pub feed: String,
    pub stream: String,
    pub consumer: String,
    /// Messages taken into a batch.
    pub received: u64,
    /// Messages whose batch transaction committed (bars and rejects alike).
    pub committed: u64,
    pub batches: u64,
    /// Batches whose `COPY` met stored keys and were written again as an upsert
    /// (redeliveries, corrections).
    pub upsert_batches: u64,
    /// Distinct bars written (inserted, updated or rewritten unchanged).
    pub bars: u64,
    pub rejected: u64,
    pub flagged: u64,
    /// Rejected messages published to the dead-letter subject.
    pub dead_lettered: u64,
    pub acked: u64,
    /// Messages this process received more than once (after a crash or a timeout).
    pub redelivered: u64,
    pub last_seq: u64,
    /// Messages not yet delivered, as of the last message received.
    pub lag: u64,
    pub elapsed_s: f64,
    /// Committed messages per second over the whole run.
    pub messages_per_s: f64,
    /// From the broker storing a message to its batch's commit.
    pub latency_committed_ms: Percentiles,
    /// … to it being in the rollups (plain PostgreSQL: after their refresh; with
    /// TimescaleDB's real-time aggregates, the commit).
    pub latency_visible_ms: Percentiles,
    pub stopped_by: &'static str,
    /// The process's peak resident set (Linux `VmHWM`), when the system tells.
    pub peak_rss_kb: Option<u64>,
    pub time: PhaseTimes,
    #[serde(skip)]
    started: Instant,
    #[serde(skip)]
    committed_ms: Vec<f32>,
    #[serde(skip)]
    visible_ms: Vec<f32>,
}

impl Counters {
    pub fn new(feed: &Feed) -> Self {
        Counters {
            feed: feed.name.clone(),
            stream: feed.stream.clone(),
            consumer: feed.consumer.clone(),
            received: 0,
            committed: 0,
            batches: 0,
            upsert_batches: 0,
            bars: 0,
            rejected: 0,
            flagged: 0,
            dead_lettered: 0,
            acked: 0,
            redelivered: 0,
            last_seq: 0,
            lag: 0,
            elapsed_s: 0.0,
            messages_per_s: 0.0,
            latency_committed_ms: Percentiles::default(),
            latency_visible_ms: Percentiles::default(),
            stopped_by: "end of feed",
            peak_rss_kb: None,
            time: PhaseTimes::default(),
            started: Instant::now(),
            committed_ms: Vec::new(),
            visible_ms: Vec::new(),
        }
    }

    /// A batch's transaction committed.
    pub fn record_commit(&mut self, written: &Written, batch: &Batch) {
        self.committed += (batch.good.len() + batch.poison.len()) as u64;
        self.batches += 1;
        if written.path == Path::Upsert {
            self.upsert_batches += 1;
        }
        self.bars += written.bars as u64;
        self.rejected += written.rejected as u64;
        self.flagged += written.flagged as u64;
        let max_seq = batch
            .good
            .iter()
            .map(|g| g.seq)
            .chain(batch.poison.iter().map(|p| p.seq))
            .max()
            .unwrap_or(0);
        self.last_seq = self.last_seq.max(max_seq);
    }

    /// Messages committed at `committed_ns`, from their broker store times.
    pub fn record_committed(&mut self, published_ns: &[i128], committed_ns: i128) {
        self.committed_ms
            .extend(published_ns.iter().map(|&p| millis(committed_ns - p)));
    }

    /// Messages in the rollups from `visible_ns` on.
    pub fn record_visible(&mut self, published_ns: &[i128], visible_ns: i128) {
        self.visible_ms
            .extend(published_ns.iter().map(|&p| millis(visible_ns - p)));
    }

    fn rate(&self) -> f64 {
        self.committed as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }

    pub fn finish(mut self) -> Self {
        self.elapsed_s = (self.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
        self.messages_per_s = self.rate().round();
        self.latency_committed_ms = Percentiles::of(&mut self.committed_ms);
        self.latency_visible_ms = Percentiles::of(&mut self.visible_ms);
        self.time = self.time.rounded();
        self.peak_rss_kb = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| peak_rss_kb(&s));
        self
    }
}

fn millis(nanos: i128) -> f32 {
    (nanos as f64 / 1e6) as f32
}

/// `VmHWM:    12345 kB` of a `/proc/<pid>/status`.
fn peak_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Live progress: a spinner on a terminal, a log line every `every` otherwise.
pub struct Reporter {
    bar: Option<ProgressBar>,
    name: String,
    every: Duration,
    /// When the last line was logged, and `committed` then (for the current rate).
    last: Mutex<(Instant, u64)>,
}

impl Reporter {
    pub fn new(name: &str, every: Duration) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} · {msg} · {elapsed_precise}")
                    .expect("the template is valid"),
            );
            bar.set_prefix(format!("stream {name}"));
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Reporter {
            bar,
            name: name.to_owned(),
            every,
            last: Mutex::new((Instant::now(), 0)),
        }
    }

    /// `now_rate`: committed messages per second since the previous line.
    fn line(c: &Counters, now_rate: Option<f64>) -> String {
        let now = now_rate.map_or(String::new(), |r| format!("{r:.0}/s now, "));
        format!(
            "{} committed ({now}{:.0}/s overall), {} batches, {} rejected, {} dead-lettered, \
             {} redelivered, lag {}, last seq {}",
            c.committed,
            c.rate(),
            c.batches,
            c.rejected,
            c.dead_lettered,
            c.redelivered,
            c.lag,
            c.last_seq
        )
    }

    /// After a batch, or while idle: redraw the spinner, or log a line when `every`
    /// has passed since the last one.
    pub fn tick(&self, c: &Counters) {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let since = last.0.elapsed();
        let now_rate = c.committed.saturating_sub(last.1) as f64 / since.as_secs_f64().max(1e-3);
        if let Some(bar) = &self.bar {
            if since >= self.every {
                *last = (Instant::now(), c.committed);
            }
            bar.set_message(Self::line(c, Some(now_rate)));
            return;
        }
        if since >= self.every {
            *last = (Instant::now(), c.committed);
            tracing::info!("stream {}: {}", self.name, Self::line(c, Some(now_rate)));
        }
    }

    pub fn finish(&self, c: &Counters) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        tracing::info!(
            "stream {} stopped ({}): {}",
            self.name,
            c.stopped_by,
            Self::line(c, None)
        );
    }
}

/// What the database holds for a feed.
#[derive(Debug, Clone, Default, serde::Serialize, QueryableByName)]
pub struct Applied {
    /// Highest stream sequence committed by the consumer (0: none yet).
    #[diesel(sql_type = BigInt)]
    pub last_applied_seq: i64,
    /// Messages applied in all (redeliveries included).
    #[diesel(sql_type = BigInt)]
    pub messages_applied: i64,
    #[diesel(sql_type = BigInt)]
    pub rejects: i64,
}

pub fn applied(conn: &mut PgConnection, feed: &Feed) -> QueryResult<Applied> {
    diesel::sql_query(
        "SELECT coalesce((SELECT last_seq FROM stream_offsets WHERE consumer = $1 AND stream = $2), 0) AS last_applied_seq, \
         coalesce((SELECT messages FROM stream_offsets WHERE consumer = $1 AND stream = $2), 0) AS messages_applied, \
         (SELECT count(*) FROM stream_rejects WHERE stream = $2) AS rejects",
    )
    .bind::<Text, _>(&feed.consumer)
    .bind::<Text, _>(&feed.stream)
    .get_result(conn)
}

/// `runner stream --status`: one feed's broker and database state.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    pub feed: String,
    pub stream: String,
    pub consumer: String,
    /// `None` when the stream or consumer does not exist yet.
    pub broker: Option<ConsumerState>,
    pub database: Applied,
}

impl Status {
    /// Aligned `key: value` lines.
    pub fn text(&self) -> String {
        let mut out = format!(
            "feed:              {}\nstream:            {}\nconsumer:          {}\n",
            self.feed, self.stream, self.consumer
        );
        match &self.broker {
            None => out.push_str("broker:            stream or consumer not created yet\n"),
            Some(b) => out.push_str(&format!(
                "stream messages:   {} (last seq {})\nlag (num_pending): {}\nack pending:       {}\nredelivered:       {}\nwaiting pulls:     {}\nack floor seq:     {}\n",
                b.stream_messages, b.stream_last_seq, b.num_pending, b.num_ack_pending, b.num_redelivered, b.num_waiting, b.ack_floor_seq
            )),
        }
        out.push_str(&format!(
            "last applied seq:  {}\nmessages applied:  {}\nrejects:           {}\n",
            self.database.last_applied_seq, self.database.messages_applied, self.database.rejects
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_pick_the_nearest_rank() {
        let mut samples: Vec<f32> = (1..=101).map(|i| i as f32).collect();
        samples.reverse();
        let p = Percentiles::of(&mut samples);
        assert_eq!(
            (p.count, p.p50, p.p90, p.p99, p.max),
            (101, 51.0, 91.0, 100.0, 101.0)
        );
        let none = Percentiles::of(&mut []);
        assert_eq!((none.count, none.p99), (0, 0.0));
    }

    #[test]
    fn peak_rss_is_read_from_vmhwm() {
        let status =
            "Name:\trunner\nVmPeak:\t  200000 kB\nVmHWM:\t   34816 kB\nVmRSS:\t 30000 kB\n";
        assert_eq!(peak_rss_kb(status), Some(34816));
        assert_eq!(peak_rss_kb("Name:\trunner\n"), None);
    }
}
