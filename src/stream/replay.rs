//! `runner replay`: the feed simulator. It publishes intraday bars to a feed's subjects
//! — generated 1-minute bars (the same seed gives the same messages), or the rows of
//! daily Kaggle CSVs as one message per bar — at a fixed rate or as fast as the broker
//! takes them. Every message carries `Nats-Msg-Id = <symbol>-<bar time>`, so publishing
//! the same bars again within the stream's duplicate window stores nothing new.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::{Publish, PublishAckFuture};
use chrono::{DateTime, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::broker::{self, nats_error};
use super::StreamError;
use crate::error::Result;
use crate::job::feed::{Feed, PayloadFormat};

/// 1-minute bars per session: 09:30–16:00 New York, taken as 14:30–21:00 UTC.
pub const BARS_PER_DAY: u32 = 390;
const SESSION_OPEN_UTC_MINUTES: u32 = 14 * 60 + 30;

/// Publishes kept in flight before waiting for the broker's acknowledgements.
const WINDOW: usize = 512;

#[derive(Debug, Clone)]
pub enum Source {
    Generated {
        seed: u64,
        symbols: usize,
        days: usize,
        /// Last trading day.
        end: NaiveDate,
    },
    /// Daily Kaggle CSVs; the symbol is the file's stem.
    Files(Vec<PathBuf>),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub source: Source,
    /// Messages per second; 0 publishes as fast as the broker acknowledges.
    pub rate: f64,
    /// Stop after this many messages.
    pub limit: Option<u64>,
    /// Every n-th message is a payload no feed accepts (for demos of the rejects).
    pub poison_every: Option<u64>,
}

/// What was published, printed as JSON.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Published {
    pub feed: String,
    pub stream: String,
    pub messages: u64,
    /// Dropped by JetStream as a repeat of an earlier `Nats-Msg-Id`.
    pub duplicates: u64,
    pub poison: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub elapsed_s: f64,
    pub messages_per_s: f64,
}

/// One message to publish.
struct Outgoing {
    subject: String,
    id: String,
    payload: String,
}

pub fn run(feed: &Feed, options: &Options) -> Result<Published> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(StreamError::Runtime)?;
    runtime.block_on(publish_all(feed, options))
}

async fn publish_all(feed: &Feed, options: &Options) -> Result<Published> {
    let (client, js) = broker::connect(feed).await?;
    broker::ensure_stream(&js, feed).await?;
    let mut out = Published {
        feed: feed.name.clone(),
        stream: feed.stream.clone(),
        ..Published::default()
    };
    let started = Instant::now();
    let mut in_flight: VecDeque<PublishAckFuture> = VecDeque::with_capacity(WINDOW);
    let messages = messages(feed, &options.source)?;
    for (i, mut m) in messages.enumerate() {
        let n = i as u64 + 1;
        if options.limit.is_some_and(|limit| n > limit) {
            break;
        }
        if options
            .poison_every
            .is_some_and(|k| k > 0 && n.is_multiple_of(k))
        {
            m.payload = format!("not a bar #{n}");
            out.poison += 1;
        }
        if options.rate > 0.0 {
            let due = started + Duration::from_secs_f64(i as f64 / options.rate);
            tokio::time::sleep_until(due.into()).await;
        }
        if in_flight.len() >= WINDOW {
            settle(in_flight.pop_front(), &mut out).await?;
        }
        let ack = js
            .send_publish(
                m.subject,
                Publish::build().payload(m.payload.into()).message_id(m.id),
            )
            .await
            .map_err(|e| nats_error("publishing a bar")(Box::new(e)))?;
        in_flight.push_back(ack);
        out.messages += 1;
    }
    while let Some(ack) = in_flight.pop_front() {
        settle(Some(ack), &mut out).await?;
    }
    client
        .flush()
        .await
        .map_err(|e| nats_error("flushing")(Box::new(e)))?;
    out.elapsed_s = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    out.messages_per_s = (out.messages as f64 / started.elapsed().as_secs_f64().max(1e-3)).round();
    Ok(out)
}

async fn settle(ack: Option<PublishAckFuture>, out: &mut Published) -> Result<()> {
    let Some(ack) = ack else { return Ok(()) };
    let ack = ack
        .await
        .map_err(|e| nats_error("waiting for the broker to store a bar")(Box::new(e)))?;
    if ack.duplicate {
        out.duplicates += 1;
    } else {
        if out.first_seq == 0 {
            out.first_seq = ack.sequence;
        }
        out.last_seq = out.last_seq.max(ack.sequence);
    }
    Ok(())
}

fn messages(feed: &Feed, source: &Source) -> Result<Box<dyn Iterator<Item = Outgoing>>> {
    match source {
        Source::Generated {
            seed,
            symbols,
            days,
            end,
        } => Ok(Box::new(generated(
            feed.clone(),
            *seed,
            *symbols,
            *days,
            *end,
        )?)),
        Source::Files(paths) => Ok(Box::new(files(feed.clone(), paths)?.into_iter())),
    }
}

/// A generated bar, before it is written in the feed's format.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedBar {
    pub symbol: String,
    pub ts: DateTime<Utc>,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: i64,
}

/// The bars of `symbols` symbols over the last `days` sessions up to `end`, minute by
/// minute (every symbol's bar of a minute before the next minute), reproducible by seed.
pub fn generate(
    seed: u64,
    symbols: usize,
    days: usize,
    end: NaiveDate,
) -> Result<impl Iterator<Item = GeneratedBar>> {
    let sessions = sessions(end, days)?;
    let names: Vec<String> = (0..symbols).map(|i| format!("S{i:05}")).collect();
    let mut rngs: Vec<ChaCha8Rng> = (0..symbols)
        .map(|i| ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(i as u64)))
        .collect();
    let mut prices: Vec<f64> = rngs
        .iter_mut()
        .map(|r| round4(r.random_range(10.0..500.0)))
        .collect();
    let minutes = sessions.into_iter().flat_map(|day| {
        (0..BARS_PER_DAY).map(move |m| {
            day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
                + chrono::Duration::minutes(i64::from(SESSION_OPEN_UTC_MINUTES + m))
        })
    });
    Ok(minutes.flat_map(move |ts| {
        let mut bars = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let rng = &mut rngs[i];
            let open = prices[i];
            let close = round4((open * (1.0 + rng.random_range(-0.002..0.002))).max(0.01));
            let high = round4(open.max(close) * (1.0 + rng.random_range(0.0..0.001)));
            let low = round4(open.min(close) * (1.0 - rng.random_range(0.0..0.001)));
            prices[i] = close;
            bars.push(GeneratedBar {
                symbol: name.clone(),
                ts,
                open,
                high,
                low,
                close,
                volume: rng.random_range(100..20_000),
            });
        }
        bars
    }))
}

fn generated(
    feed: Feed,
    seed: u64,
    symbols: usize,
    days: usize,
    end: NaiveDate,
) -> Result<impl Iterator<Item = Outgoing>> {
    Ok(generate(seed, symbols, days, end)?.map(move |b| {
        let payload = match feed.format {
            PayloadFormat::Json => serde_json::json!({
                "symbol": b.symbol,
                "ts": b.ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "open": b.open, "high": b.high, "low": b.low, "close": b.close, "volume": b.volume,
            })
            .to_string(),
            PayloadFormat::Csv => format!(
                "{},{},{},{},{},{},{}",
                b.ts.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                b.open,
                b.high,
                b.low,
                b.close,
                b.close,
                b.volume
            ),
        };
        Outgoing {
            subject: feed.subject_for(&b.symbol),
            id: format!("{}-{}", b.symbol, b.ts.timestamp()),
            payload,
        }
    }))
}

/// The last `days` weekdays up to `end`.
fn sessions(end: NaiveDate, days: usize) -> Result<Vec<NaiveDate>> {
    let mut out = Vec::with_capacity(days);
    let mut day = end;
    while out.len() < days {
        // Weekdays: exchange holidays do not matter to a simulator.
        if !matches!(
            chrono::Datelike::weekday(&day),
            chrono::Weekday::Sat | chrono::Weekday::Sun
        ) {
            out.push(day);
        }
        day = day.pred_opt().ok_or(StreamError::NoTradingDays)?;
    }
    out.reverse();
    Ok(out)
}

fn round4(v: f64) -> f64 {
    (v * 10_000.0).round() / 10_000.0
}

/// Every data row of the files, one message each (file by file, in file order).
fn files(feed: Feed, paths: &[PathBuf]) -> Result<Vec<Outgoing>> {
    let mut out = Vec::new();
    for path in paths {
        let symbol = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = std::fs::read_to_string(path).map_err(|source| StreamError::Read {
            path: path.clone(),
            source,
        })?;
        for line in text.trim_start_matches('\u{feff}').lines().skip(1) {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let date = line.split(',').next().unwrap_or("").trim().to_owned();
            let payload = match feed.format {
                PayloadFormat::Csv => line.to_owned(),
                PayloadFormat::Json => {
                    let c: Vec<&str> = line.split(',').map(str::trim).collect();
                    let get =
                        |i: usize| c.get(i).filter(|s| !s.is_empty()).map(|s| (*s).to_owned());
                    serde_json::json!({
                        "symbol": symbol, "ts": date, "open": get(1), "high": get(2),
                        "low": get(3), "close": get(4), "volume": get(6),
                    })
                    .to_string()
                }
            };
            out.push(Outgoing {
                subject: feed.subject_for(&symbol),
                id: format!("{symbol}-{date}"),
                payload,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_bars_are_reproducible_and_minute_major() {
        let end = NaiveDate::from_ymd_opt(2020, 4, 1).unwrap();
        let a: Vec<_> = generate(7, 3, 2, end).unwrap().collect();
        let b: Vec<_> = generate(7, 3, 2, end).unwrap().collect();
        assert_eq!(a, b);
        assert_eq!(a.len(), 3 * 2 * BARS_PER_DAY as usize);
        assert_eq!(a[0].ts.to_rfc3339(), "2020-03-31T14:30:00+00:00");
        assert_eq!(
            (
                a[0].symbol.as_str(),
                a[1].symbol.as_str(),
                a[3].ts.to_rfc3339().as_str()
            ),
            ("S00000", "S00001", "2020-03-31T14:31:00+00:00")
        );
        assert!(a
            .iter()
            .all(|b| b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close)));
        let c: Vec<_> = generate(8, 3, 2, end).unwrap().collect();
        assert_ne!(a, c);
    }
}
