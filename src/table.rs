//! The in-memory form of a query result, shared by the query runner and the report writers.
//!
//! Cells are kept as PostgreSQL's own text output rather than parsed Rust values: the CSV
//! export must reproduce exactly what the database printed (every digit of a `numeric`, the
//! time zone of a `timestamptz`), and the documents only need to *format* values, which they
//! can do from text plus the column's SQL type.

use serde::Serialize;

/// A query result as PostgreSQL printed it: column names with their SQL types, and every
/// cell as PostgreSQL's own text form (`None` = NULL), so CSV output is exact.
///
/// Every row is expected to have exactly one cell per column.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// One result column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Column {
    pub name: String,
    /// The type as `format_type()` spells it, e.g. `numeric`, `double precision`, `bigint`,
    /// `date`, `text`, `timestamp with time zone`, `boolean`, `numeric(12,2)`.
    pub sql_type: String,
}

/// Base type names (modifiers such as `(12,2)` removed) whose values are numbers.
const NUMERIC_TYPES: &[&str] = &[
    "numeric",
    "decimal",
    "smallint",
    "integer",
    "bigint",
    "real",
    "double precision",
];

impl Column {
    /// Creates a column from its name and `format_type()` spelling.
    pub fn new(name: impl Into<String>, sql_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            sql_type: sql_type.into(),
        }
    }

    /// Whether values of this column are numbers (`numeric`/`decimal` with or without
    /// precision, `smallint`, `integer`, `bigint`, `real`, `double precision`).
    ///
    /// Arrays (`numeric[]`) and `money` (printed with a currency symbol) are not numeric.
    pub fn is_numeric(&self) -> bool {
        let sql_type = self.sql_type.trim().to_ascii_lowercase();
        let base_type = match sql_type.split_once('(') {
            Some((base, modifiers)) if modifiers.ends_with(')') => base.trim_end(),
            _ => sql_type.as_str(),
        };
        NUMERIC_TYPES.contains(&base_type)
    }
}

impl Table {
    /// Index of the first column called `name` (exact, case-sensitive match, as PostgreSQL
    /// reports result column names).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|column| column.name == name)
    }

    /// The column names, in order.
    pub fn column_names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|column| column.name.as_str())
    }
}

#[cfg(test)]
impl Table {
    /// A table for tests, written out as text: `(name, sql_type)` per column and each
    /// row's cells as PostgreSQL would print them (`None` = NULL).
    pub fn from_text(columns: &[(&str, &str)], rows: &[&[Option<&str>]]) -> Table {
        Table {
            columns: columns
                .iter()
                .map(|(name, sql_type)| Column::new(*name, *sql_type))
                .collect(),
            rows: rows
                .iter()
                .map(|row| row.iter().map(|cell| cell.map(str::to_owned)).collect())
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_types_are_recognised_with_and_without_modifiers() {
        for sql_type in [
            "numeric",
            "numeric(12,2)",
            "NUMERIC",
            "decimal",
            "smallint",
            "integer",
            "bigint",
            "real",
            "double precision",
        ] {
            assert!(Column::new("c", sql_type).is_numeric(), "{sql_type}");
        }
    }

    #[test]
    fn non_numeric_types_are_not_numeric() {
        for sql_type in [
            "text",
            "date",
            "timestamp with time zone",
            "boolean",
            "numeric[]",
            "money",
            "interval",
            "character varying(10)",
        ] {
            assert!(!Column::new("c", sql_type).is_numeric(), "{sql_type}");
        }
    }

    #[test]
    fn column_index_finds_the_first_match() {
        let table = Table {
            columns: vec![
                Column::new("date", "date"),
                Column::new("close", "numeric"),
                Column::new("close", "numeric"),
            ],
            rows: vec![],
        };
        assert_eq!(table.column_index("close"), Some(1));
        assert_eq!(table.column_index("Close"), None);
        assert_eq!(
            table.column_names().collect::<Vec<_>>(),
            ["date", "close", "close"]
        );
    }
}
