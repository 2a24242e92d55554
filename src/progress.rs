//! Progress for long work: a live bar on a terminal, plain periodic log lines when
//! stderr is not a terminal (cron, CI), so logs stay readable in both.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain log line is written without a terminal.
const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    what: &'static str,
    total: u64,
    done: AtomicU64,
    rows: AtomicU64,
    started: Instant,
    bar: Option<ProgressBar>,
    last_log: Mutex<Instant>,
}

impl Progress {
    /// Progress over `total` items (files), labelled `what`.
    pub fn new(what: &'static str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {pos}/{len} files · {msg} · {elapsed_precise} (ETA {eta})",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            bar.set_prefix(what);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            what,
            total,
            done: AtomicU64::new(0),
            rows: AtomicU64::new(0),
            started: Instant::now(),
            bar,
            last_log: Mutex::new(Instant::now()),
        }
    }

    /// One item finished with `rows` rows.
    pub fn advance(&self, rows: u64) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        let rows = self.rows.fetch_add(rows, Ordering::Relaxed) + rows;
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            bar.set_message(format!("{rows} rows · {rate:.0} rows/s"));
            return;
        }
        let mut last = self.last_log.lock().unwrap_or_else(|e| e.into_inner());
        if last.elapsed() >= LOG_EVERY {
            *last = Instant::now();
            tracing::info!(
                "{}: {done}/{} files, {rows} rows, {rate:.0} rows/s",
                self.what,
                self.total
            );
        }
    }

    /// `count` items finished without work (e.g. unchanged files).
    pub fn skip(&self, count: u64) {
        let done = self.done.fetch_add(count, Ordering::Relaxed) + count;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
