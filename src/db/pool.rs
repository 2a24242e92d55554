//! The r2d2 pool of diesel connections, and creating the job's database when it does
//! not exist yet (so the first `runner run` on a fresh server just works).

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, ManageConnection};

use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::{quote, timeouts, url, workers};
use crate::error::Result;

pub type Pool = diesel::r2d2::Pool<Manager>;
pub type PooledConn = diesel::r2d2::PooledConnection<Manager>;

/// diesel's connection manager, plus the connect timeout in the URL libpq reads and the
/// bookkeeping that lets `main` wait for the pool's threads (see [`workers`]).
#[derive(Debug)]
pub struct Manager {
    inner: ConnectionManager<PgConnection>,
}

impl ManageConnection for Manager {
    type Connection = PgConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> std::result::Result<PgConnection, Self::Error> {
        workers::register_current_thread();
        self.inner.connect()
    }

    fn is_valid(&self, conn: &mut PgConnection) -> std::result::Result<(), Self::Error> {
        self.inner.is_valid(conn)
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        self.inner.has_broken(conn)
    }
}

/// Why runner has no connection. Every URL in these messages is password-redacted.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The server refused or could not be reached (the reason is libpq's).
    #[error("cannot connect to {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The server did not answer within the connect timeout (it may accept TCP
    /// connections and never speak).
    #[error(
        "cannot connect to {url}: no answer within {seconds} s (the connect timeout; set `connect_timeout` in the job or pass --connect-timeout SECONDS)"
    )]
    Timeout { url: String, seconds: u64 },
    /// The pool had no connection to give within its timeout.
    #[error("no database connection: {0}")]
    PoolExhausted(#[source] diesel::r2d2::PoolError),
    #[error("cannot read the URL {url}")]
    BadUrl { url: String },
    /// libpq would read part of the password as host, path or query.
    #[error(
        "the password in the database URL {url} holds an unencoded `@`, `/`, `?` or `#`, which libpq would read as part of the host or path; percent-encode them (%40, %2F, %3F, %23)"
    )]
    PasswordNeedsEncoding { url: String },
    #[error("cannot create database `{name}`: {source}")]
    CreateDatabase {
        name: String,
        #[source]
        source: DieselError,
    },
}

impl ConnectError {
    fn unreachable(database_url: &str, reason: impl std::fmt::Display) -> Self {
        let reason = reason.to_string();
        // libpq says "timeout expired" when `connect_timeout` ran out.
        if reason.contains("timeout expired") {
            return ConnectError::Timeout {
                url: url::redact(database_url),
                seconds: timeouts::connect_timeout().as_secs(),
            };
        }
        ConnectError::Unreachable {
            url: url::redact(database_url),
            reason: url::scrub(reason.to_string().trim(), database_url),
        }
    }
}

/// Session settings every runner connection gets. `standard_conforming_strings` is what
/// makes [`quote::literal`] sufficient; UTC keeps `timestamptz` output stable.
const SESSION_SETUP: &str = "SET standard_conforming_strings = on; \
     SET TIME ZONE 'UTC'; \
     SET application_name = 'runner'; \
     SET client_min_messages = warning;";

#[derive(Debug)]
struct SessionSetup;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for SessionSetup {
    fn on_acquire(&self, conn: &mut PgConnection) -> std::result::Result<(), diesel::r2d2::Error> {
        conn.batch_execute(SESSION_SETUP)
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pool of up to `size` connections to `database_url` (which must exist: see
/// [`ensure_database`]).
///
/// # Errors
/// [`ConnectError::Unreachable`] when the server cannot be reached.
pub fn connect(database_url: &str, size: u32) -> Result<Pool> {
    refuse_misread_password(database_url)?;
    let manager = Manager {
        inner: ConnectionManager::new(timeouts::with_connect_timeout(database_url)),
    };
    // Long enough for libpq's own connect timeout to be the one that fires (its error
    // says why); a checkout waits this long for a busy pool too.
    let wait = Duration::from_secs(30).max(timeouts::connect_timeout() + Duration::from_secs(5));
    diesel::r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(wait)
        .test_on_check_out(true)
        .thread_pool(workers::thread_pool(3))
        .connection_customizer(Box::new(SessionSetup))
        .build(manager)
        .map_err(|e| ConnectError::unreachable(database_url, e).into())
}

fn refuse_misread_password(database_url: &str) -> std::result::Result<(), ConnectError> {
    if url::password_needs_encoding(database_url) {
        return Err(ConnectError::PasswordNeedsEncoding {
            url: url::redact(database_url),
        });
    }
    Ok(())
}

/// `PgConnection::establish` with the connect timeout in force.
fn establish(database_url: &str) -> std::result::Result<PgConnection, ConnectError> {
    refuse_misread_password(database_url)?;
    PgConnection::establish(&timeouts::with_connect_timeout(database_url))
        .map_err(|e| ConnectError::unreachable(database_url, e))
}

/// A connection from `pool`, with the error runner reports when none can be had.
pub fn checkout(pool: &Pool) -> Result<PooledConn> {
    pool.get()
        .map_err(|e| ConnectError::PoolExhausted(e).into())
}

/// One connection outside the pool (for the run lock and for `doctor`).
pub fn connect_one(database_url: &str) -> Result<PgConnection> {
    let mut conn = establish(database_url)?;
    conn.batch_execute(SESSION_SETUP)
        .map_err(super::db_error("setting up the session"))?;
    Ok(conn)
}

fn database_exists(conn: &mut PgConnection, name: &str) -> bool {
    #[derive(diesel::QueryableByName)]
    struct Found {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT count(*) AS n FROM pg_database WHERE datname = $1")
        .bind::<diesel::sql_types::Text, _>(name)
        .get_result::<Found>(conn)
        .is_ok_and(|f| f.n > 0)
}

/// Create the database named in `database_url` unless it exists.
///
/// libpq's connection errors carry no SQLSTATE, so whether the database is missing is
/// asked of the catalog (through the server's `postgres` database) rather than read
/// from the error's text. When that cannot be asked, or the database is there, the
/// first connection error is the answer.
pub fn ensure_database(database_url: &str) -> Result<()> {
    let started = Instant::now();
    let refused = match establish(database_url) {
        Ok(_) => return Ok(()),
        Err(e @ ConnectError::Timeout { .. }) => return Err(e.into()),
        Err(e) => e,
    };
    // A server that took the whole timeout to refuse will not answer the maintenance
    // database sooner: do not wait twice.
    if started.elapsed() >= timeouts::connect_timeout() {
        return Err(refused.into());
    }
    let Some(name) = url::database_name(database_url) else {
        return Ok(());
    };
    let maintenance =
        url::with_database(database_url, "postgres").ok_or_else(|| ConnectError::BadUrl {
            url: url::redact(database_url),
        })?;
    let Ok(mut conn) = establish(&maintenance) else {
        return Err(refused.into());
    };
    if database_exists(&mut conn, &name) {
        // It exists now: either the refusal had another cause, or a concurrent run
        // created it between our attempt and this check. A second attempt tells which.
        return match PgConnection::establish(database_url) {
            Ok(_) => Ok(()),
            Err(_) => Err(refused.into()),
        };
    }
    tracing::info!(database = %name, "creating database");
    match conn.batch_execute(&format!("CREATE DATABASE {}", quote::ident(&name))) {
        Ok(()) => Ok(()),
        // Another process created it at the same moment: what we wanted exists. Both
        // inserting at once gives 23505 on pg_database's unique index; one seeing the
        // other's committed row gives 42P04 duplicate_database, which diesel does not
        // name, so the catalog confirms it.
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info))
            if info.constraint_name() == Some("pg_database_datname_index") =>
        {
            tracing::info!(database = %name, "created by a concurrent run");
            Ok(())
        }
        Err(_) if database_exists(&mut conn, &name) => {
            tracing::info!(database = %name, "created by a concurrent run");
            Ok(())
        }
        Err(source) => Err(ConnectError::CreateDatabase { name, source }.into()),
    }
}
