//! The broker's own ceiling for `scripts/bench-stream`: what `runner stream` would reach
//! on this machine if writing a batch cost nothing.
//!
//!     cargo run --release --example stream_ceiling -- JOB --messages N [--decode]
//!
//! It pulls the job's feed exactly as `runner stream` does (the same stream and durable
//! consumer settings, the same pull size, batches cut by `batch_size` or
//! `max_batch_delay`), acknowledges every batch at once instead of writing it, and exits
//! after `N` acknowledgements with a JSON line: messages, seconds from the first message
//! to the last ack, messages per second. `--decode` also decodes each message with the
//! feed's rules (runner's own CPU per message, still no database).

use std::process::ExitCode;
use std::time::Instant;

use futures_util::StreamExt;
use runner::job::feed::Feed;
use runner::stream::broker::{self, nats_error};
use runner::stream::payload::Decoder;

struct Args {
    job: std::path::PathBuf,
    messages: u64,
    decode: bool,
}

fn args() -> Result<Args, String> {
    let usage = "usage: stream_ceiling JOB --messages N [--decode]";
    let mut job = None;
    let mut messages = None;
    let mut decode = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--messages" => {
                let n = it.next().ok_or(usage)?;
                messages = Some(
                    n.parse()
                        .map_err(|_| format!("--messages: `{n}` is not a count"))?,
                );
            }
            "--decode" => decode = true,
            _ if job.is_none() && !a.starts_with('-') => job = Some(a.into()),
            _ => return Err(format!("unexpected `{a}`; {usage}")),
        }
    }
    Ok(Args {
        job: job.ok_or(usage)?,
        messages: messages.ok_or(usage)?,
        decode,
    })
}

fn main() -> ExitCode {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let outcome = runner::cmd::load_job_file(&args.job, &[])
        .and_then(|job| runner::cmd::stream::pick_feed(&job, None))
        .and_then(|feed| {
            // The runtime `runner stream` builds.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(runner::stream::StreamError::Runtime)?;
            runtime.block_on(consume(&feed, args.messages, args.decode))
        });
    match outcome {
        Ok((n, secs)) => {
            println!(
                "{{\"messages\":{n},\"seconds\":{secs:.3},\"messages_per_s\":{:.0}}}",
                n as f64 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn consume(feed: &Feed, want: u64, decode: bool) -> runner::error::Result<(u64, f64)> {
    let (client, js) = broker::connect(feed).await?;
    let stream = broker::ensure_stream(&js, feed).await?;
    let consumer = broker::ensure_consumer(&stream, feed).await?;
    let mut messages = broker::pull_messages(&consumer, feed).await?;
    let decoder = Decoder::for_feed(feed);
    let mut acked = 0;
    let mut started = None;
    let mut batch = Vec::with_capacity(feed.batch_size);
    while acked < want {
        let Some(first) = messages.next().await else {
            break;
        };
        batch.push(first.map_err(|e| nats_error("pulling messages")(Box::new(e)))?);
        started.get_or_insert_with(Instant::now);
        let deadline = tokio::time::Instant::now() + feed.max_batch_delay;
        while batch.len() < feed.batch_size {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(Some(Ok(m))) => batch.push(m),
                Ok(Some(Err(e))) => return Err(nats_error("pulling messages")(Box::new(e))),
                Ok(None) | Err(_) => break,
            }
        }
        for m in batch.drain(..) {
            if decode {
                // Rejected or not, it is acknowledged: only the work is measured.
                let _ = std::hint::black_box(decoder.decode(m.subject.as_str(), &m.payload));
            }
            m.ack()
                .await
                .map_err(|e| nats_error("acknowledging a message")(e))?;
            acked += 1;
        }
    }
    client
        .flush()
        .await
        .map_err(|e| nats_error("flushing acknowledgements")(Box::new(e)))?;
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok((acked, secs))
}
