//! The r2d2 pool of diesel connections, and creating the job's database when it does
//! not exist yet (so the first `runner run` on a fresh server just works).

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection};

use super::{quote, url};
use crate::error::{Error, Result};

pub type Pool = diesel::r2d2::Pool<ConnectionManager<PgConnection>>;
pub type PooledConn = diesel::r2d2::PooledConnection<ConnectionManager<PgConnection>>;

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

/// A pool of up to `size` connections to `database_url`, creating the database first
/// when it is missing.
///
/// # Errors
/// When the server cannot be reached or the database cannot be created; the message
/// carries the URL with its password redacted.
pub fn connect(database_url: &str, size: u32) -> Result<Pool> {
    ensure_database(database_url)?;
    diesel::r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(30))
        .test_on_check_out(true)
        .connection_customizer(Box::new(SessionSetup))
        .build(ConnectionManager::<PgConnection>::new(database_url))
        .map_err(|e| {
            Error::Message(format!(
                "cannot connect to {}: {}",
                url::redact(database_url),
                url::scrub(&e.to_string(), database_url)
            ))
        })
}

/// A connection from `pool`, with the error runner reports when none can be had.
pub fn checkout(pool: &Pool) -> Result<PooledConn> {
    pool.get()
        .map_err(|e| Error::Message(format!("no database connection: {e}")))
}

/// One connection outside the pool (for the run lock and for `doctor`).
pub fn connect_one(database_url: &str) -> Result<PgConnection> {
    let mut conn = PgConnection::establish(database_url).map_err(|e| {
        Error::Message(format!(
            "cannot connect to {}: {}",
            url::redact(database_url),
            url::scrub(e.to_string().trim(), database_url)
        ))
    })?;
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
pub fn ensure_database(database_url: &str) -> Result<()> {
    match PgConnection::establish(database_url) {
        Ok(_) => return Ok(()),
        Err(e) if !e.to_string().contains("does not exist") => {
            return Err(Error::Message(format!(
                "cannot connect to {}: {}",
                url::redact(database_url),
                url::scrub(e.to_string().trim(), database_url)
            )))
        }
        Err(_) => {}
    }
    let Some(name) = url::database_name(database_url) else {
        return Ok(());
    };
    let maintenance = url::with_database(database_url, "postgres").ok_or_else(|| {
        Error::Message(format!("cannot read the URL {}", url::redact(database_url)))
    })?;
    let mut conn = PgConnection::establish(&maintenance).map_err(|e| {
        Error::Message(format!(
            "database `{name}` does not exist and the server's `postgres` database is unreachable to create it ({}): {}",
            url::redact(&maintenance),
            url::scrub(e.to_string().trim(), &maintenance)
        ))
    })?;
    tracing::info!(database = %name, "creating database");
    match conn.batch_execute(&format!("CREATE DATABASE {}", quote::ident(&name))) {
        Ok(()) => Ok(()),
        // Another process created it at the same moment (the server says 42P04, or
        // 23505 on pg_database's unique index when both inserted at once): what we
        // wanted exists, which the catalog can tell without reading error texts.
        Err(_) if database_exists(&mut conn, &name) => {
            tracing::info!(database = %name, "created by a concurrent run");
            Ok(())
        }
        Err(e) => Err(Error::Message(format!(
            "cannot create database `{name}`: {e}"
        ))),
    }
}
