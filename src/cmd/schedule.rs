//! `runner schedule JOBS…`: print crontab lines for the scheduled jobs (see
//! `scheduler::crontab` for what makes them safe).

use crate::cli::ScheduleArgs;
use crate::error::Result;
use crate::scheduler;

pub fn schedule(args: &ScheduleArgs) -> Result<()> {
    let jobs = scheduler::scheduled_jobs(&args.jobs)?;
    let runner = scheduler::runner_binary()?;
    crate::out!(
        "{}",
        scheduler::crontab::render(&jobs, &args.jobs, &runner, args.log_dir.as_deref())
    );
    Ok(())
}
