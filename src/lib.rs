//! runner: a declarative job runner for market time series on PostgreSQL + TimescaleDB.
//!
//! A job file (`job`) says what to ingest and which analyses to run. `ingest` loads the
//! Kaggle-layout CSVs, `analysis` renders and runs the SQL templates, `report` writes
//! CSV, Markdown and HTML; `db` holds the pool, migrations and what the server can do.
//! `cmd` has one short file per subcommand; dependencies point down to `db`.

pub mod analysis;
pub mod cli;
pub mod cmd;
pub mod crashpoint;
pub mod db;
pub mod error;
pub mod generate;
pub mod ingest;
pub mod job;
pub mod maintain;
pub mod output;
pub mod progress;
pub mod report;
pub mod scheduler;
pub mod stream;
pub mod table;
pub mod warnings;

use cli::{Cli, Command};
use error::Result;

/// Run one parsed command line.
///
/// # Errors
/// Whatever the command fails with; [`error::Error::code`] gives the exit code.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(seconds) = cli.connect_timeout {
        db::timeouts::set_cli_connect_timeout(seconds);
    }
    match cli.command {
        Command::Run(args) => cmd::run::run(&args),
        Command::Check(args) => cmd::check::check(&args),
        Command::Render(args) => cmd::render::render(&args),
        Command::Migrate(args) => cmd::migrate::migrate(&args),
        Command::Generate(args) => cmd::generate::generate(&args),
        Command::Doctor(args) => cmd::doctor::doctor(&args),
        Command::History(args) => cmd::history::history(&args),
        Command::Maintain(args) => cmd::maintain::maintain(&args),
        Command::Explain(args) => cmd::explain::explain(&args),
        Command::Stream(args) => cmd::stream::stream(&args),
        Command::Replay(args) => cmd::replay::replay(&args),
        Command::Schedule(args) => cmd::schedule::schedule(&args),
        Command::Daemon(args) => cmd::daemon::daemon(&args),
    }
}
