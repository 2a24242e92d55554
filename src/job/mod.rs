//! Job files: parse (`spec`), expand variables (`vars`) and validate into a [`Job`]
//! (`plan`). Only the checked `Job` leaves this module, with the vocabulary it is
//! written in: the data-quality `rules` and which `database` a job uses. `ingest` reads
//! the `Job` and these rules; `job` does not import `ingest` (finding the files a
//! pattern matches is `ingest::discover`'s work).

pub mod database;
pub mod datatest;
pub mod feed;
mod plan;
pub mod rules;
pub mod schedule;
pub mod spec;
pub mod vars;

pub use database::{fallback_database_url, DEFAULT_DATABASE_URL};
pub use plan::{load, Analysis, IngestSource, Job, ReportSettings, SourcePattern};
pub use spec::{Materialize, OnMissing, OutputFormat, SourceKind};
pub use vars::{VarValue, Vars};
