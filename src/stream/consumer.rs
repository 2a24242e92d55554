//! `runner stream`: pull a feed's messages, batch them by size or time, write each
//! batch in one transaction, then acknowledge it.
//!
//! The order is what makes the effect exactly once: decode → one transaction (bars,
//! flags, rejects, change log, offset) → dead-letter publish → ack. A process killed
//! before the commit leaves nothing and the messages come back after `ack_wait`; one
//! killed after it leaves rows that the redelivered messages rewrite to the same values
//! (the fallback upsert on `(symbol, ts)` keeps the row of the newest stream sequence).
//!
//! Only this command (and `replay`) runs tokio. Three stages overlap, so the database
//! is never idle while the next batch is pulled and decoded:
//!
//! - the collector (this function's loop) pulls messages, cuts a batch by size or
//!   delay and decodes it, then hands it on through a channel of one batch;
//! - the committer writes one batch at a time on the blocking pool with the process's
//!   connection (diesel is blocking), then publishes dead letters and acknowledges;
//! - on plain PostgreSQL the refresher brings the rollups up to date on a second
//!   connection, so a refresh does not hold up the next batch's write.
//!
//! On SIGTERM/SIGINT the collector stops pulling, the committer finishes the batch it
//! is writing and acknowledges it, and batches not yet being written are dropped
//! unacknowledged: the server redelivers them after `ack_wait`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::Message;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::broker::{self, nats_error};
use super::payload::Decoder;
use super::status::{Counters, Reporter};
use super::storage::{self, Rollup};
use super::write::{self, Batch, Good, Poison};
use super::StreamError;
use crate::db::pool::{checkout, Pool, PooledConn};
use crate::db::Capabilities;
use crate::error::Result;
use crate::job::feed::Feed;

/// How long to wait for a first message before checking whether the feed is drained.
const IDLE_CHECK: Duration = Duration::from_millis(300);

/// How often the rollups are refreshed while the feed is behind (messages are then
/// seconds old already; each refresh recomputes every bucket a batch touched, so
/// refreshing after every batch would spend most of the time on the same buckets).
const REFRESH_BEHIND: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Exit once nothing is pending or unacknowledged on the consumer (tests, backfills).
    pub until_drained: bool,
    /// Without a terminal, log a progress line this often.
    pub log_every: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            until_drained: false,
            log_every: super::status::LOG_EVERY,
        }
    }
}

/// The database connections of a stream process.
struct Connections {
    /// Writes the batches.
    writer: PooledConn,
    /// Refreshes the rollups, when the process does (see [`refreshes`]).
    refresher: Option<PooledConn>,
}

/// Whether a process of `feed` refreshes rollups itself: on plain PostgreSQL, when the
/// feed names some. TimescaleDB's real-time aggregates show a bar at its commit.
pub fn refreshes(feed: &Feed, caps: &Capabilities) -> bool {
    !caps.has_timescale() && feed.refresh.iter().any(|r| Rollup::named(r).is_some())
}

/// Consume `feed` until a signal (or, with `until_drained`, until it is drained), with
/// one connection of `pool`, two when the process [`refreshes`] rollups.
pub fn run(feed: &Feed, pool: &Pool, caps: &Capabilities, options: Options) -> Result<Counters> {
    let conns = Connections {
        writer: checkout(pool)?,
        refresher: refreshes(feed, caps).then(|| checkout(pool)).transpose()?,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(StreamError::Runtime)?;
    runtime.block_on(consume(feed.clone(), conns, caps.clone(), options))
}

/// A decoded batch on its way to the committer.
struct Decoded {
    messages: Vec<Message>,
    batch: Batch,
    /// The messages' broker store times (ns since the epoch), for the latencies.
    published: Vec<i128>,
    /// Cut by its delay, or nothing was behind its last message: the rollups should
    /// show it now rather than at the next periodic refresh.
    caught_up: bool,
}

/// A committed batch on its way to the refresher.
struct Committed {
    published: Vec<i128>,
    caught_up: bool,
}

/// The counters, shared by the three stages (never locked across an `await`).
type Shared = Arc<Mutex<Counters>>;

fn lock(counters: &Shared) -> MutexGuard<'_, Counters> {
    counters.lock().unwrap_or_else(|e| e.into_inner())
}

async fn consume(
    feed: Feed,
    conns: Connections,
    caps: Capabilities,
    options: Options,
) -> Result<Counters> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_notify = Arc::new(tokio::sync::Notify::new());
    spawn_signal_handler(stop.clone(), stop_notify.clone())?;

    let Connections {
        writer: mut conn,
        refresher: refresh_conn,
    } = conns;
    write::prepare(&mut conn).map_err(crate::db::db_error("preparing the stream connection"))?;
    let (client, js) = broker::connect(&feed).await?;
    let stream = broker::ensure_stream(&js, &feed).await?;
    let mut consumer = broker::ensure_consumer(&stream, &feed).await?;
    let mut messages = broker::pull_messages(&consumer, &feed).await?;

    let decoder = Decoder::for_feed(&feed);
    let rollups: Vec<Rollup> = feed
        .refresh
        .iter()
        .filter_map(|r| Rollup::named(r))
        .collect();
    let counters: Shared = Arc::new(Mutex::new(Counters::new(&feed)));
    let reporter = Arc::new(Reporter::new(&feed.name, options.log_every));

    // Without a refresher a batch is visible at its commit.
    let (to_refresher, refresher) = if let Some(conn) = refresh_conn {
        let (tx, rx) = mpsc::unbounded_channel();
        let refresher = Refresher {
            conn: Some(conn),
            caps: caps.clone(),
            rollups,
            counters: counters.clone(),
            every: REFRESH_BEHIND.max(feed.max_batch_delay),
        };
        (Some(tx), Some(tokio::spawn(refresher.run(rx))))
    } else {
        (None, None)
    };
    let (to_committer, from_collector) = mpsc::channel::<Decoded>(1);
    let committer = Committer {
        conn: Some(conn),
        client: client.clone(),
        feed: feed.clone(),
        counters: counters.clone(),
        reporter: reporter.clone(),
        stop: stop.clone(),
        refresher: to_refresher,
    };
    let committer = tokio::spawn(committer.run(from_collector));
    tracing::info!(feed = %feed.name, stream = %feed.stream, consumer = %feed.consumer, "consuming");

    let mut lag = 0;
    'outer: while !stop.load(Ordering::SeqCst) {
        // The first message of a batch: wait for it, a signal, or an idle check.
        let first = tokio::select! {
            m = messages.next() => m,
            _ = stop_notify.notified() => break 'outer,
            _ = tokio::time::sleep(IDLE_CHECK) => {
                reporter.tick(&lock(&counters));
                if committer.is_finished() {
                    break 'outer; // it failed: its error is returned below
                }
                if options.until_drained {
                    let info = consumer.info().await.map_err(|e| nats_error("reading the consumer")(Box::new(e)))?;
                    if info.num_pending == 0 && info.num_ack_pending == 0 {
                        lock(&counters).stopped_by = "drained";
                        break 'outer;
                    }
                }
                continue;
            }
        };
        let mut batch_msgs = Vec::with_capacity(feed.batch_size);
        match first {
            None => break,
            Some(Ok(m)) => batch_msgs.push(m),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "pulling messages");
                continue;
            }
        }
        let collecting = Instant::now();
        let deadline = tokio::time::Instant::now() + feed.max_batch_delay;
        while batch_msgs.len() < feed.batch_size {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(Ok(m))) => batch_msgs.push(m),
                Ok(Some(Err(e))) => tracing::warn!(error = %e, "pulling messages"),
                Ok(None) | Err(_) => break,
            }
        }
        crate::crashpoint::reached("stream.batch_received");
        let decoding = Instant::now();

        let mut batch = Batch::default();
        let mut published = Vec::with_capacity(batch_msgs.len());
        let mut redelivered = 0;
        for m in &batch_msgs {
            let info = m
                .info()
                .map_err(|e| nats_error("reading a message's metadata")(e))?;
            let seq = info.stream_sequence;
            published.push(info.published.unix_timestamp_nanos());
            if info.delivered > 1 {
                redelivered += 1;
            }
            lag = info.pending;
            match decoder.decode(m.subject.as_str(), &m.payload) {
                Ok((bar, flags)) => batch.good.push(Good { seq, bar, flags }),
                Err(rejected) => batch.poison.push(Poison {
                    seq,
                    subject: m.subject.to_string(),
                    reason: rejected.reason,
                    payload: String::from_utf8_lossy(&m.payload).into_owned(),
                }),
            }
        }
        {
            let mut c = lock(&counters);
            c.received += batch_msgs.len() as u64;
            c.redelivered += redelivered;
            c.lag = lag;
            c.time.collect_ms += ms(decoding - collecting);
            c.time.decode_ms += ms(decoding.elapsed());
        }
        if stop.load(Ordering::SeqCst) {
            break; // not written, so not acknowledged: redelivered after `ack_wait`
        }
        let caught_up = batch_msgs.len() < feed.batch_size || lag == 0;
        let decoded = Decoded {
            messages: batch_msgs,
            batch,
            published,
            caught_up,
        };
        // Waits while the committer is still busy with the batch before the last.
        if to_committer.send(decoded).await.is_err() {
            break; // the committer stopped: its error is returned below
        }
    }

    drop(to_committer);
    // Messages the client prefetched but no batch took are not acknowledged: the
    // server hands them to another process (or the next run) after `ack_wait`.
    drop(messages);
    committer.await.map_err(|source| StreamError::Panicked {
        what: "the batch writer",
        source,
    })??;
    if let Some(refresher) = refresher {
        refresher.await.map_err(|source| StreamError::Panicked {
            what: "the rollup refresh",
            source,
        })??;
    }
    client
        .flush()
        .await
        .map_err(|e| nats_error("flushing acknowledgements")(Box::new(e)))?;
    let mut counters = lock(&counters).clone();
    if stop.load(Ordering::SeqCst) {
        counters.stopped_by = "signal";
    }
    reporter.finish(&counters);
    Ok(counters.finish())
}

/// Writes the collector's batches one at a time, then acknowledges them.
struct Committer {
    /// Taken by the blocking write and given back after it.
    conn: Option<PooledConn>,
    client: async_nats::Client,
    feed: Feed,
    counters: Shared,
    reporter: Arc<Reporter>,
    stop: Arc<AtomicBool>,
    /// Where committed batches go for the rollups; `None`: visible at commit.
    refresher: Option<mpsc::UnboundedSender<Committed>>,
}

impl Committer {
    async fn run(mut self, mut batches: mpsc::Receiver<Decoded>) -> Result<()> {
        while let Some(d) = batches.recv().await {
            if self.stop.load(Ordering::SeqCst) {
                // A signal: only a batch whose write had begun is finished.
                break;
            }
            if !self.commit(d).await? {
                break; // the refresher stopped: its error is returned by `consume`
            }
        }
        Ok(())
    }

    /// Write, acknowledge and pass on one batch; `false` when the refresher is gone.
    async fn commit(&mut self, d: Decoded) -> Result<bool> {
        let writing = Instant::now();
        let mut c = self
            .conn
            .take()
            .expect("the connection is returned after every batch");
        let (consumer_name, stream_name) = (self.feed.consumer.clone(), self.feed.stream.clone());
        let batch = d.batch;
        let (c, batch, result) = tokio::task::spawn_blocking(move || {
            let r = write::write_batch(&mut c, &consumer_name, &stream_name, &batch);
            (c, batch, r)
        })
        .await
        .map_err(|source| StreamError::Panicked {
            what: "the batch writer",
            source,
        })?;
        self.conn = Some(c);
        let written = result.map_err(crate::db::db_error("writing a stream batch"))?;
        let committed_at = now_nanos();
        let acking = Instant::now();
        {
            let mut counters = lock(&self.counters);
            counters.time.write_ms += ms(acking - writing);
            counters.record_commit(&written, &batch);
        }
        crate::crashpoint::reached("stream.after_commit");

        for p in &batch.poison {
            publish_dead_letter(&self.client, &self.feed, p).await?;
        }
        let half = d.messages.len() / 2;
        for (i, m) in d.messages.iter().enumerate() {
            if i == half {
                crate::crashpoint::reached("stream.mid_ack");
            }
            m.ack()
                .await
                .map_err(|e| nats_error("acknowledging a message")(e))?;
        }
        {
            let mut counters = lock(&self.counters);
            counters.dead_lettered += batch.poison.len() as u64;
            counters.acked += d.messages.len() as u64;
            counters.time.ack_ms += ms(acking.elapsed());
            counters.record_committed(&d.published, committed_at);
            if self.refresher.is_none() {
                counters.record_visible(&d.published, committed_at);
            }
            self.reporter.tick(&counters);
        }
        Ok(match &self.refresher {
            None => true,
            Some(to) => to
                .send(Committed {
                    published: d.published,
                    caught_up: d.caught_up,
                })
                .is_ok(),
        })
    }
}

/// Keeps the rollups of plain PostgreSQL up to date with the committed batches.
struct Refresher {
    /// Its own connection; taken by the blocking refresh and given back after it.
    conn: Option<PooledConn>,
    caps: Capabilities,
    rollups: Vec<Rollup>,
    counters: Shared,
    /// While the feed is behind, refresh at most this often.
    every: Duration,
}

impl Refresher {
    /// Refresh when a caught-up batch committed, or `every` after the last refresh
    /// while batches keep committing; once more when the committer is done.
    async fn run(mut self, mut committed: mpsc::UnboundedReceiver<Committed>) -> Result<()> {
        // Store times of committed messages the rollups do not show yet.
        let mut unrefreshed: Vec<i128> = Vec::new();
        let mut last = Instant::now();
        let mut open = true;
        while open || !unrefreshed.is_empty() {
            let mut due = !open;
            if !due {
                let wait = (last + self.every).saturating_duration_since(Instant::now());
                tokio::select! {
                    c = committed.recv() => match c {
                        Some(c) => {
                            unrefreshed.extend_from_slice(&c.published);
                            due = c.caught_up;
                        }
                        None => {
                            open = false;
                            due = true;
                        }
                    },
                    _ = tokio::time::sleep(wait), if !unrefreshed.is_empty() => due = true,
                }
            }
            // Whatever else committed meanwhile: one refresh covers it all.
            while let Ok(c) = committed.try_recv() {
                unrefreshed.extend_from_slice(&c.published);
                due |= c.caught_up;
            }
            if due && !unrefreshed.is_empty() {
                self.refresh(&unrefreshed).await?;
                unrefreshed.clear();
                last = Instant::now();
            }
        }
        Ok(())
    }

    /// One refresh; `published` were all committed before it began, so it shows them.
    async fn refresh(&mut self, published: &[i128]) -> Result<()> {
        let started = Instant::now();
        let mut c = self
            .conn
            .take()
            .expect("the connection is returned after every refresh");
        let (caps, rollups) = (self.caps.clone(), self.rollups.clone());
        let (c, drained) = tokio::task::spawn_blocking(move || {
            let r = storage::drain(&mut c, &caps, &rollups);
            (c, r)
        })
        .await
        .map_err(|source| StreamError::Panicked {
            what: "the rollup refresh",
            source,
        })?;
        self.conn = Some(c);
        drained?;
        let mut counters = lock(&self.counters);
        counters.record_visible(published, now_nanos());
        counters.time.rollups_ms += ms(started.elapsed());
        Ok(())
    }
}
async fn publish_dead_letter(client: &async_nats::Client, feed: &Feed, p: &Poison) -> Result<()> {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("{}-{}", feed.stream, p.seq).as_str());
    headers.insert("Runner-Subject", p.subject.as_str());
    headers.insert("Runner-Seq", p.seq.to_string().as_str());
    headers.insert(
        "Runner-Reason",
        p.reason.replace(['\r', '\n'], " ").as_str(),
    );
    client
        .publish_with_headers(
            feed.dead_letter_subject.clone(),
            headers,
            p.payload.clone().into(),
        )
        .await
        .map_err(|e| nats_error("publishing to the dead-letter subject")(Box::new(e)))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// SIGTERM and SIGINT set `stop`: the batch in flight finishes and is acknowledged.
fn spawn_signal_handler(stop: Arc<AtomicBool>, notify: Arc<tokio::sync::Notify>) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(|source| StreamError::Signal {
        signal: "SIGTERM",
        source,
    })?;
    let mut int = signal(SignalKind::interrupt()).map_err(|source| StreamError::Signal {
        signal: "SIGINT",
        source,
    })?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("stopping: finishing the batch in flight");
        stop.store(true, Ordering::SeqCst);
        notify.notify_waiters();
    });
    Ok(())
}
