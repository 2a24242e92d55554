//! `runner history [JOB]`: the latest runs from the `runs` table, newest first.

use crate::cli::HistoryArgs;
use crate::db;
use crate::error::Result;

pub fn history(args: &HistoryArgs) -> Result<()> {
    let url = super::migrate::database_url(&args.db)?;
    let job = match (&args.db.job, args.all) {
        (Some(path), false) => Some(super::load_job_file(path, &[])?.name),
        _ => None,
    };
    let mut conn = db::pool::connect_one(&url)?;
    let runs = db::runs::history(&mut conn, job.as_deref(), args.limit)
        .map_err(db::db_error("reading the runs"))?;
    crate::out!("{}", format_runs(&runs));
    Ok(())
}

/// The runs as an aligned plain-text table.
pub fn format_runs(runs: &[db::runs::PastRun]) -> String {
    let header = [
        "run",
        "job",
        "started (UTC)",
        "status",
        "exit",
        "seconds",
        "as of",
        "rows",
        "report",
        "failures",
    ]
    .map(str::to_owned);
    let lines: Vec<[String; 10]> = runs
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                r.job.clone(),
                r.started.clone(),
                r.status.clone(),
                r.exit_code
                    .map_or_else(|| "-".to_owned(), |c| c.to_string()),
                r.seconds
                    .map_or_else(|| "-".to_owned(), |s| format!("{s:.1}")),
                r.as_of.map_or_else(|| "-".to_owned(), |d| d.to_string()),
                r.rows_loaded
                    .map_or_else(|| "-".to_owned(), |n| n.to_string()),
                r.report_dir.clone().unwrap_or_else(|| "-".to_owned()),
                r.failures
                    .as_deref()
                    .map(|f| f.lines().next().unwrap_or("").to_owned())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.clone().map(|h| h.chars().count());
    for line in &lines {
        for (w, cell) in widths.iter_mut().zip(line) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in std::iter::once(&header).chain(&lines) {
        let cells: Vec<String> = line
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                if i == 9 {
                    cell.clone()
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}
