//! `index.html` of a job's report folder: every recorded run, newest first, with its
//! status and a link to its report while that report is still on disk.

use super::html_escape as escape;
use crate::db::runs::PastRun;

/// The page; `has_report(as_of)` says whether `<as_of>/report.html` exists.
pub fn render_index(job: &str, runs: &[PastRun], has_report: &dyn Fn(&str) -> bool) -> String {
    let mut rows = String::new();
    for run in runs {
        let as_of = run.as_of.map(|d| d.to_string()).unwrap_or_default();
        let link = if !as_of.is_empty() && has_report(&as_of) {
            format!("<a href=\"{0}/report.html\">{0}</a>", escape(&as_of))
        } else {
            escape(&as_of)
        };
        rows.push_str(&format!(
            "<tr class=\"{status}\"><td>{id}</td><td>{started}</td><td>{status}</td><td>{exit}</td>\
             <td>{secs}</td><td>{link}</td><td>{rows}</td><td>{failures}</td></tr>\n",
            id = run.id,
            started = escape(&run.started),
            status = escape(&run.status),
            exit = run.exit_code.map_or_else(String::new, |c| c.to_string()),
            secs = run.seconds.map_or_else(String::new, |s| format!("{s:.1}")),
            rows = run.rows_loaded.map_or_else(String::new, |r| r.to_string()),
            failures = escape(run.failures.as_deref().unwrap_or("")),
        ));
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n<title>{job}: runs</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #d0d7de;padding:.25rem .5rem}}tr.partial,tr.failed,tr.abandoned{{background:#ffebe9}}\
         tr.skipped{{color:#57606a}}</style>\n</head>\n<body>\n<h1>{job}: runs</h1>\n\
         <p><a href=\"latest/report.html\">latest report</a></p>\n<table>\n<thead><tr><th>run</th><th>started (UTC)</th>\
         <th>status</th><th>exit</th><th>seconds</th><th>as of</th><th>rows loaded</th><th>failures</th></tr></thead>\n\
         <tbody>\n{rows}</tbody>\n</table>\n</body>\n</html>\n",
        job = escape(job)
    )
}
