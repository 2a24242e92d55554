//! CSV export of a result table: the lossless, machine-readable output of an analysis.
//!
//! Cells are written exactly as PostgreSQL printed them (no number formatting), quoted per
//! RFC 4180 where needed, one `\n`-terminated line per row. The header line is written even
//! for an empty result so that consumers always see the schema. NULL is an empty field, so
//! NULL and the empty string are indistinguishable in the file.

use std::io::Write;

use csv::{Terminator, WriterBuilder};

use super::ReportError;
use crate::table::{Column, Table};

/// Writes `table` as CSV with a header row to `writer`.
///
/// Fails if writing fails or a row's cell count differs from the column count.
pub fn write_csv(table: &Table, writer: impl Write) -> Result<(), ReportError> {
    let mut rows = CsvRows::start(&table.columns, writer)?;
    for row in &table.rows {
        rows.row(row)?;
    }
    rows.finish()
}

/// The same CSV written a row at a time, for results streamed from the database
/// without holding them (see `analysis::sink`).
pub struct CsvRows<W: Write> {
    writer: csv::Writer<W>,
}

impl<W: Write> CsvRows<W> {
    /// Write the header line of `columns`.
    ///
    /// # Errors
    /// When writing fails.
    pub fn start(columns: &[Column], writer: W) -> Result<Self, ReportError> {
        let mut writer = WriterBuilder::new()
            .terminator(Terminator::Any(b'\n'))
            .from_writer(writer);
        writer.write_record(columns.iter().map(|c| c.name.as_str()))?;
        Ok(CsvRows { writer })
    }

    /// Write one row (NULL as an empty field).
    ///
    /// # Errors
    /// When writing fails or the row has another cell count than the header.
    pub fn row(&mut self, row: &[Option<String>]) -> Result<(), ReportError> {
        self.writer
            .write_record(row.iter().map(|cell| cell.as_deref().unwrap_or("")))?;
        Ok(())
    }

    /// Flush what is buffered.
    ///
    /// # Errors
    /// When writing fails.
    pub fn finish(mut self) -> Result<(), ReportError> {
        self.writer.flush()?;
        Ok(())
    }
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
