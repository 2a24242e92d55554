//! Command-line types (clap derive only; the work happens in `cmd/`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "runner",
    version,
    about = "Declarative job runner for market time series on PostgreSQL + TimescaleDB"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate, ingest, run the analyses and write the reports of a job.
    Run(RunArgs),
    /// Validate job files, their templates and source paths without touching data.
    Check(CheckArgs),
    /// Print the SQL a job would run.
    Render(RenderArgs),
    /// Create the database if missing and apply pending migrations.
    Migrate(DbArgs),
    /// Write synthetic market data in the Kaggle "Stock Market Dataset" layout.
    Generate(GenerateArgs),
    /// Show the server, the TimescaleDB status and what runner will use.
    Doctor(DbArgs),
    /// Past runs: status, duration, as-of date, rows, failures, report folder.
    History(HistoryArgs),
    /// Apply `[storage]`, compress eligible chunks, VACUUM (ANALYZE) what changed, and
    /// write a Markdown maintenance report.
    Maintain(MaintainArgs),
    /// Show `EXPLAIN (ANALYZE, BUFFERS)` of analyses.
    Explain(ExplainArgs),
}

/// A job file plus `--var` overrides: what every job-reading command takes.
#[derive(Debug, Args, Clone)]
pub struct JobArgs {
    /// The job file (TOML).
    pub job: PathBuf,
    /// Override a job variable: `--var symbol=MSFT`, `--var as_of=2020-03-31`,
    /// `--var symbols=[AAPL,MSFT]`. Values are typed like the job's own.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Skip the ingest step (analyse what is already loaded).
    #[arg(long)]
    pub skip_ingest: bool,
    /// Run only these analyses and what they need: `NAME` (or `+NAME`) and what it
    /// depends on; `NAME+` also everything that depends on it.
    #[arg(long, value_name = "NAME")]
    pub select: Vec<String>,
    /// Leave these analyses out (a kept result of one is used as it is).
    #[arg(long, value_name = "NAME")]
    pub exclude: Vec<String>,
    /// When another run holds the database, wait at most this long for it, then exit
    /// with code 75 (default: wait as long as it takes).
    #[arg(long, value_name = "SECONDS", conflicts_with = "no_wait")]
    pub wait_lock: Option<u64>,
    /// When another run holds the database, exit at once with code 75 (for cron: the
    /// next scheduled run catches up).
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Job files to validate.
    #[arg(required = true)]
    pub jobs: Vec<PathBuf>,
    /// Variable overrides applied to every file.
    #[arg(long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Do not contact the database (by default the analyses are also planned by the
    /// job's database when it is reachable).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Render only these analyses.
    #[arg(long, value_name = "NAME")]
    pub select: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DbArgs {
    /// A job file whose `database_url` to use.
    pub job: Option<PathBuf>,
    /// The database URL (default: the job's `database_url`, else `$DATABASE_URL`, else
    /// postgres://postgres@localhost:5432/stocks).
    #[arg(long)]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Runs of every job, not only the given job file's.
    #[arg(long)]
    pub all: bool,
    /// How many runs to show, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: i64,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output folder (gets `stocks/`, `etfs/` and `symbols_valid_meta.csv`).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of symbols (about three quarters stocks, one quarter ETFs).
    #[arg(long, default_value_t = 20)]
    pub symbols: usize,
    /// Years of history ending at `--end`.
    #[arg(long, default_value_t = 5)]
    pub years: u32,
    /// Random seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Last trading day (the Kaggle data ends on 2020-04-01).
    #[arg(long, default_value = "2020-04-01")]
    pub end: chrono::NaiveDate,
    /// Write only clean rows (no deliberately malformed ones).
    #[arg(long)]
    pub clean: bool,
    /// Stock tickers to include among the symbols, e.g. `--tickers AAPL,MSFT`.
    #[arg(long, value_delimiter = ',')]
    pub tickers: Vec<String>,
    /// ETF tickers to include among the symbols, e.g. `--etf-tickers SPY`.
    #[arg(long, value_delimiter = ',')]
    pub etf_tickers: Vec<String>,
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// Where to write the report (default: `<report dir>/maintenance.md`).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    #[command(flatten)]
    pub job: JobArgs,
    /// The analyses to explain.
    #[arg(long, value_name = "NAME", required = true)]
    pub select: Vec<String>,
}
