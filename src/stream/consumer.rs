//! `runner stream`: pull a feed's messages, batch them by size or time, write each
//! batch in one transaction, then acknowledge it.
//!
//! The order is what makes the effect exactly once: decode → one transaction (bars,
//! flags, rejects, change log, offset) → dead-letter publish → ack. A process killed
//! before the commit leaves nothing and the messages come back after `ack_wait`; one
//! killed after it leaves rows that the redelivered messages rewrite to the same values
//! (the upsert on `(symbol, ts)` keeps the row of the newest stream sequence).
//!
//! Only this command (and `replay`) runs tokio: the database work of a batch runs on
//! the blocking pool with the process's one connection, so the runtime keeps pulling
//! messages (the client prefetches the next batch) while a batch is being written.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;

use super::broker::{self, nats_error};
use super::payload::Decoder;
use super::status::{Counters, Reporter};
use super::storage::{self, Rollup};
use super::write::{self, Batch, Good, Poison};
use super::StreamError;
use crate::db::pool::PooledConn;
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

/// Consume `feed` until a signal (or, with `until_drained`, until it is drained).
pub fn run(
    feed: &Feed,
    conn: PooledConn,
    caps: &Capabilities,
    options: Options,
) -> Result<Counters> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(StreamError::Runtime)?;
    runtime.block_on(consume(feed.clone(), conn, caps.clone(), options))
}

async fn consume(
    feed: Feed,
    mut conn: PooledConn,
    caps: Capabilities,
    options: Options,
) -> Result<Counters> {
    let stop = Arc::new(AtomicBool::new(false));
    let stop_notify = Arc::new(tokio::sync::Notify::new());
    spawn_signal_handler(stop.clone(), stop_notify.clone())?;

    write::prepare(&mut conn).map_err(crate::db::db_error("preparing the stream connection"))?;
    let (client, js) = broker::connect(&feed).await?;
    let stream = broker::ensure_stream(&js, &feed).await?;
    let mut consumer = broker::ensure_consumer(&stream, &feed).await?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(feed.batch_size)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| nats_error("pulling messages")(Box::new(e)))?;

    let decoder = Decoder {
        format: feed.format,
        symbol_from: feed.symbol_from,
        rules: feed.rules.clone(),
    };
    let rollups: Vec<Rollup> = feed
        .refresh
        .iter()
        .filter_map(|r| Rollup::named(r))
        .collect();
    let mut counters = Counters::new(&feed);
    let reporter = Reporter::new(&feed.name, options.log_every);
    let mut conn = Some(conn);
    // Store times of committed messages the rollups do not show yet.
    let mut unrefreshed: Vec<i128> = Vec::new();
    let mut last_refresh = Instant::now();
    tracing::info!(feed = %feed.name, stream = %feed.stream, consumer = %feed.consumer, "consuming");

    'outer: while !stop.load(Ordering::SeqCst) {
        // The first message of a batch: wait for it, a signal, or an idle check.
        let first = tokio::select! {
            m = messages.next() => m,
            _ = stop_notify.notified() => break 'outer,
            _ = tokio::time::sleep(IDLE_CHECK) => {
                refresh(&mut conn, &caps, &rollups, &mut counters, &mut unrefreshed).await?;
                reporter.tick(&counters);
                if options.until_drained {
                    let info = consumer.info().await.map_err(|e| nats_error("reading the consumer")(Box::new(e)))?;
                    if info.num_pending == 0 && info.num_ack_pending == 0 {
                        counters.stopped_by = "drained";
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
        counters.time.collect_ms += ms(decoding - collecting);

        // Decode.
        let mut batch = Batch::default();
        let mut published = Vec::with_capacity(batch_msgs.len());
        for m in &batch_msgs {
            let info = m
                .info()
                .map_err(|e| nats_error("reading a message's metadata")(e))?;
            let seq = info.stream_sequence;
            published.push(info.published.unix_timestamp_nanos());
            if info.delivered > 1 {
                counters.redelivered += 1;
            }
            counters.lag = info.pending;
            counters.received += 1;
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

        let writing = Instant::now();
        counters.time.decode_ms += ms(writing - decoding);
        // One transaction on the blocking pool; the runtime keeps receiving meanwhile.
        let mut c = conn
            .take()
            .expect("the connection is returned after every batch");
        let (consumer_name, stream_name) = (feed.consumer.clone(), feed.stream.clone());
        let (c, batch, result) = tokio::task::spawn_blocking(move || {
            let r = write::write_batch(&mut c, &consumer_name, &stream_name, &batch);
            (c, batch, r)
        })
        .await
        .map_err(|source| StreamError::Panicked {
            what: "the batch writer",
            source,
        })?;
        conn = Some(c);
        let written = result.map_err(crate::db::db_error("writing a stream batch"))?;
        let committed_at = now_nanos();
        let acking = Instant::now();
        counters.time.write_ms += ms(acking - writing);
        counters.record_commit(&written, &batch);
        crate::crashpoint::reached("stream.after_commit");

        for p in &batch.poison {
            publish_dead_letter(&client, &feed, p).await?;
            counters.dead_lettered += 1;
        }
        let half = batch_msgs.len() / 2;
        for (i, m) in batch_msgs.iter().enumerate() {
            if i == half {
                crate::crashpoint::reached("stream.mid_ack");
            }
            m.ack()
                .await
                .map_err(|e| nats_error("acknowledging a message")(e))?;
        }
        counters.acked += batch_msgs.len() as u64;
        counters.time.ack_ms += ms(acking.elapsed());

        counters.record_committed(&published, committed_at);
        unrefreshed.extend_from_slice(&published);

        // Plain PostgreSQL: the rollups follow the change log once the feed is caught
        // up (a batch cut by its delay, or nothing left behind its last message), and
        // otherwise every `REFRESH_BEHIND`: under a backlog one refresh then covers
        // many batches, instead of recomputing the same buckets after each.
        let caught_up = batch_msgs.len() < feed.batch_size || counters.lag == 0;
        if caught_up || last_refresh.elapsed() >= REFRESH_BEHIND.max(feed.max_batch_delay) {
            refresh(&mut conn, &caps, &rollups, &mut counters, &mut unrefreshed).await?;
            last_refresh = Instant::now();
        }
        reporter.tick(&counters);
    }

    refresh(&mut conn, &caps, &rollups, &mut counters, &mut unrefreshed).await?;
    // Messages the client prefetched but no batch took are not acknowledged: the
    // server hands them to another process (or the next run) after `ack_wait`.
    if stop.load(Ordering::SeqCst) {
        counters.stopped_by = "signal";
    }
    drop(messages);
    client
        .flush()
        .await
        .map_err(|e| nats_error("flushing acknowledgements")(Box::new(e)))?;
    reporter.finish(&counters);
    Ok(counters.finish())
}

/// Refresh the rollups when messages committed since the last refresh (`unrefreshed`)
/// are not in them yet; their visible latency is measured here.
async fn refresh(
    conn: &mut Option<PooledConn>,
    caps: &Capabilities,
    rollups: &[Rollup],
    counters: &mut Counters,
    unrefreshed: &mut Vec<i128>,
) -> Result<()> {
    if unrefreshed.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let mut c = conn
        .take()
        .expect("the connection is returned after every batch");
    let (caps, rollups) = (caps.clone(), rollups.to_vec());
    let (c, drained) = tokio::task::spawn_blocking(move || {
        let r = storage::drain(&mut c, &caps, &rollups);
        (c, r)
    })
    .await
    .map_err(|source| StreamError::Panicked {
        what: "the rollup refresh",
        source,
    })?;
    *conn = Some(c);
    drained?;
    counters.record_visible(unrefreshed, now_nanos());
    counters.time.rollups_ms += ms(started.elapsed());
    unrefreshed.clear();
    Ok(())
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
