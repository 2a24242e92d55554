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
