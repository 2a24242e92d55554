//! A result parked on local disk between reading it (read-only) and writing it into an
//! analysis's table (read-write): `materialize` cannot do both in one statement without
//! letting the template write, and must not hold the rows in memory. One JSON array per
//! line keeps NULL apart from the empty string; the file is removed when dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use super::sink::Row;

static NEXT: AtomicU64 = AtomicU64::new(0);

pub struct Spill {
    path: PathBuf,
    writer: BufWriter<File>,
    rows: u64,
}

impl Spill {
    /// An empty spill file in the system's temporary folder.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn new() -> std::io::Result<Spill> {
        let path = std::env::temp_dir().join(format!(
            "runner-spill-{}-{}.jsonl",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        Ok(Spill {
            path,
            writer: BufWriter::new(file),
            rows: 0,
        })
    }

    /// Add one row.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn push(&mut self, row: &Row) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.writer, row)?;
        self.writer.write_all(b"\n")?;
        self.rows += 1;
        Ok(())
    }

    /// How many rows were added.
    pub fn len(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Read the rows back in batches of up to `batch`, in the order they were added.
    ///
    /// # Errors
    /// When the file cannot be read, or `each` fails.
    pub fn for_each_batch<E: From<std::io::Error>>(
        &mut self,
        batch: usize,
        mut each: impl FnMut(Vec<Row>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.writer.flush()?;
        let mut file = self.writer.get_ref().try_clone()?;
        file.seek(SeekFrom::Start(0))?;
        let mut rows = Vec::with_capacity(batch.min(self.rows as usize));
        for line in BufReader::new(file).lines() {
            let row: Row = serde_json::from_str(&line?).map_err(std::io::Error::from)?;
            rows.push(row);
            if rows.len() == batch {
                each(std::mem::take(&mut rows))?;
            }
        }
        if !rows.is_empty() {
            each(rows)?;
        }
        Ok(())
    }
}

impl Drop for Spill {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
