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
}

impl Planner<'_> {
    pub(super) fn report(&mut self, spec: &JobSpec, root: &Path, vars: &Vars) -> ReportSettings {
        let dir = match &spec.report.dir {
            Some(dir) => self.resolve(root, dir, vars, "report.dir"),
            None => root.join("reports").join(spec.name.get_ref().trim()),
        };
        ReportSettings {
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
