//! `ref('name')`: how one analysis reads another's materialized result.
//!
//! `ref` renders the quoted relation (`"analytics"."name"`) and records the name, so the
//! dependency graph is inferred from the templates themselves (declared `depends_on`
//! adds to it). Materialized results live in their own schema, [`SCHEMA`], created by
//! runner: users' relations there cannot clash with runner's tables in `public`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use minijinja::value::Value;
use minijinja::{Environment, Error, ErrorKind};

use crate::db::quote;
use crate::job::{Job, Materialize};

/// The schema materialized analyses (and runner's SQL helper functions) live in.
pub const SCHEMA: &str = "analytics";

/// `"analytics"."name"`: the relation an analysis materializes into.
pub fn relation(name: &str) -> String {
    format!("{}.{}", quote::ident(SCHEMA), quote::ident(name))
}

/// The names `ref()` was called with while rendering one template.
#[derive(Debug, Clone, Default)]
pub struct Recorder(Arc<Mutex<BTreeSet<String>>>);

impl Recorder {
    /// The names recorded since the last call (and forget them).
    pub fn take(&self) -> BTreeSet<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn record(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned());
    }
}

/// Add `ref(name)` to `env`: only analyses of `job` that materialize may be referenced,
/// so a typo or a forgotten `materialize` is a template error pointing at the line.
pub fn add_ref_function(env: &mut Environment<'static>, job: &Job, recorder: Recorder) {
    let kinds: BTreeMap<String, Option<Materialize>> = job
        .analyses
        .iter()
        .map(|a| (a.name.clone(), a.materialize))
        .collect();
    env.add_function("ref", move |name: String| -> Result<Value, Error> {
        match kinds.get(&name) {
            None => {
                let hint = crate::error::suggest(&name, kinds.keys().map(String::as_str))
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("ref('{name}'): the job has no analysis `{name}`{hint}"),
                ))
            }
            Some(None) => Err(Error::new(
                ErrorKind::InvalidOperation,
                format!(
                    "ref('{name}'): analysis `{name}` is not materialized; give it \
                     `materialize = \"table\"`, `\"view\"` or `\"incremental\"`"
                ),
            )),
            Some(Some(_)) => {
                recorder.record(&name);
                Ok(Value::from_safe_string(relation(&name)))
            }
        }
    });
}
