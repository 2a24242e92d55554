//! Analyses runner computes itself (`native = "indicators"` on an analysis), for the
//! work SQL does slowly: a template's recursive smoothing runs as a PL/pgSQL aggregate
//! called once per row and indicator, and its rolling windows over `numeric`, so the
//! indicators of 23 M rows took the server 12 minutes on one core. runner reads each
//! symbol's prices, computes the same values in Rust (over both cores) and writes them
//! by binary `COPY`: on a first build into the new table itself, otherwise into the
//! stage `materialize` writes from, so everything after — the table swapped in or
//! appended to, the change log, the one transaction — is the template's path.
//!
//! The template stays the definition: `runner render` prints it, `runner check` plans
//! it, its columns must be the native ones (or the analysis fails, saying so), and the
//! tests check that both give the same rows.

pub mod indicators;

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Date, Float8, Integer, Nullable, Text};
use rayon::prelude::*;

use self::indicators::{Bar, Row, Seed};
use super::execute::Failure;
use crate::db::copy;
use crate::db::{Pool, PooledConn, EVERY_SYMBOL};
use crate::table::Column;

/// The analyses runner can compute natively, by the name `native` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Native {
    /// templates/market/indicators.sql: daily indicators of every symbol.
    Indicators,
}

impl Native {
    pub const NAMES: &'static [&'static str] = &["indicators"];

    pub fn from_name(name: &str) -> Option<Native> {
        match name {
            "indicators" => Some(Native::Indicators),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Native::Indicators => "indicators",
        }
    }

    /// The `time_column` and `unique_key` its rows have.
    pub fn key(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Native::Indicators => ("day", &["symbol", "day"]),
        }
    }

    /// The result's columns, as `format_type()` names their types.
    pub fn columns(self) -> Vec<Column> {
        match self {
            Native::Indicators => INDICATOR_COLUMNS
                .iter()
                .map(|&(name, sql_type)| Column {
                    name: name.to_owned(),
                    sql_type: sql_type.to_owned(),
                })
                .collect(),
        }
    }
}

const FLOAT8: &str = "double precision";
const INDICATOR_COLUMNS: [(&str, &str); 23] = [
    ("symbol", "text"),
    ("day", "date"),
    ("seq", "integer"),
    ("close", FLOAT8),
    ("simple_return", FLOAT8),
    ("log_return", FLOAT8),
    ("sma20", FLOAT8),
    ("sma50", FLOAT8),
    ("sma200", FLOAT8),
    ("ema12", FLOAT8),
    ("ema26", FLOAT8),
    ("macd", FLOAT8),
    ("macd_signal", FLOAT8),
    ("macd_hist", FLOAT8),
    ("rsi_avg_gain", FLOAT8),
    ("rsi_avg_loss", FLOAT8),
    ("rsi14", FLOAT8),
    ("bb_middle", FLOAT8),
    ("bb_upper", FLOAT8),
    ("bb_lower", FLOAT8),
    ("tr", FLOAT8),
    ("atr14", FLOAT8),
    ("vol20", FLOAT8),
];

/// The indicators' columns as a diesel table, for diesel's COPY into `$schema.$name`.
macro_rules! indicator_table {
    ($schema:ident . $name:ident) => {
        diesel::table! {
            $schema.$name (symbol, day) {
                symbol -> Text,
                day -> Date,
                seq -> Integer,
                close -> Float8,
                simple_return -> Nullable<Float8>,
                log_return -> Nullable<Float8>,
                sma20 -> Nullable<Float8>,
                sma50 -> Nullable<Float8>,
                sma200 -> Nullable<Float8>,
                ema12 -> Nullable<Float8>,
                ema26 -> Nullable<Float8>,
                macd -> Nullable<Float8>,
                macd_signal -> Nullable<Float8>,
                macd_hist -> Nullable<Float8>,
                rsi_avg_gain -> Nullable<Float8>,
                rsi_avg_loss -> Nullable<Float8>,
                rsi14 -> Nullable<Float8>,
                bb_middle -> Nullable<Float8>,
                bb_upper -> Nullable<Float8>,
                bb_lower -> Nullable<Float8>,
                tr -> Nullable<Float8>,
                atr14 -> Nullable<Float8>,
                vol20 -> Nullable<Float8>,
            }
        }
    };
}

// The temporary stage `materialize` creates with the result's columns (checked equal
// to INDICATOR_COLUMNS first), and the table a first build is written into directly
// and then renamed to the analysis's (see [`Stage`]).
indicator_table!(pg_temp.runner_stage);
indicator_table!(analytics.runner_native_build);

/// Where the computed rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// `pg_temp.runner_stage`, which `materialize` then writes into the target.
    Temporary,
    /// [`NEW_TABLE`], created empty in this transaction: a first build's target under
    /// a fixed name (diesel's COPY names its table at compile time), renamed to the
    /// analysis's before the commit. It saves writing 23 M rows twice (measured: the
    /// `INSERT … SELECT` from the stage took 34.8 s of a 102 s build). Two native
    /// analyses building at once wait for each other on the name.
    NewTable,
}

/// The relation [`Stage::NewTable`] writes into.
pub const NEW_TABLE: &str = "analytics.runner_native_build";

/// What a symbol needs: its prices from the first day, or continued from a stored row.
#[derive(Debug)]
struct Work {
    symbol: String,
    seed: Option<Seed>,
    /// Keep only the days after this one (a symbol still warming up, recomputed from
    /// its first day, keeps its stored days).
    emit_after: Option<NaiveDate>,
}

/// Symbols read and computed at a time: ~90 k rows of a full history, 18 MB encoded
/// (with the batches read ahead, runner holds about four), few enough statements for
/// the round trips not to count.
const SYMBOLS_PER_BATCH: usize = 32;

/// Compute the rows of `native` into `into`: every symbol's whole history when
/// `appending_to` is None, else only the days after what that table holds per symbol.
/// When `pool` has connections free (up to [`READERS`]), the prices are read (and the
/// rows computed) there while `conn` writes, in the snapshot of `conn`'s transaction.
/// Returns the rows staged.
pub(crate) fn stage(
    conn: &mut PgConnection,
    pool: Option<&Pool>,
    native: Native,
    appending_to: Option<&str>,
    into: Stage,
) -> Result<u64, Failure> {
    let readers: Vec<PooledConn> = pool.map_or_else(Vec::new, |pool| {
        std::iter::from_fn(|| spare(pool)).take(READERS).collect()
    });
    match native {
        Native::Indicators => stage_indicators(conn, readers, appending_to, into),
    }
}

/// A connection of `pool` that no one waits for: an idle one, or a new one while the
/// pool is below its size (it opens connections only as they are asked for).
fn spare(pool: &Pool) -> Option<PooledConn> {
    let state = pool.state();
    if state.idle_connections == 0 && state.connections >= pool.max_size() {
        return None;
    }
    pool.get_timeout(Duration::from_secs(5)).ok()
}

/// Reading connections at most. A nightly reads the last 200 days of every symbol, a
/// few pages each, scattered over the table: with the pages no longer cached those are
/// random reads, one at a time per connection, so a second reader keeps two in flight
/// (the nightly's indicators step took 4.9 s with two, 5.2–6.4 s with one on a slower
/// machine: not an A/B). A full build is bound by the writer either way.
pub const READERS: usize = 2;

/// Batches computed ahead of the one being written.
const READ_AHEAD: usize = 2;

fn stage_indicators(
    conn: &mut PgConnection,
    readers: Vec<PooledConn>,
    appending_to: Option<&str>,
    into: Stage,
) -> Result<u64, Failure> {
    let work: Vec<Work> = match appending_to {
        None => every_symbol(conn)?
            .into_iter()
            .map(|symbol| Work {
                symbol,
                seed: None,
                emit_after: None,
            })
            .collect(),
        Some(target) => continued(conn, target)?,
    };
    let batches: Vec<&[Work]> = work.chunks(SYMBOLS_PER_BATCH).collect();
    let mut waiting = Duration::ZERO;
    let mut writing = Duration::ZERO;
    let mut staged = 0;
    // Nothing to overlap with one batch or none.
    let readers: Vec<PooledConn> = if batches.len() > 1 {
        readers.into_iter().take(batches.len()).collect()
    } else {
        Vec::new()
    };
    let overlapped = readers.len();
    let mut write = |conn: &mut PgConnection, batch: Encoded| -> Result<(), Failure> {
        let started = Instant::now();
        staged += write_stage(conn, into, batch)?;
        writing += started.elapsed();
        Ok(())
    };
    if readers.is_empty() {
        plan_for_reads(conn)?;
        for batch in &batches {
            let started = Instant::now();
            let encoded = produce(conn, batch)?;
            waiting += started.elapsed();
            write(conn, encoded)?;
        }
    } else {
        // Reader `r` of `k` takes batches r, r + k, r + 2k… into a channel of its own,
        // and the writer takes them round the readers in turn: the batches are written in
        // symbol order, and the readers together hold READ_AHEAD batches ahead (memory:
        // a full history's batch is ~18 MB encoded).
        let snapshot = export_snapshot(conn)?;
        let k = readers.len();
        std::thread::scope(|scope| {
            let mut channels = Vec::with_capacity(k);
            for (r, mut reader) in readers.into_iter().enumerate() {
                let (send, receive) = std::sync::mpsc::sync_channel((READ_AHEAD / k).max(1));
                channels.push(receive);
                let (batches, snapshot) = (&batches, &snapshot);
                scope.spawn(move || {
                    let outcome = reader.transaction(|reader| {
                        set_snapshot(reader, snapshot)?;
                        plan_for_reads(reader)?;
                        for batch in batches.iter().skip(r).step_by(k) {
                            if send.send(Ok(produce(reader, batch)?)).is_err() {
                                break; // the writer stopped
                            }
                        }
                        Ok::<(), Failure>(())
                    });
                    if let Err(e) = outcome {
                        let _ = send.send(Err(e));
                    }
                });
            }
            for i in 0..batches.len() {
                let started = Instant::now();
                let batch = channels[i % k]
                    .recv()
                    .map_err(|_| Failure::Refused("its reading connection stopped".into()))??;
                waiting += started.elapsed();
                write(conn, batch)?;
            }
            Ok::<(), Failure>(())
        })?;
    }
    tracing::debug!(
        symbols = work.len(),
        rows = staged,
        readers = overlapped,
        waiting_for_rows_ms = waiting.as_millis() as u64,
        staging_ms = writing.as_millis() as u64,
        "indicators computed natively"
    );
    Ok(staged)
}

/// A batch's rows in the binary COPY format, ready for the stage.
struct Encoded {
    bytes: Vec<u8>,
    rows: u64,
}

/// Read a batch's prices, compute its rows (its symbols in parallel) and encode them.
fn produce(conn: &mut PgConnection, batch: &[Work]) -> Result<Encoded, Failure> {
    let bars = read_bars(conn, batch)?;
    let computed: Vec<Vec<Row>> = batch
        .par_iter()
        .zip(bars.par_iter())
        .map(|(w, bars)| {
            indicators::compute(bars, w.seed.as_ref(), w.emit_after)
                .map_err(|e| Failure::Refused(format!("symbol {}: {e}", w.symbol)))
        })
        .collect::<Result<_, _>>()?;
    let rows: usize = computed.iter().map(Vec::len).sum();
    let mut bytes = Vec::with_capacity(rows * 200 + 32);
    for (w, rows) in batch.iter().zip(&computed) {
        for row in rows {
            encode(&mut bytes, w.symbol.as_bytes(), row);
        }
    }
    Ok(Encoded {
        bytes,
        rows: rows as u64,
    })
}

#[derive(QueryableByName)]
struct SnapshotRow {
    #[diesel(sql_type = Text)]
    snapshot: String,
}

/// `conn`'s snapshot, for the reading connection to see exactly what it sees.
fn export_snapshot(conn: &mut PgConnection) -> QueryResult<String> {
    Ok(diesel::sql_query("SELECT pg_export_snapshot() AS snapshot")
        .get_result::<SnapshotRow>(conn)?
        .snapshot)
}

fn set_snapshot(reader: &mut PgConnection, snapshot: &str) -> QueryResult<usize> {
    diesel::sql_query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(reader)?;
    diesel::sql_query(format!(
        "SET TRANSACTION SNAPSHOT {}",
        crate::db::quote::literal(snapshot)
    ))
    .execute(reader)
}

/// For the rest of the transaction, the reads of whole symbols run as the index range
/// scans they are: measured per batch of 64 symbols (180 k rows), 145 ms as planned by
/// default — JIT compilation and a bitmap heap scan, because right after a load the
/// statistics guess a few thousand rows — against 34 ms.
fn plan_for_reads(conn: &mut PgConnection) -> QueryResult<()> {
    crate::db::set_local(conn, &[("jit", "off"), ("enable_bitmapscan", "off")])
}

#[derive(QueryableByName)]
struct SymbolRow {
    #[diesel(sql_type = Text)]
    symbol: String,
}

fn every_symbol(conn: &mut PgConnection) -> QueryResult<Vec<String>> {
    Ok(diesel::sql_query(EVERY_SYMBOL)
        .load::<SymbolRow>(conn)?
        .into_iter()
        .map(|r| r.symbol)
        .collect())
}

#[derive(QueryableByName)]
struct StoredRow {
    #[diesel(sql_type = Text)]
    symbol: String,
    #[diesel(sql_type = Nullable<Date>)]
    day: Option<NaiveDate>,
    #[diesel(sql_type = Nullable<Integer>)]
    seq: Option<i32>,
    #[diesel(sql_type = Nullable<Float8>)]
    ema12: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    ema26: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    macd_signal: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    rsi_avg_gain: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    rsi_avg_loss: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    atr14: Option<f64>,
}

/// The symbols with days after their last stored row (or none stored), each with the
/// row to continue from: the template's `stored` step.
fn continued(conn: &mut PgConnection, target: &str) -> QueryResult<Vec<Work>> {
    let rows: Vec<StoredRow> = diesel::sql_query(format!(
        "SELECT i.symbol, last.day, last.seq, last.ema12, last.ema26, last.macd_signal, \
                last.rsi_avg_gain, last.rsi_avg_loss, last.atr14 \
         FROM ({EVERY_SYMBOL}) i \
         LEFT JOIN LATERAL ( \
             SELECT s.day, s.seq, s.ema12, s.ema26, s.macd_signal, s.rsi_avg_gain, \
                    s.rsi_avg_loss, s.atr14 \
             FROM {target} s WHERE s.symbol = i.symbol ORDER BY s.day DESC LIMIT 1) last ON true \
         WHERE last.day IS NULL \
            OR EXISTS (SELECT 1 FROM daily_prices n WHERE n.symbol = i.symbol AND n.day > last.day)"
    ))
    .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            // Only a warmed-up row can be continued from (every average stored); a
            // symbol still warming up is recomputed from its first day, keeping its days.
            let seed = (|| {
                Some(Seed {
                    day: r.day?,
                    seq: r.seq?,
                    ema12: r.ema12?,
                    ema26: r.ema26?,
                    macd_signal: r.macd_signal?,
                    rsi_avg_gain: r.rsi_avg_gain?,
                    rsi_avg_loss: r.rsi_avg_loss?,
                    atr14: r.atr14?,
                })
            })();
            Work {
                symbol: r.symbol,
                seed,
                emit_after: r.day,
            }
        })
        .collect())
}

#[derive(QueryableByName)]
struct BarRow {
    #[diesel(sql_type = BigInt)]
    i: i64,
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Nullable<Float8>)]
    high: Option<f64>,
    #[diesel(sql_type = Nullable<Float8>)]
    low: Option<f64>,
    #[diesel(sql_type = Float8)]
    close: f64,
}

/// Each symbol's bars in day order: from its first day, or the [`indicators::LOOKBACK`]
/// stored days up to its seed and every day after. (`coalesce`, not `seed_day IS NULL
/// OR …`: an `OR` is a filter, not an index condition, and the nightly read every
/// symbol's whole history: 6.1 s for 8,000 symbols.)
fn read_bars(conn: &mut PgConnection, batch: &[Work]) -> QueryResult<Vec<Vec<Bar>>> {
    let symbols: Vec<&str> = batch.iter().map(|w| w.symbol.as_str()).collect();
    let seeds: Vec<Option<NaiveDate>> = batch.iter().map(|w| w.seed.map(|s| s.day)).collect();
    let rows: Vec<BarRow> = diesel::sql_query(format!(
        "SELECT w.i, p.day, p.high, p.low, p.close \
         FROM unnest($1::text[], $2::date[]) WITH ORDINALITY AS w(symbol, seed_day, i) \
         CROSS JOIN LATERAL ( \
             (SELECT d.day, d.high, d.low, d.close FROM daily_prices d \
              WHERE w.seed_day IS NOT NULL AND d.symbol = w.symbol AND d.day <= w.seed_day \
              ORDER BY d.day DESC LIMIT {lookback}) \
             UNION ALL \
             (SELECT d.day, d.high, d.low, d.close FROM daily_prices d \
              WHERE d.symbol = w.symbol AND d.day > coalesce(w.seed_day, '-infinity'::date)) \
         ) p",
        lookback = indicators::LOOKBACK
    ))
    .bind::<Array<Text>, _>(&symbols)
    .bind::<Array<Nullable<Date>>, _>(&seeds)
    .load(conn)?;
    let mut bars: Vec<Vec<Bar>> = vec![Vec::new(); batch.len()];
    for r in rows {
        bars[(r.i - 1) as usize].push(Bar {
            day: r.day,
            high: r.high,
            low: r.low,
            close: r.close,
        });
    }
    for b in &mut bars {
        b.sort_unstable_by_key(|b| b.day);
    }
    Ok(bars)
}

/// Bytes handed to the connection at a time.
const COPY_CHUNK: usize = 256 * 1024;

fn write_stage(conn: &mut PgConnection, stage: Stage, batch: Encoded) -> QueryResult<u64> {
    if batch.rows == 0 {
        return Ok(0);
    }
    let written = match stage {
        Stage::Temporary => diesel::copy_from(runner_stage::table)
            .from_raw_data(runner_stage::table, |out: &mut dyn std::io::Write| {
                write_copy(out, &batch.bytes)
            })
            .with_format(diesel::pg::CopyFormat::Binary)
            .execute(conn)?,
        Stage::NewTable => diesel::copy_from(runner_native_build::table)
            .from_raw_data(
                runner_native_build::table,
                |out: &mut dyn std::io::Write| write_copy(out, &batch.bytes),
            )
            .with_format(diesel::pg::CopyFormat::Binary)
            .execute(conn)?,
    };
    Ok(written as u64)
}

/// The COPY stream: header, the encoded rows, trailer.
fn write_copy(out: &mut dyn std::io::Write, rows: &[u8]) -> QueryResult<()> {
    let mut header = Vec::new();
    copy::header(&mut header);
    out.write_all(&header).map_err(copy::write_error)?;
    for chunk in rows.chunks(COPY_CHUNK) {
        out.write_all(chunk).map_err(copy::write_error)?;
    }
    let mut trailer = Vec::new();
    copy::trailer(&mut trailer);
    out.write_all(&trailer).map_err(copy::write_error)
}

/// One row in INDICATOR_COLUMNS order.
fn encode(buf: &mut Vec<u8>, symbol: &[u8], r: &Row) {
    copy::row(buf, INDICATOR_COLUMNS.len() as i16);
    copy::text(buf, symbol);
    copy::date(buf, r.day);
    copy::int4(buf, r.seq);
    copy::float8(buf, Some(r.close));
    for value in [
        r.simple_return,
        r.log_return,
        r.sma20,
        r.sma50,
        r.sma200,
        r.ema12,
        r.ema26,
        r.macd,
        r.macd_signal,
        r.macd_hist,
        r.rsi_avg_gain,
        r.rsi_avg_loss,
        r.rsi14,
        r.bb_middle,
        r.bb_upper,
        r.bb_lower,
        r.tr,
        r.atr14,
        r.vol20,
    ] {
        copy::float8(buf, value);
    }
}
