//! `[report]`: where the reports go, in which formats, how many rows.

use std::path::{Path, PathBuf};

use super::Planner;
use crate::job::spec::{JobSpec, OutputFormat};
use crate::job::vars::Vars;

#[derive(Debug, Clone)]
pub struct ReportSettings {
    /// Reports of this job go below `dir/<as_of>/`, with `dir/latest` pointing at the newest.
    pub dir: PathBuf,
    pub formats: Vec<OutputFormat>,
    pub max_rows: usize,
    /// Without `as_of`, the run analyses the latest day this share of symbols reached.
    pub as_of_share: f64,
}

/// `as_of_share` when the job does not set it: the day most symbols reached.
pub const DEFAULT_AS_OF_SHARE: f64 = 0.5;

impl Planner<'_> {
    pub(super) fn report(&mut self, spec: &JobSpec, root: &Path, vars: &Vars) -> ReportSettings {
        let dir = match &spec.report.dir {
            Some(dir) => self.resolve(root, dir, vars, "report.dir"),
            None => root.join("reports").join(spec.name.get_ref().trim()),
        };
        let as_of_share = match &spec.report.as_of_share {
            None => DEFAULT_AS_OF_SHARE,
            Some(share) => {
                let value = *share.get_ref();
                if !(value > 0.0 && value <= 1.0) {
                    self.problem_at(
                        share,
                        "report.as_of_share",
                        format!("`as_of_share` must be above 0 and at most 1, found {value}"),
                    );
                }
                value
            }
        };
        ReportSettings {
            as_of_share,
            dir,
            formats: spec.report.formats.clone().unwrap_or_else(|| {
                vec![
                    OutputFormat::Csv,
                    OutputFormat::Markdown,
                    OutputFormat::Html,
                ]
            }),
            max_rows: spec.report.max_rows.unwrap_or(50),
        }
    }
}
