//! runner's SQL helpers, installed in the `analytics` schema before analyses run.
//!
//! `analytics.smooth(x, alpha, warmup, seed)` is the recursive smoothing behind EMA,
//! MACD and Wilder's RSI/ATR, as an aggregate so it runs as a window function in one
//! pass (`OVER (PARTITION BY symbol ORDER BY day)`): the first `warmup` non-NULL inputs
//! are averaged, and from then on `v = alpha * x + (1 - alpha) * v`. NULL inputs leave
//! the value unchanged. `seed` (`ARRAY[n, v, 0]`, or NULL) continues a series from a
//! stored value, which is how incremental indicators compute only the new days and
//! still match a run over the whole history exactly. The state is `{count, value, sum}`.

use diesel::connection::SimpleConnection;
use diesel::PgConnection;

use super::refs::SCHEMA;
use super::AnalysisError;
use crate::error::Result;

/// Idempotent; safe to run concurrently with readers (each statement replaces in place).
const INSTALL: &str = r#"
CREATE SCHEMA IF NOT EXISTS analytics;
CREATE OR REPLACE FUNCTION analytics.smooth_step(state float8[], x float8, alpha float8, warmup integer, seed float8[])
RETURNS float8[] LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$
DECLARE
    n float8;
BEGIN
    IF state IS NULL THEN
        state := coalesce(seed, ARRAY[0, NULL, 0]::float8[]);
    END IF;
    IF x IS NULL THEN
        RETURN state;
    END IF;
    n := state[1] + 1;
    IF n < warmup THEN
        RETURN ARRAY[n, NULL, state[3] + x];
    ELSIF n = warmup THEN
        RETURN ARRAY[n, (state[3] + x) / warmup, 0];
    END IF;
    RETURN ARRAY[n, alpha * x + (1 - alpha) * state[2], 0];
END
$fn$;
-- plpgsql rather than sql: a window aggregate calls it for every row, and a non-inlined
-- SQL function costs more per call (measured: about a quarter of smooth's time).
CREATE OR REPLACE FUNCTION analytics.smooth_final(state float8[])
RETURNS float8 LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $fn$ BEGIN RETURN state[2]; END $fn$;
CREATE OR REPLACE AGGREGATE analytics.smooth(float8, float8, integer, float8[]) (
    SFUNC = analytics.smooth_step,
    STYPE = float8[],
    FINALFUNC = analytics.smooth_final
);
"#;

/// Create the analytics schema and the helper functions (no-op when current).
///
/// # Errors
/// When the database refuses (e.g. no CREATE privilege on the database).
pub fn install(conn: &mut PgConnection) -> Result<()> {
    debug_assert!(INSTALL.contains(SCHEMA));
    conn.batch_execute(INSTALL).map_err(|source| {
        AnalysisError::InstallHelpers {
            schema: SCHEMA,
            source,
        }
        .into()
    })
}
