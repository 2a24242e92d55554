//! One stream batch → one transaction: the bars, their flags, the batch's rejects, the
//! change-log spans and the consumer's offset. The caller acknowledges the messages only
//! after [`write_batch`] returns, so a crash at any point leaves either nothing (the
//! messages are redelivered) or everything (redelivery rewrites the same rows).
//!
//! The bars go in by one binary `COPY` straight into `intraday_bars`: new bars are the
//! common case, and a plain `COPY` is one index insertion per row where an upsert is a
//! conflict probe, a speculative insertion and, before, a staging table to read from.
//! When the `COPY` meets a stored key (a redelivery after a crash, a correction, a
//! second process that took over) the key's `unique_violation` rolls the whole
//! transaction back — the `COPY` is its first statement, so nothing else is lost — and
//! the batch is written again with an upsert from arrays of the batch: the stored row
//! is replaced unless it was written by a later stream sequence. Either way the
//! change-log spans come from the batch in memory, one per symbol.

use std::collections::BTreeMap;
use std::io::Write;

use chrono::{DateTime, Utc};
use diesel::connection::SimpleConnection;
use diesel::pg::CopyFormat;
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DbError};
use diesel::sql_types::{Array, BigInt, Float8, Nullable, Text, Timestamptz};

use super::payload::{Bar, Flag};
use crate::db::changelog::{self, Source, Span};
use crate::db::copy;

diesel::table! {
    /// Only what the `COPY` needs: the stream migration creates the table, and
    /// `db::schema` (what the other modules query) does not list it.
    intraday_bars (symbol, ts) {
        symbol -> Text,
        ts -> Timestamptz,
        open -> Nullable<Float8>,
        high -> Nullable<Float8>,
        low -> Nullable<Float8>,
        close -> Float8,
        volume -> Nullable<Int8>,
        seq -> Int8,
    }
}

/// A decoded message.
#[derive(Debug, Clone)]
pub struct Good {
    pub seq: u64,
    pub bar: Bar,
    pub flags: Vec<Flag>,
}

/// A message that cannot be stored.
#[derive(Debug, Clone)]
pub struct Poison {
    pub seq: u64,
    pub subject: String,
    pub reason: String,
    pub payload: String,
}

/// Everything one transaction writes.
#[derive(Debug, Default)]
pub struct Batch {
    pub good: Vec<Good>,
    pub poison: Vec<Poison>,
}

/// How a batch's bars reached `intraday_bars`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Path {
    /// One plain `COPY`: none of the keys was stored.
    #[default]
    Copy,
    /// The `COPY` met a stored key; the batch was written again as an upsert.
    Upsert,
}

/// What a batch wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Written {
    /// Distinct (symbol, ts) keys in the batch.
    pub bars: usize,
    /// Rows inserted or updated (a redelivered message older than the stored row's
    /// writer changes nothing).
    pub changed: usize,
    pub rejected: usize,
    pub flagged: usize,
    pub path: Path,
}

/// Settings of the stream connection (once per connection).
pub fn prepare(conn: &mut PgConnection) -> QueryResult<()> {
    // An acknowledged message must survive a crash of the server too.
    conn.batch_execute("SET synchronous_commit = on")
}

/// Why an attempt at a batch's transaction failed.
enum Failed {
    /// The `COPY` met a stored key: write the batch again as an upsert.
    Conflict,
    Db(DbError),
}

impl From<DbError> for Failed {
    fn from(e: DbError) -> Self {
        Failed::Db(e)
    }
}

/// Write `batch` in one transaction; see the module docs.
pub fn write_batch(
    conn: &mut PgConnection,
    consumer: &str,
    stream: &str,
    batch: &Batch,
) -> QueryResult<Written> {
    // The same key twice in a batch (a correction right behind the bar): the later
    // message wins, as it would across batches. Sorted by key, so two processes
    // writing overlapping batches take the rows' locks in the same order.
    let mut latest: BTreeMap<(&str, DateTime<Utc>), &Good> = BTreeMap::new();
    for g in &batch.good {
        let key = (g.bar.symbol.as_str(), g.bar.ts);
        if latest.get(&key).is_none_or(|old| old.seq < g.seq) {
            latest.insert(key, g);
        }
    }
    let rows: Vec<&Good> = latest.into_values().collect();
    let attempt =
        |conn: &mut PgConnection, path| attempt(conn, consumer, stream, batch, &rows, path);
    match attempt(conn, Path::Copy) {
        Ok(written) => Ok(written),
        Err(Failed::Conflict) => match attempt(conn, Path::Upsert) {
            Ok(written) => Ok(written),
            Err(Failed::Db(e)) => Err(e),
            Err(Failed::Conflict) => unreachable!("only the COPY path reports a conflict"),
        },
        Err(Failed::Db(e)) => Err(e),
    }
}

/// One transaction writing the batch's bars by `path`, and everything else.
fn attempt(
    conn: &mut PgConnection,
    consumer: &str,
    stream: &str,
    batch: &Batch,
    rows: &[&Good],
    path: Path,
) -> Result<Written, Failed> {
    let max_seq = batch
        .good
        .iter()
        .map(|g| g.seq)
        .chain(batch.poison.iter().map(|p| p.seq))
        .max()
        .unwrap_or(0);
    conn.transaction(|conn| {
        let mut written = Written {
            bars: rows.len(),
            rejected: batch.poison.len(),
            path,
            ..Written::default()
        };
        if !rows.is_empty() {
            written.changed = match path {
                // First in the transaction: a conflict rolls back nothing else.
                Path::Copy => copy_rows(conn, rows).map_err(|e| match e {
                    DbError::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                        Failed::Conflict
                    }
                    e => Failed::Db(e),
                })?,
                Path::Upsert => upsert_rows(conn, rows)?,
            };
            crate::crashpoint::reached("stream.after_copy");
            written.flagged = write_flags(conn, rows)?;
            changelog::record(conn, Source::IntradayBars, &spans(rows))?;
        }
        if !batch.poison.is_empty() {
            write_rejects(conn, stream, &batch.poison)?;
        }
        diesel::sql_query(
            "INSERT INTO stream_offsets (consumer, stream, last_seq, messages) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (consumer, stream) DO UPDATE SET \
             last_seq = greatest(stream_offsets.last_seq, EXCLUDED.last_seq), \
             messages = stream_offsets.messages + EXCLUDED.messages, updated_at = now()",
        )
        .bind::<Text, _>(consumer)
        .bind::<Text, _>(stream)
        .bind::<BigInt, _>(i64::try_from(max_seq).unwrap_or(i64::MAX))
        .bind::<BigInt, _>((batch.good.len() + batch.poison.len()) as i64)
        .execute(conn)?;
        Ok(written)
    })
}

/// The fallback: insert the batch's bars, replacing a stored row unless a later stream
/// sequence wrote it (a redelivered old message must not undo a correction). Returns
/// the rows inserted or replaced.
fn upsert_rows(conn: &mut PgConnection, rows: &[&Good]) -> QueryResult<usize> {
    let symbols: Vec<&str> = rows.iter().map(|g| g.bar.symbol.as_str()).collect();
    let ts: Vec<DateTime<Utc>> = rows.iter().map(|g| g.bar.ts).collect();
    let opens: Vec<Option<f64>> = rows.iter().map(|g| g.bar.open).collect();
    let highs: Vec<Option<f64>> = rows.iter().map(|g| g.bar.high).collect();
    let lows: Vec<Option<f64>> = rows.iter().map(|g| g.bar.low).collect();
    let closes: Vec<f64> = rows.iter().map(|g| g.bar.close).collect();
    let volumes: Vec<Option<i64>> = rows.iter().map(|g| g.bar.volume).collect();
    let seqs: Vec<i64> = rows.iter().map(|g| g.seq as i64).collect();
    diesel::sql_query(
        "INSERT INTO intraday_bars (symbol, ts, open, high, low, close, volume, seq) \
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], \
         $5::float8[], $6::float8[], $7::int8[], $8::int8[]) \
         ON CONFLICT (symbol, ts) DO UPDATE SET open = EXCLUDED.open, high = EXCLUDED.high, \
         low = EXCLUDED.low, close = EXCLUDED.close, volume = EXCLUDED.volume, seq = EXCLUDED.seq \
         WHERE intraday_bars.seq <= EXCLUDED.seq",
    )
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Timestamptz>, _>(&ts)
    .bind::<Array<Nullable<Float8>>, _>(&opens)
    .bind::<Array<Nullable<Float8>>, _>(&highs)
    .bind::<Array<Nullable<Float8>>, _>(&lows)
    .bind::<Array<Float8>, _>(&closes)
    .bind::<Array<Nullable<BigInt>>, _>(&volumes)
    .bind::<Array<BigInt>, _>(&seqs)
    .execute(conn)
}

/// Per symbol, the first and last bar time of the batch.
fn spans(rows: &[&Good]) -> Vec<Span> {
    let mut by_symbol: BTreeMap<&str, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for g in rows {
        let e = by_symbol
            .entry(g.bar.symbol.as_str())
            .or_insert((g.bar.ts, g.bar.ts));
        e.0 = e.0.min(g.bar.ts);
        e.1 = e.1.max(g.bar.ts);
    }
    by_symbol
        .into_iter()
        .map(|(symbol, (first, last))| Span {
            symbol: symbol.to_owned(),
            first,
            last,
        })
        .collect()
}

fn write_flags(conn: &mut PgConnection, rows: &[&Good]) -> QueryResult<usize> {
    let flagged: Vec<(&Good, &Flag)> = rows
        .iter()
        .flat_map(|g| g.flags.iter().map(move |f| (*g, f)))
        .collect();
    if flagged.is_empty() {
        return Ok(0);
    }
    let symbols: Vec<&str> = flagged.iter().map(|(g, _)| g.bar.symbol.as_str()).collect();
    let ts: Vec<DateTime<Utc>> = flagged.iter().map(|(g, _)| g.bar.ts).collect();
    let rules: Vec<&str> = flagged.iter().map(|(_, f)| f.rule.name()).collect();
    let details: Vec<&str> = flagged.iter().map(|(_, f)| f.detail.as_str()).collect();
    diesel::sql_query(
        "INSERT INTO intraday_quality (symbol, ts, rule, detail) \
         SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[]) \
         ON CONFLICT (symbol, ts, rule) DO UPDATE SET detail = EXCLUDED.detail",
    )
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Timestamptz>, _>(&ts)
    .bind::<Array<Text>, _>(&rules)
    .bind::<Array<Text>, _>(&details)
    .execute(conn)?;
    Ok(flagged.len())
}

fn write_rejects(conn: &mut PgConnection, stream: &str, poison: &[Poison]) -> QueryResult<()> {
    let seqs: Vec<i64> = poison.iter().map(|p| p.seq as i64).collect();
    let subjects: Vec<&str> = poison.iter().map(|p| p.subject.as_str()).collect();
    let reasons: Vec<&str> = poison.iter().map(|p| p.reason.as_str()).collect();
    let payloads: Vec<&str> = poison.iter().map(|p| p.payload.as_str()).collect();
    diesel::sql_query(
        "INSERT INTO stream_rejects (stream, seq, subject, reason, payload) \
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[]) \
         ON CONFLICT (stream, seq) DO NOTHING",
    )
    .bind::<Text, _>(stream)
    .bind::<Array<BigInt>, _>(&seqs)
    .bind::<Array<Text>, _>(&subjects)
    .bind::<Array<Text>, _>(&reasons)
    .bind::<Array<Text>, _>(&payloads)
    .execute(conn)?;
    Ok(())
}

fn copy_rows(conn: &mut PgConnection, rows: &[&Good]) -> QueryResult<usize> {
    diesel::copy_from(intraday_bars::table)
        .from_raw_data(intraday_bars::table, |out: &mut dyn Write| {
            let mut buf = Vec::with_capacity(64 * rows.len() + 32);
            copy::header(&mut buf);
            for g in rows {
                let b = &g.bar;
                copy::row(&mut buf, 8);
                copy::text(&mut buf, b.symbol.as_bytes());
                copy::timestamptz(&mut buf, b.ts);
                for v in [b.open, b.high, b.low, Some(b.close)] {
                    copy::float8(&mut buf, v);
                }
                copy::int8(&mut buf, b.volume);
                copy::int8(&mut buf, Some(g.seq as i64));
            }
            copy::trailer(&mut buf);
            out.write_all(&buf).map_err(copy::write_error)
        })
        .with_format(CopyFormat::Binary)
        .execute(conn)
}
