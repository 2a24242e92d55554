//! Where an analysis's rows go while they are read: every row to its CSV file (when it
//! has one), and only the first few into memory for the documents and charts. So a
//! result of millions of rows costs one batch of memory, not the whole result.

use std::io::Write;

use crate::report::{CsvRows, ReportError};
use crate::table::{Column, Table};

/// One result row as text cells (`None` = NULL).
pub type Row = Vec<Option<String>>;

/// Rows held in memory for an analysis with charts: a chart draws every row, so it is
/// drawn only when the whole result fits here (else the chart fails, saying why).
pub const CHART_ROWS: usize = 100_000;

/// Receives the rows of one result.
pub struct Sink<'a> {
    keep: usize,
    rows: Vec<Row>,
    total: u64,
    pending_csv: Option<Box<dyn Write + 'a>>,
    csv: Option<CsvRows<Box<dyn Write + 'a>>>,
}

/// What a sink received.
#[derive(Debug, Default)]
pub struct Received {
    /// The columns and the first rows (all of them when `total` fits the sink).
    pub table: Table,
    /// How many rows there were.
    pub total: u64,
}

impl<'a> Sink<'a> {
    /// Keep every row (small results: data tests, the tests' helpers).
    pub fn all() -> Self {
        Sink::new(usize::MAX, None)
    }

    /// Keep the first `keep` rows, and write every row to `csv` when given.
    pub fn new(keep: usize, csv: Option<Box<dyn Write + 'a>>) -> Self {
        Sink {
            keep,
            rows: Vec::new(),
            total: 0,
            pending_csv: csv,
            csv: None,
        }
    }

    /// The result's columns are known: write the CSV header.
    ///
    /// # Errors
    /// When the CSV cannot be written.
    pub fn start(&mut self, columns: &[Column]) -> Result<(), ReportError> {
        if let Some(writer) = self.pending_csv.take() {
            self.csv = Some(CsvRows::start(columns, writer)?);
        }
        Ok(())
    }

    /// One more row.
    ///
    /// # Errors
    /// When the CSV cannot be written.
    pub fn push(&mut self, row: Row) -> Result<(), ReportError> {
        self.total += 1;
        if let Some(csv) = &mut self.csv {
            csv.row(&row)?;
        }
        if self.rows.len() < self.keep {
            self.rows.push(row);
        }
        Ok(())
    }

    /// Flush the CSV and hand back what was kept.
    ///
    /// # Errors
    /// When the CSV cannot be written.
    pub fn finish(self, columns: Vec<Column>) -> Result<Received, ReportError> {
        if let Some(csv) = self.csv {
            csv.finish()?;
        } else if let Some(writer) = self.pending_csv {
            // No rows were ever started (a failed query): still a valid, empty CSV.
            CsvRows::start(&columns, writer)?.finish()?;
        }
        Ok(Received {
            table: Table {
                columns,
                rows: self.rows,
            },
            total: self.total,
        })
    }
}
