//! One run at a time per database: a session-level advisory lock, held on a dedicated
//! connection for the whole run and released when that connection closes — also when
//! the process is killed, so a crashed run never leaves a stale lock behind.
//!
//! The lock is only as good as its connection: if the server drops it (restart,
//! `pg_terminate_backend`, a network cut) the lock is gone and another run may start.
//! So the connection is watched: a thread pings it every [`WATCH_EVERY`], and the run
//! asks [`RunLock::check`] between its steps and stops with a clear error once the lock
//! is lost, instead of carrying on unprotected.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};

use crate::error::{Error, Result};

/// Arbitrary but fixed: "runner" in ASCII.
const RUN_LOCK_KEY: i64 = 0x7275_6e6e_6572;

/// How often the lock's connection is checked.
const WATCH_EVERY: Duration = Duration::from_millis(500);

/// `application_name` of the lock's connection, to find it in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "runner run lock";

/// Why a run lost the run lock, or cannot watch it.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "lost the run lock: its database connection was closed (server restart or \
         pg_terminate_backend); stopping so that two runs never work at once — the \
         next run finishes the job"
    )]
    Lost,
    #[error("cannot watch the run lock: {0}")]
    Watch(#[source] std::io::Error),
}

/// How long to wait for another run to release the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// As long as it takes (the default: a nightly run queues behind a long one).
    Forever,
    /// Up to this long, then fail with the busy exit code.
    Upto(Duration),
}

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Bool)]
    acquired: bool,
}

/// Holds the run lock until dropped.
pub struct RunLock {
    lost: Arc<AtomicBool>,
    stop: Option<mpsc::Sender<()>>,
    watcher: Option<JoinHandle<()>>,
}

impl RunLock {
    /// Raised once the lock is lost, for work that checks it often (ingest batches).
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.lost)
    }

    /// Fails once the lock's connection is gone.
    ///
    /// # Errors
    /// When the lock was lost: the run must stop.
    pub fn check(&self) -> Result<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(LockError::Lost.into());
        }
        Ok(())
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

/// Take the run lock, waiting as `wait` says (with a log line saying why).
///
/// # Errors
/// [`Error::Busy`] when another run still holds it after the wait; the database's.
pub fn acquire(database_url: &str, wait: Wait) -> Result<RunLock> {
    let mut conn = super::pool::connect_one(database_url)?;
    conn.batch_execute(&format!(
        "SET application_name = {}",
        super::quote::literal(APPLICATION_NAME)
    ))
    .map_err(super::db_error("setting up the run lock's connection"))?;
    let started = Instant::now();
    let mut warned = false;
    while !try_lock(&mut conn)? {
        if let Wait::Upto(limit) = wait {
            if started.elapsed() >= limit {
                return Err(Error::Busy(format!(
                    "another runner is working on this database (waited {}s); nothing was done",
                    limit.as_secs()
                )));
            }
        }
        if !warned {
            tracing::warn!("another runner is working on this database; waiting for it to finish");
            warned = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    if warned {
        tracing::info!("the other run finished; continuing");
    }
    let lost = Arc::new(AtomicBool::new(false));
    let (stop, stopped) = mpsc::channel::<()>();
    let flag = Arc::clone(&lost);
    let watcher = std::thread::Builder::new()
        .name("run-lock".to_owned())
        .spawn(move || watch(conn, &flag, &stopped))
        .map_err(LockError::Watch)?;
    Ok(RunLock {
        lost,
        stop: Some(stop),
        watcher: Some(watcher),
    })
}

fn try_lock(conn: &mut PgConnection) -> Result<bool> {
    let got: Acquired = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS acquired")
        .bind::<BigInt, _>(RUN_LOCK_KEY)
        .get_result(conn)
        .map_err(super::db_error("taking the run lock"))?;
    Ok(got.acquired)
}

/// Ping the lock's connection until told to stop (or the sender is dropped); on the
/// first failure, raise `lost` and log it once.
fn watch(mut conn: PgConnection, lost: &AtomicBool, stop: &mpsc::Receiver<()>) {
    loop {
        match stop.recv_timeout(WATCH_EVERY) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Stopped, or the lock was dropped: closing the connection releases the lock.
            _ => return,
        }
        if conn.batch_execute("SELECT 1").is_err() {
            lost.store(true, Ordering::SeqCst);
            tracing::error!("lost the run lock: its database connection was closed");
            return;
        }
    }
}
