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
