//! `runner daemon`: the schedules run in-process, for a container without cron.
//!
//! One task per scheduled job computes the job's next time in its zone, sleeps until
//! then and starts `runner run JOB --no-wait` as a child process, waiting for it before
//! computing the next time: one run per job at a time (times that pass during a long
//! run are not made up). Every child gets its own process group, so a Ctrl-C in a
//! terminal reaches only the daemon, which lets the runs finish like SIGTERM does.
//!
//! Missed runs: with `missed = "run_once"` (the default), a job whose latest scheduled
//! time is later than its last run in the `runs` table runs once at start. A job with
//! no run recorded at all has missed nothing (a first deployment does not start every
//! job at once); `missed = "skip"` never catches up.
//!
//! SIGTERM or SIGINT: no new runs start, the running children are waited for, exit 0.
//! Log lines are plain text on stdout, each starting with the daemon's clock time.

use std::os::unix::process::ExitStatusExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::clock::Clock;
use crate::error::{Context as _, Result};
use crate::job::schedule::{Missed, Schedule};
use crate::job::Job;

/// Run the schedules of `jobs` until SIGTERM or SIGINT; `runner` is the binary that
/// runs each job.
///
/// # Errors
/// When the runtime or the signal handlers cannot be set up.
pub fn serve(jobs: Vec<Job>, runner: PathBuf, clock: Clock) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the daemon's runtime")?;
    runtime.block_on(schedule_all(jobs, runner, clock))
}

fn log(clock: &Clock, message: &str) {
    // A closed stdout must not stop the daemon: the line is dropped.
    let _ = crate::output::stdout(format_args!(
        "{} {message}\n",
        clock.now().format("%Y-%m-%dT%H:%M:%SZ")
    ));
}

async fn schedule_all(jobs: Vec<Job>, runner: PathBuf, clock: Clock) -> Result<()> {
    // Handlers first: a signal from here on is a graceful stop, never the default kill.
    let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("handling SIGINT")?;
    let (stop, stopped) = watch::channel(false);
    let running = Arc::new(AtomicUsize::new(0));
    let scheduled = jobs.iter().filter(|j| j.schedule.is_some()).count();
    log(
        &clock,
        &format!(
            "runner daemon {}: {scheduled} scheduled job{} (pid {})",
            env!("CARGO_PKG_VERSION"),
            if scheduled == 1 { "" } else { "s" },
            std::process::id()
        ),
    );
    let mut tasks = JoinSet::new();
    for job in jobs {
        if job.schedule.is_none() {
            log(&clock, &format!("{} has no schedule", job.name));
            continue;
        }
        let job_loop = JobLoop {
            job,
            runner: runner.clone(),
            clock,
            running: Arc::clone(&running),
        };
        tasks.spawn(job_loop.run(stopped.clone()));
    }
    let name = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    log(
        &clock,
        &format!(
            "{name}: starting no new runs, waiting for {} running",
            running.load(Ordering::SeqCst)
        ),
    );
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    log(&clock, "stopped");
    Ok(())
}

struct JobLoop {
    job: Job,
    runner: PathBuf,
    clock: Clock,
    running: Arc<AtomicUsize>,
}

impl JobLoop {
    fn schedule(&self) -> &Schedule {
        self.job
            .schedule
            .as_ref()
            .expect("only scheduled jobs get a loop")
    }

    async fn run(self, mut stop: watch::Receiver<bool>) {
        let name = self.job.name.clone();
        let mut after = self.clock.now();
        if let Some(missed) = self.missed_run(after).await {
            log(
                &self.clock,
                &format!(
                    "{name} missed its run at {}: running it once now",
                    self.schedule().local(missed)
                ),
            );
            self.run_child().await;
            after = self.clock.now();
        }
        while !*stop.borrow() {
            let Some(next) = self.schedule().next_after(after) else {
                log(&self.clock, &format!("{name} has no next run"));
                return;
            };
            log(
                &self.clock,
                &format!(
                    "next run of {name} at {} ({})",
                    self.schedule().local(next),
                    next.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            );
            // Sleep in steps until the clock shows `next`: a sleep may end a little
            // early against a scaled clock.
            loop {
                let wait = self.clock.until(next);
                if wait.is_zero() {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    _ = stop.changed() => return,
                }
            }
            self.run_child().await;
            after = next.max(self.clock.now());
        }
    }

    /// The scheduled time to make up for at start, if any (see the module docs).
    async fn missed_run(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let schedule = self.schedule();
        if schedule.missed == Missed::Skip {
            return None;
        }
        let latest = schedule.previous_at_or_before(now)?;
        let (url, name) = (self.job.database_url.clone(), self.job.name.clone());
        let last = tokio::task::spawn_blocking(move || last_run(&url, &name))
            .await
            .ok()?;
        match last {
            Ok(Some(last)) if latest > last => Some(latest),
            Ok(_) => None,
            Err(e) => {
                log(
                    &self.clock,
                    &format!(
                        "cannot read the last run of {} ({e}): not making up missed runs",
                        self.job.name
                    ),
                );
                None
            }
        }
    }

    async fn run_child(&self) {
        let name = &self.job.name;
        let started = Instant::now();
        let mut command = tokio::process::Command::new(&self.runner);
        command
            .arg("run")
            .arg(&self.job.path)
            .arg("--no-wait")
            .process_group(0);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                log(&self.clock, &format!("cannot start {name}: {e}"));
                return;
            }
        };
        self.running.fetch_add(1, Ordering::SeqCst);
        log(
            &self.clock,
            &format!("started {name} (pid {})", child.id().unwrap_or_default()),
        );
        let status = child.wait().await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let seconds = started.elapsed().as_secs_f64();
        let outcome = match status {
            Ok(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exit {code}"),
                (None, Some(signal)) => format!("killed by signal {signal}"),
                (None, None) => "ended".to_owned(),
            },
            Err(e) => format!("lost ({e})"),
        };
        log(
            &self.clock,
            &format!("{name} finished: {outcome} in {seconds:.1}s"),
        );
    }
}

/// Why the last run's start could not be read (the daemon then makes up no missed run).
#[derive(Debug, thiserror::Error)]
enum LastRunError {
    #[error(transparent)]
    Connect(#[from] crate::error::Error),
    #[error(transparent)]
    Query(#[from] diesel::result::Error),
}

fn last_run(url: &str, job: &str) -> Result<Option<DateTime<Utc>>, LastRunError> {
    let mut conn = crate::db::pool::connect_one(url)?;
    Ok(crate::db::runs::last_started(&mut conn, job)?)
}
