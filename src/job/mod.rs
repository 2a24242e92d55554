//! Job files: parse (`spec`), expand variables (`vars`) and validate into a [`Job`]
//! (`plan`). Only the checked `Job` leaves this module.

pub mod feed;
mod plan;
pub mod spec;
pub mod vars;

pub use plan::{load, Analysis, IngestSource, Job, ReportSettings, DEFAULT_DATABASE_URL};
pub use spec::{Materialize, OutputFormat, SourceKind};
pub use vars::{VarValue, Vars};
