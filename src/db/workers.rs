//! The pool's background threads, and waiting for them before the process exits.
//!
//! r2d2 opens connections on its own worker threads (to keep `min_idle` connections
//! ready, and for every checkout that finds none idle). When `main` returned while one
//! of them was inside `PQconnectdb`, `exit` ran OpenSSL's cleanup under it and the
//! process died with SIGSEGV (about one `runner explain` in a hundred). So the pool gets
//! its own thread pool, which discards pending work once the pool is dropped, and every
//! thread that touches libpq for the pool counts itself here until it has exited.
//! [`wait_for_exit`] (called by `main` after the command returned and dropped its pool)
//! waits for that count to reach zero.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use scheduled_thread_pool::{OnPoolDropBehavior, ScheduledThreadPool};

/// Threads that used libpq for a pool and have not exited yet.
static LIVE: Mutex<usize> = Mutex::new(0);
static EXITED: Condvar = Condvar::new();

thread_local! {
    /// Present once this thread counted itself; its drop (when the thread exits, after
    /// everything the thread did with the pool) takes it off the count.
    static REGISTERED: std::cell::OnceCell<Registration> = const { std::cell::OnceCell::new() };
}

struct Registration;

impl Drop for Registration {
    fn drop(&mut self) {
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        *live = live.saturating_sub(1);
        EXITED.notify_all();
    }
}

/// Count the calling thread (a pool worker about to use libpq) until it exits.
pub fn register_current_thread() {
    REGISTERED.with(|cell| {
        cell.get_or_init(|| {
            *LIVE.lock().unwrap_or_else(|e| e.into_inner()) += 1;
            Registration
        });
    });
}

/// The worker threads of one connection pool: they stop as soon as the pool is
/// dropped instead of running what was scheduled (a reaper pass, a reconnect).
pub fn thread_pool(threads: usize) -> Arc<ScheduledThreadPool> {
    Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(threads.max(1))
            .thread_name_pattern("runner-db-{}")
            .on_drop_behavior(OnPoolDropBehavior::DiscardPendingScheduled)
            .build(),
    )
}

/// Wait (at most `limit`) until every pool worker thread that used libpq has exited;
/// returns whether they all did. Call once every pool is dropped.
pub fn wait_for_exit(limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    while *live > 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        live = EXITED
            .wait_timeout(live, left)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
    true
}
