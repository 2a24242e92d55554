//! Schema migrations, embedded in the binary so a fresh machine needs no diesel CLI.

use diesel::pg::Pg;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

use crate::error::Result;

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// diesel_migrations reports its errors boxed.
type MigrationFailure = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration failed: {0}")]
    Apply(#[source] MigrationFailure),
    #[error("cannot read applied migrations: {0}")]
    ReadApplied(#[source] MigrationFailure),
}

/// Apply pending migrations; returns the versions applied (empty when up to date).
///
/// # Errors
/// When a migration fails; it is rolled back, as each runs in its own transaction.
pub fn run_pending(conn: &mut impl MigrationHarness<Pg>) -> Result<Vec<String>> {
    let applied = conn
        .run_pending_migrations(MIGRATIONS)
        .map_err(MigrateError::Apply)?;
    Ok(applied.iter().map(ToString::to_string).collect())
}

/// Versions already applied, oldest first.
pub fn applied(conn: &mut impl MigrationHarness<Pg>) -> Result<Vec<String>> {
    let mut versions: Vec<String> = conn
        .applied_migrations()
        .map_err(MigrateError::ReadApplied)?
        .iter()
        .map(ToString::to_string)
        .collect();
    versions.sort();
    Ok(versions)
}
