//! What the server can do, detected once at connect time and passed down: the server
//! version and whether TimescaleDB is in this database, available to create, or absent.
//! Everything TimescaleDB-specific branches on this value, never on a guess.

use diesel::prelude::*;
use diesel::sql_types::{Integer, Nullable, Text};

use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Timescale {
    /// The extension exists in this database.
    Installed {
        version: String,
        license: Option<String>,
    },
    /// The server has it, but it is not created in this database (or could not be).
    Available {
        version: String,
        reason: Option<String>,
    },
    /// Not on this server.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Capabilities {
    /// e.g. `15.20 (Debian 15.20-0+deb12u1)`.
    pub server_version: String,
    /// e.g. `150020`.
    pub server_version_num: i32,
    pub timescale: Timescale,
    /// `pg_stat_statements` is created in this database.
    pub pg_stat_statements: bool,
}

impl Capabilities {
    /// True when runner uses hypertables, `time_bucket` and continuous aggregates.
    pub fn has_timescale(&self) -> bool {
        matches!(self.timescale, Timescale::Installed { .. })
    }

    /// One line for logs and report headers.
    pub fn describe(&self) -> String {
        let pg = format!(
            "PostgreSQL {}",
            self.server_version.split_whitespace().next().unwrap_or("?")
        );
        match &self.timescale {
            Timescale::Installed { version, license } => format!(
                "{pg} + TimescaleDB {version}{}",
                license
                    .as_ref()
                    .map(|l| format!(" ({l} license)"))
                    .unwrap_or_default()
            ),
            Timescale::Available { version, .. } => {
                format!("{pg} (TimescaleDB {version} available, not used)")
            }
            Timescale::Absent => format!("{pg} (no TimescaleDB: plain PostgreSQL equivalents)"),
        }
    }
}

#[derive(QueryableByName)]
struct ServerRow {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Integer)]
    version_num: i32,
    #[diesel(sql_type = Nullable<Text>)]
    installed: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    available: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    statements: Option<String>,
    #[diesel(sql_type = Text)]
    preload: String,
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

const DETECT: &str = "SELECT current_setting('server_version') AS version, \
        current_setting('server_version_num')::int AS version_num, \
        (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS installed, \
        (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS available, \
        (SELECT extversion FROM pg_extension WHERE extname = 'pg_stat_statements') AS statements, \
        current_setting('shared_preload_libraries') AS preload";

/// Look at the server; with `create_extension`, create TimescaleDB in this database when
/// the server offers it (it must be in `shared_preload_libraries` for that to work; if it
/// is not, runner notes why and carries on with plain PostgreSQL).
pub fn detect(conn: &mut PgConnection, create_extension: bool) -> Result<Capabilities> {
    let mut row: ServerRow = diesel::sql_query(DETECT)
        .get_result(conn)
        .map_err(super::db_error("detecting server capabilities"))?;
    let mut reason = None;
    // Without preloading, CREATE EXTENSION fails and TimescaleDB's loader also ends the
    // session, so look before trying.
    let preloaded = row
        .preload
        .split(',')
        .any(|lib| lib.trim().trim_matches('"') == "timescaledb");
    if row.installed.is_none() && row.available.is_some() && !preloaded {
        reason = Some("timescaledb is not in shared_preload_libraries".to_owned());
    } else if row.installed.is_none() && row.available.is_some() && create_extension {
        match conn.transaction(|c| {
            diesel::sql_query("CREATE EXTENSION IF NOT EXISTS timescaledb").execute(c)
        }) {
            Ok(_) => {
                tracing::info!("created the timescaledb extension in this database");
                row = diesel::sql_query(DETECT)
                    .get_result(conn)
                    .map_err(super::db_error("detecting server capabilities"))?;
            }
            Err(e) => {
                tracing::warn!(error = %e, "TimescaleDB is available but could not be created; using plain PostgreSQL");
                reason = Some(e.to_string());
            }
        }
    }
    let timescale = match (row.installed, row.available) {
        (Some(version), _) => {
            let license: Option<String> =
                diesel::sql_query("SELECT current_setting('timescaledb.license', true) AS value")
                    .get_result::<Setting>(conn)
                    .ok()
                    .and_then(|s| s.value);
            Timescale::Installed { version, license }
        }
        (None, Some(version)) => Timescale::Available { version, reason },
        (None, None) => Timescale::Absent,
    };
    Ok(Capabilities {
        server_version: row.version,
        server_version_num: row.version_num,
        timescale,
        pg_stat_statements: row.statements.is_some(),
    })
}
