//! Rejected rows: how their text is kept (capped, NUL-free) and the rejects file, which
//! lists every row the database holds as rejected, with file, line, reason and the raw
//! text, written as CSV beside the reports.

use std::io::Write;
use std::path::Path;

use diesel::prelude::*;

use crate::db::schema::ingest_rejects;
use crate::error::{Context, Result};

/// The most bytes of a row's text (or of a reason) kept in `ingest_rejects`: enough to
/// see what is wrong, while a 50 MB field neither bloats the table nor `rejects.csv`.
pub const MAX_STORED_BYTES: usize = 4096;

/// The most characters of a value quoted inside a reason.
const MAX_QUOTED_CHARS: usize = 64;

/// `bytes` as text that PostgreSQL can store: invalid UTF-8 and NUL bytes become
/// U+FFFD, and text longer than [`MAX_STORED_BYTES`] is cut, noting the original length
/// (`… [truncated, 52428800 bytes]`).
pub fn stored_text(bytes: &[u8]) -> String {
    let mut cut = bytes.len().min(MAX_STORED_BYTES);
    // Cut on a character boundary: back off over UTF-8 continuation bytes.
    while cut < bytes.len() && cut > 0 && bytes[cut] & 0b1100_0000 == 0b1000_0000 {
        cut -= 1;
    }
    let mut text = String::from_utf8_lossy(&bytes[..cut]).replace('\0', "\u{FFFD}");
    if cut < bytes.len() {
        text.push_str(&format!("… [truncated, {} bytes]", bytes.len()));
    }
    text
}

/// A value as quoted in a reason: in backticks, cut after a few dozen characters.
pub fn quoted(value: &str) -> String {
    match value.char_indices().nth(MAX_QUOTED_CHARS) {
        None => format!("`{value}`"),
        Some((end, _)) => format!("`{}…` ({} bytes)", &value[..end], value.len()),
    }
}

/// Write all rejects (ordered by file and line) to `path`; returns how many.
///
/// # Errors
/// The database cannot be read or the file cannot be written.
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
    let writing = || format!("writing {}", path.display());
    let file = std::fs::File::create(path).with_context(writing)?;
    let mut out = csv::Writer::from_writer(std::io::BufWriter::new(file));
    out.write_record(["file", "line", "reason", "raw"])
        .with_context(writing)?;
    for (file, line, reason, raw) in &rows {
        out.write_record([file.as_str(), &line.to_string(), reason, raw])
            .with_context(writing)?;
    }
    out.flush().with_context(writing)?;
    out.into_inner()
        .map_err(csv::IntoInnerError::into_error)
        .with_context(writing)?
        .flush()
        .with_context(writing)?;
    Ok(rows.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_is_capped_on_a_char_boundary_and_nul_free() {
        assert_eq!(stored_text(b"a\0b\xE9c"), "a\u{FFFD}b\u{FFFD}c");
        let long = "é".repeat(3000); // 6,000 bytes
        let kept = stored_text(long.as_bytes());
        assert_eq!(
            kept,
            format!("{}… [truncated, 6000 bytes]", "é".repeat(2048))
        );
        assert_eq!(quoted("2020-01-02"), "`2020-01-02`");
        assert_eq!(
            quoted(&"x".repeat(100)),
            format!("`{}…` (100 bytes)", "x".repeat(64))
        );
    }
}
