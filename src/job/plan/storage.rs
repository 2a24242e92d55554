//! `[storage]`: chunking, compression, retention and aggregates, with defaults filled in.

use toml::Spanned;

use super::Planner;
use crate::db::storage::{Aggregate, PgInterval, StorageSettings};
use crate::job::spec::JobSpec;

impl Planner<'_> {
    /// `[storage]` with defaults filled in; every bad value is a problem at its key.
    pub(super) fn storage(&mut self, spec: &JobSpec) -> StorageSettings {
        let s = &spec.storage;
        let mut settings = StorageSettings::default();
        if let Some(v) = &s.chunk_interval {
            if let Some(i) = self.interval(v, "chunk_interval") {
                settings.chunk_days = i.approx_days();
            }
        }
        if let Some(v) = &s.compress_after {
            settings.compress_after = self
                .interval(v, "compress_after")
                .or(settings.compress_after);
        }
        if s.compression == Some(false) {
            settings.compress_after = None;
        }
        if let Some(v) = &s.retention {
            settings.retention = self.interval(v, "retention");
        }
        if let Some(names) = &s.aggregates {
            settings.aggregates.clear();
            for name in names {
                match Aggregate::from_name(name.get_ref()) {
                    Some(a) => {
                        settings.aggregates.insert(a);
                    }
                    None => {
                        self.problem_at(
                            name,
                            "storage.aggregates",
                            format!(
                                "unknown aggregate `{}`; runner keeps `weekly` and `monthly`",
                                name.get_ref()
                            ),
                        );
                    }
                }
            }
        }
        settings.maintain_after_ingest = s.maintain_after_ingest.unwrap_or(false);
        settings
    }

    /// `storage.<key>` read as an interval, or a problem at it.
    fn interval(&mut self, value: &Spanned<String>, key: &str) -> Option<PgInterval> {
        match PgInterval::parse(value.get_ref()) {
            Ok(i) => Some(i),
            Err(error) => {
                self.problem_at(value, format!("storage.{key}"), error.to_string());
                None
            }
        }
    }
}
