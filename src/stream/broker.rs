//! The JetStream side of a feed: connect, make sure the stream and the durable pull
//! consumer exist, and read the consumer's state. Scale-out is the broker's own: every
//! `runner stream` process of a feed pulls from the same durable consumer, and the
//! server hands each message to one of them.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};

use crate::error::{Error, Result};
use crate::job::feed::Feed;

/// How long JetStream remembers a `Nats-Msg-Id` to drop a re-published message.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

pub fn nats_error(
    what: impl Into<String>,
) -> impl FnOnce(Box<dyn std::error::Error + Send + Sync>) -> Error {
    let what = what.into();
    move |e| Error::Runtime {
        context: what,
        source: e,
    }
}

/// Connect to the feed's server.
pub async fn connect(feed: &Feed) -> Result<(async_nats::Client, jetstream::Context)> {
    let client = async_nats::ConnectOptions::new()
        .name(format!("runner {}", feed.name))
        .connect(&feed.url)
        .await
        .map_err(|e| nats_error(format!("connecting to NATS at {}", feed.url))(Box::new(e)))?;
    let js = jetstream::new(client.clone());
    Ok((client, js))
}

/// The feed's stream, created with its subjects when missing.
pub async fn ensure_stream(js: &jetstream::Context, feed: &Feed) -> Result<stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: feed.stream.clone(),
        subjects: feed.subjects.clone(),
        duplicate_window: DUPLICATE_WINDOW,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| nats_error(format!("creating the JetStream stream {}", feed.stream))(Box::new(e)))
}

/// The consumer's messages as `runner stream` pulls them: up to `batch_size` per pull
/// request, with heartbeats, so a batch can be cut from one request.
pub async fn pull_messages(
    consumer: &jetstream::consumer::PullConsumer,
    feed: &Feed,
) -> Result<pull::Stream> {
    consumer
        .stream()
        .max_messages_per_batch(feed.batch_size)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| nats_error("pulling messages")(Box::new(e)))
}

/// The feed's durable pull consumer: explicit acks, redelivery after `ack_wait`.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    feed: &Feed,
) -> Result<jetstream::consumer::PullConsumer> {
    stream
        .get_or_create_consumer(
            &feed.consumer,
            pull::Config {
                durable_name: Some(feed.consumer.clone()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: feed.ack_wait,
                max_ack_pending: feed.max_ack_pending,
                deliver_policy: jetstream::consumer::DeliverPolicy::All,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| {
            nats_error(format!(
                "creating the consumer {} on {}",
                feed.consumer, feed.stream
            ))(Box::new(e))
        })
}

/// Consumer state, as `runner stream --status` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ConsumerState {
    pub stream_messages: u64,
    pub stream_last_seq: u64,
    /// Messages not yet delivered to any process (the lag).
    pub num_pending: u64,
    /// Delivered and not yet acknowledged.
    pub num_ack_pending: usize,
    pub num_redelivered: usize,
    /// Pull requests waiting (about one per running process).
    pub num_waiting: usize,
    pub ack_floor_seq: u64,
    pub delivered_seq: u64,
}

pub async fn state(js: &jetstream::Context, feed: &Feed) -> Result<Option<ConsumerState>> {
    let mut stream = match js.get_stream(&feed.stream).await {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                jetstream::context::GetStreamErrorKind::JetStream(_)
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(nats_error("reading the stream")(Box::new(e))),
    };
    let info = stream
        .info()
        .await
        .map_err(|e| nats_error("reading the stream")(Box::new(e)))?;
    let (messages, last_seq) = (info.state.messages, info.state.last_sequence);
    let mut consumer: jetstream::consumer::PullConsumer =
        match stream.get_consumer(&feed.consumer).await {
            Ok(c) => c,
            Err(_) => return Ok(None),
        };
    let c = consumer
        .info()
        .await
        .map_err(|e| nats_error("reading the consumer")(Box::new(e)))?;
    Ok(Some(ConsumerState {
        stream_messages: messages,
        stream_last_seq: last_seq,
        num_pending: c.num_pending,
        num_ack_pending: c.num_ack_pending,
        num_redelivered: c.num_redelivered,
        num_waiting: c.num_waiting,
        ack_floor_seq: c.ack_floor.stream_sequence,
        delivered_seq: c.delivered.stream_sequence,
    }))
}
