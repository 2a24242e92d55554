//! `runner daemon JOBS…`: run the jobs' schedules in-process (see `scheduler::daemon`).

use crate::cli::DaemonArgs;
use crate::error::Result;
use crate::scheduler::{self, clock::Clock};

pub fn daemon(args: &DaemonArgs) -> Result<()> {
    let jobs = scheduler::scheduled_jobs(&args.jobs)?;
    let clock = Clock::from_env()?;
    scheduler::daemon::serve(jobs, scheduler::runner_binary()?, clock)
}
