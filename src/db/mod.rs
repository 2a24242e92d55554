//! Everything that talks to PostgreSQL outside the analyses: the connection pool,
//! migrations, what the server can do ([`Capabilities`]), storage layout (hypertables),
//! the run lock and the `runs` table.

pub mod capabilities;
pub mod changelog;
pub mod copy;
pub mod lock;
pub mod migrate;
pub mod pool;
pub mod quote;
pub mod runs;
#[rustfmt::skip]
pub mod schema;
pub mod storage;
pub mod timeouts;
pub mod url;
pub mod workers;

pub use capabilities::{Capabilities, Timescale};
pub use pool::{Pool, PooledConn};

/// Attach a database error to what was being done.
pub fn db_error(
    context: impl Into<String>,
) -> impl FnOnce(diesel::result::Error) -> crate::error::Error {
    let context = context.into();
    move |source| crate::error::Error::Runtime {
        context,
        source: Box::new(source),
    }
}

/// Every symbol of `daily_prices`, as a query to use as a subquery: the primary key
/// `(symbol, day)` walked from one symbol to the next, an index probe per symbol instead
/// of a read of every row (PostgreSQL has no skip scan before 18). The templates have
/// the same walk as `macros/market.sql`'s `every_symbol`.
pub const EVERY_SYMBOL: &str = "WITH RECURSIVE walk AS ( \
        SELECT min(symbol) AS symbol FROM daily_prices \
        UNION ALL \
        SELECT (SELECT min(d.symbol) FROM daily_prices d WHERE d.symbol > w.symbol) \
        FROM walk w WHERE w.symbol IS NOT NULL) \
    SELECT symbol FROM walk WHERE symbol IS NOT NULL";

/// `SET LOCAL name TO value` for each pair: planner settings for the rest of the
/// transaction (`DEFAULT` puts one back).
pub fn set_local(
    conn: &mut diesel::PgConnection,
    settings: &[(&str, &str)],
) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    for (name, value) in settings {
        diesel::sql_query(format!("SET LOCAL {name} TO {value}")).execute(conn)?;
    }
    Ok(())
}
