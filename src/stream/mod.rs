//! Real-time intraday bars from NATS JetStream (`[[feed]]` in a job file).
//!
//! `consumer` runs a durable pull consumer: it batches messages by size or time,
//! decodes them (`payload`) with the ingest rules, writes each batch in one transaction
//! (`write`), acknowledges after the commit, and keeps the rollups current (`storage`).
//! `replay` is the feed simulator; `broker` talks to JetStream; `status` reports.
//! Everything async stays inside these modules: the commands build their own runtime.

pub mod broker;
pub mod consumer;
pub mod payload;
pub mod replay;
pub mod status;
pub mod storage;
pub mod write;

/// Failures of the stream commands outside the broker and the database.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("cannot start the async runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// A blocking task (`what`: "the batch writer", "the rollup refresh") panicked.
    #[error("{what} panicked: {source}")]
    Panicked {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
    #[error("cannot watch {signal}: {source}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("no trading days before the start of time")]
    NoTradingDays,
    #[error("reading {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
