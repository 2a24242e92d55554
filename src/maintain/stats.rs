//! Statistics the maintenance report shows, read from the PostgreSQL statistics views
//! (`pg_stat_user_tables`, `pg_stat_user_indexes`, `pg_stat_database`,
//! `pg_stat_statements` when installed) and TimescaleDB's size functions.
//!
//! A hypertable's rows and indexes live in its chunks, so its numbers are summed over
//! its inheritance tree, and its size comes from `hypertable_detailed_size` (which also
//! counts compressed data). Counters are cumulative since the server's statistics were
//! last reset: the report says so rather than pretending they cover one run.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use crate::db::{db_error, Capabilities};
use crate::error::Result;

#[derive(Debug, Clone, serde::Serialize, QueryableByName)]
pub struct TableStat {
    /// As shown (for a continuous aggregate: its view name).
    #[diesel(sql_type = Text)]
    pub name: String,
    /// What to VACUUM for it (a continuous aggregate's materialization hypertable).
    #[diesel(sql_type = Text)]
    pub target: String,
    #[diesel(sql_type = BigInt)]
    pub table_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub index_bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub live: i64,
    #[diesel(sql_type = BigInt)]
    pub dead: i64,
    #[diesel(sql_type = BigInt)]
    pub modified: i64,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_vacuum: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    pub last_analyze: Option<String>,
}

impl TableStat {
    pub fn dead_ratio(&self) -> f64 {
        self.dead as f64 / (self.live + self.dead).max(1) as f64
    }
}

#[derive(Debug, Clone, serde::Serialize, QueryableByName)]
pub struct IndexStat {
    #[diesel(sql_type = Text)]
    pub table_name: String,
    #[diesel(sql_type = Text)]
    pub index_name: String,
    #[diesel(sql_type = BigInt)]
    pub bytes: i64,
    #[diesel(sql_type = BigInt)]
    pub scans: i64,
    /// Backs a primary key, unique or exclusion constraint: needed even if never scanned.
    #[diesel(sql_type = Bool)]
    pub backs_constraint: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize, QueryableByName)]
pub struct HypertableStat {
    #[diesel(sql_type = BigInt)]
    pub chunks: i64,
    #[diesel(sql_type = BigInt)]
    pub compressed_chunks: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub chunk_days: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub total_bytes: Option<i64>,
    /// Of the compressed chunks: their size before and after compression.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub before_compression_bytes: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub after_compression_bytes: Option<i64>,
}

impl HypertableStat {
    pub fn compression_ratio(&self) -> Option<f64> {
        match (self.before_compression_bytes, self.after_compression_bytes) {
            (Some(b), Some(a)) if a > 0 => Some(b as f64 / a as f64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, serde::Serialize, QueryableByName)]
pub struct StatementStat {
    #[diesel(sql_type = Text)]
    pub query: String,
    #[diesel(sql_type = BigInt)]
    pub calls: i64,
    #[diesel(sql_type = Text)]
    pub mean_ms: String,
    #[diesel(sql_type = Text)]
    pub total_ms: String,
}

#[derive(Debug, Clone, Copy, serde::Serialize, QueryableByName)]
pub struct CacheStat {
    #[diesel(sql_type = BigInt)]
    pub blocks_hit: i64,
    #[diesel(sql_type = BigInt)]
    pub blocks_read: i64,
}

impl CacheStat {
    pub fn ratio(self) -> Option<f64> {
        let total = self.blocks_hit + self.blocks_read;
        (total > 0).then(|| self.blocks_hit as f64 / total as f64)
    }
}

/// Everything the report shows, at one moment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    pub tables: Vec<TableStat>,
    pub indexes: Vec<IndexStat>,
    pub hypertable: Option<HypertableStat>,
    pub cache: Option<CacheStat>,
    /// None when `pg_stat_statements` is not available.
    pub statements: Option<Vec<StatementStat>>,
    /// Why something is missing.
    pub notes: Vec<String>,
}

/// Tables of the current schema (each with its inheritance tree: a hypertable's chunks).
const TABLES: &str = "WITH RECURSIVE rel AS ( \
        SELECT c.oid, c.relname::text AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
        WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname NOT LIKE '\\_\\_%' \
    ), tree AS ( \
        SELECT r.name, r.oid FROM rel r \
        UNION ALL SELECT t.name, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.oid \
    ) \
    SELECT t.name, t.name AS target, \
        sum(pg_table_size(t.oid))::bigint AS table_bytes, sum(pg_indexes_size(t.oid))::bigint AS index_bytes, \
        coalesce(sum(s.n_live_tup), 0)::bigint AS live, coalesce(sum(s.n_dead_tup), 0)::bigint AS dead, \
        coalesce(sum(s.n_mod_since_analyze), 0)::bigint AS modified, \
        max(greatest(s.last_vacuum, s.last_autovacuum))::text AS last_vacuum, \
        max(greatest(s.last_analyze, s.last_autoanalyze))::text AS last_analyze \
    FROM tree t LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid \
    GROUP BY t.name ORDER BY t.name";

/// Continuous aggregates, by their materialization hypertables.
const CAGGS: &str = "WITH RECURSIVE rel AS ( \
        SELECT v.view_name::text AS name, format('%I.%I', v.materialization_hypertable_schema, v.materialization_hypertable_name) AS target, \
            format('%I.%I', v.materialization_hypertable_schema, v.materialization_hypertable_name)::regclass::oid AS oid \
        FROM timescaledb_information.continuous_aggregates v WHERE v.view_schema = current_schema() \
    ), tree AS ( \
        SELECT r.name, r.target, r.oid FROM rel r \
        UNION ALL SELECT t.name, t.target, i.inhrelid FROM tree t JOIN pg_inherits i ON i.inhparent = t.oid \
    ) \
    SELECT t.name, t.target, \
        sum(pg_table_size(t.oid))::bigint AS table_bytes, sum(pg_indexes_size(t.oid))::bigint AS index_bytes, \
        coalesce(sum(s.n_live_tup), 0)::bigint AS live, coalesce(sum(s.n_dead_tup), 0)::bigint AS dead, \
        coalesce(sum(s.n_mod_since_analyze), 0)::bigint AS modified, \
        max(greatest(s.last_vacuum, s.last_autovacuum))::text AS last_vacuum, \
        max(greatest(s.last_analyze, s.last_autoanalyze))::text AS last_analyze \
    FROM tree t LEFT JOIN pg_stat_user_tables s ON s.relid = t.oid \
    GROUP BY t.name, t.target ORDER BY t.name";

const INDEXES: &str = "SELECT s.relname::text AS table_name, s.indexrelname::text AS index_name, \
        pg_relation_size(s.indexrelid)::bigint AS bytes, s.idx_scan::bigint AS scans, \
        EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = s.indexrelid) AS backs_constraint \
    FROM pg_stat_user_indexes s WHERE s.schemaname = current_schema() AND s.relname NOT LIKE '\\_\\_%' \
    ORDER BY 1, 2";

/// Scans and sizes of chunk indexes, summed per hypertable index. A chunk inherits from
/// its hypertable and gets one index per hypertable index, named with the parent
/// index's name at the end (`_hyper_1_2_chunk_x_idx`, or `2_daily_prices_pkey` for a
/// constraint); matching on that suffix and the same key columns avoids TimescaleDB's
/// internal catalog, which changes between releases.
const CHUNK_INDEXES: &str = "SELECT p.relname::text AS table_name, pi.relname::text AS index_name, \
        coalesce(sum(pg_relation_size(s.indexrelid)), 0)::bigint AS bytes, coalesce(sum(s.idx_scan), 0)::bigint AS scans, \
        false AS backs_constraint \
    FROM pg_class p \
    JOIN pg_namespace n ON n.oid = p.relnamespace \
    JOIN pg_index px ON px.indrelid = p.oid \
    JOIN pg_class pi ON pi.oid = px.indexrelid \
    JOIN pg_inherits i ON i.inhparent = p.oid \
    JOIN pg_stat_user_indexes s ON s.relid = i.inhrelid AND right(s.indexrelname, length(pi.relname)) = pi.relname \
    JOIN pg_index cx ON cx.indexrelid = s.indexrelid AND cx.indkey::text = px.indkey::text \
    WHERE n.nspname = current_schema() \
    GROUP BY 1, 2";

const HYPERTABLE: &str = "SELECT \
    (SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() AND hypertable_name = 'daily_prices')::bigint AS chunks, \
    (SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = current_schema() AND hypertable_name = 'daily_prices' AND is_compressed)::bigint AS compressed_chunks, \
    (SELECT (extract(epoch FROM time_interval) / 86400)::bigint FROM timescaledb_information.dimensions \
      WHERE hypertable_schema = current_schema() AND hypertable_name = 'daily_prices' AND column_name = 'day') AS chunk_days, \
    (SELECT total_bytes FROM hypertable_detailed_size('daily_prices'))::bigint AS total_bytes, \
    (SELECT before_compression_total_bytes FROM hypertable_compression_stats('daily_prices'))::bigint AS before_compression_bytes, \
    (SELECT after_compression_total_bytes FROM hypertable_compression_stats('daily_prices'))::bigint AS after_compression_bytes";

const CACHE: &str = "SELECT blks_hit::bigint AS blocks_hit, blks_read::bigint AS blocks_read \
    FROM pg_stat_database WHERE datname = current_database()";

const STATEMENTS: &str = "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 200) AS query, calls::bigint AS calls, \
        round(mean_exec_time::numeric, 1)::text AS mean_ms, round(total_exec_time::numeric, 1)::text AS total_ms \
    FROM pg_stat_statements \
    WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
    ORDER BY mean_exec_time DESC LIMIT 10";

/// Read everything the report shows.
pub fn snapshot(conn: &mut PgConnection, caps: &Capabilities) -> Result<Snapshot> {
    let mut notes = Vec::new();
    let mut tables: Vec<TableStat> = diesel::sql_query(TABLES)
        .load(conn)
        .map_err(db_error("reading table statistics"))?;
    let mut indexes: Vec<IndexStat> = diesel::sql_query(INDEXES)
        .load(conn)
        .map_err(db_error("reading index statistics"))?;
    let mut hypertable = None;
    if caps.has_timescale() {
        let caggs: Vec<TableStat> = diesel::sql_query(CAGGS)
            .load(conn)
            .map_err(db_error("reading continuous aggregate statistics"))?;
        tables.extend(caggs);
        let ht: HypertableStat = diesel::sql_query(HYPERTABLE)
            .get_result(conn)
            .map_err(db_error("reading hypertable sizes"))?;
        // The hypertable's own size includes its compressed chunks, which are not
        // part of its inheritance tree.
        if let (Some(total), Some(t)) = (
            ht.total_bytes,
            tables.iter_mut().find(|t| t.name == "daily_prices"),
        ) {
            t.table_bytes = total - t.index_bytes.min(total);
        }
        hypertable = Some(ht);
        match diesel::sql_query(CHUNK_INDEXES).load::<IndexStat>(conn) {
            Ok(chunk_indexes) => {
                for ci in chunk_indexes {
                    if let Some(i) = indexes
                        .iter_mut()
                        .find(|i| i.table_name == ci.table_name && i.index_name == ci.index_name)
                    {
                        i.bytes += ci.bytes;
                        i.scans += ci.scans;
                    }
                }
            }
            Err(e) => notes.push(format!(
                "chunk index statistics unavailable ({e}); hypertable index scans may read 0"
            )),
        }
    }
    let cache = diesel::sql_query(CACHE)
        .get_result::<CacheStat>(conn)
        .optional()
        .map_err(db_error("reading the cache hit ratio"))?;
    let statements = if caps.pg_stat_statements {
        match diesel::sql_query(STATEMENTS).load::<StatementStat>(conn) {
            Ok(s) => Some(s),
            Err(e) => {
                notes.push(format!(
                    "pg_stat_statements is installed but cannot be read: {}",
                    e.to_string().trim()
                ));
                None
            }
        }
    } else {
        notes.push(
            "pg_stat_statements is not installed in this database (CREATE EXTENSION pg_stat_statements, with it in \
             shared_preload_libraries): no slowest statements"
                .to_owned(),
        );
        None
    };
    Ok(Snapshot {
        tables,
        indexes,
        hypertable,
        cache,
        statements,
        notes,
    })
}

/// Tables that changed since their last ANALYZE or hold dead rows, plus those named in
/// `touched`.
pub fn tables_needing_vacuum(snapshot: &Snapshot, touched: &[&str]) -> Vec<String> {
    snapshot
        .tables
        .iter()
        .filter(|t| t.modified > 0 || t.dead > 0 || touched.contains(&t.name.as_str()))
        .map(|t| t.target.clone())
        .collect()
}

/// Indexes never used by a scan, other than those that enforce a constraint.
pub fn unused_indexes(snapshot: &Snapshot) -> Vec<&IndexStat> {
    snapshot
        .indexes
        .iter()
        .filter(|i| i.scans == 0 && !i.backs_constraint)
        .collect()
}
