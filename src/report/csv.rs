//! CSV export of a result table: the lossless, machine-readable output of an analysis.
//!
//! Cells are written exactly as PostgreSQL printed them (no number formatting), quoted per
//! RFC 4180 where needed, one `\n`-terminated line per row. The header line is written even
//! for an empty result so that consumers always see the schema. NULL is an empty field, so
//! NULL and the empty string are indistinguishable in the file.

use std::io::Write;

use csv::{Terminator, WriterBuilder};

use super::ReportError;
use crate::table::Table;

/// Writes `table` as CSV with a header row to `writer`.
///
/// Fails if writing fails or a row's cell count differs from the column count.
pub fn write_csv(table: &Table, writer: impl Write) -> Result<(), ReportError> {
    let mut csv_writer = WriterBuilder::new()
        .terminator(Terminator::Any(b'\n'))
        .from_writer(writer);
    csv_writer.write_record(table.column_names())?;
    for row in &table.rows {
        csv_writer.write_record(row.iter().map(|cell| cell.as_deref().unwrap_or("")))?;
    }
    csv_writer.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_text(table: &Table) -> String {
        let mut bytes = Vec::new();
        write_csv(table, &mut bytes).expect("writing to a Vec succeeds");
        String::from_utf8(bytes).expect("CSV output is UTF-8")
    }

    #[test]
    fn header_is_written_for_an_empty_result() {
        let empty = Table::from_text(
            &[("date", "date"), ("symbol", "text"), ("close", "numeric")],
            &[],
        );
        assert_eq!(csv_text(&empty), "date,symbol,close\n");
    }

    #[test]
    fn commas_quotes_and_newlines_are_quoted() {
        let tricky = Table::from_text(
            &[("name", "text"), ("note", "text")],
            &[
                &[Some("Acme, Inc."), Some("said \"hi\"")],
                &[Some("two\nlines"), Some("plain")],
            ],
        );
        assert_eq!(
            csv_text(&tricky),
            "name,note\n\"Acme, Inc.\",\"said \"\"hi\"\"\"\n\"two\nlines\",plain\n"
        );
    }

    #[test]
    fn nulls_are_empty_fields_and_values_are_exact() {
        let values = Table::from_text(
            &[("a", "text"), ("b", "numeric"), ("c", "text")],
            &[&[None, Some("0.000123456789012345678"), None]],
        );
        assert_eq!(csv_text(&values), "a,b,c\n,0.000123456789012345678,\n");
    }

    #[test]
    fn ragged_rows_are_an_error() {
        let ragged = Table::from_text(&[("a", "text"), ("b", "text")], &[&[Some("1")]]);
        let error = write_csv(&ragged, Vec::new()).expect_err("row is too short");
        assert!(matches!(error, ReportError::Csv(_)), "{error:?}");
    }
}
