//! The rejects file: every row the database holds as rejected, with file, line, reason
//! and the raw text, written as CSV beside the reports.

use std::io::Write;
use std::path::Path;

use diesel::prelude::*;

use crate::db::schema::ingest_rejects;
use crate::error::{Context, Result};

/// Write all rejects (ordered by file and line) to `path`; returns how many.
pub fn write_csv(conn: &mut PgConnection, path: &Path) -> Result<usize> {
    let rows: Vec<(String, i64, String, String)> = ingest_rejects::table
        .select((
            ingest_rejects::path,
            ingest_rejects::line,
            ingest_rejects::reason,
            ingest_rejects::raw,
        ))
        .order((ingest_rejects::path, ingest_rejects::line))
        .load(conn)
        .map_err(crate::db::db_error("reading rejects"))?;
    let file =
        std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
    let mut out = csv::Writer::from_writer(std::io::BufWriter::new(file));
    out.write_record(["file", "line", "reason", "raw"])
        .with_context(|| format!("writing {}", path.display()))?;
    for (file, line, reason, raw) in &rows {
        out.write_record([file.as_str(), &line.to_string(), reason, raw])
            .with_context(|| format!("writing {}", path.display()))?;
    }
    out.into_inner()
        .map_err(|e| crate::error::Error::Message(format!("writing {}: {e}", path.display())))?
        .flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(rows.len())
}
