#!/usr/bin/env bash
# Storage benchmark: sizes raw vs compressed, and the latency of the four headline
# analyses on raw data, via the OHLCV aggregates, and on plain PostgreSQL — each as a
# ratio against an unoptimised baseline (no primary key index, no aggregates) measured
# in the same run. Results go to stdout as Markdown rows and to $OUT (TSV).
#
#   scripts/bench-storage/bench.sh DATA_DIR [RUNS]
#
# DATA_DIR is a `runner generate` output (stocks/, etfs/, symbols_valid_meta.csv).
# Environment: RUNNER (default target/release/runner), PG_URL and TS_URL (the plain
# PostgreSQL and TimescaleDB databases to (re)create), OUT (default /tmp/bench-storage.tsv).
# Loads millions of rows: run it under `flock /tmp/runner-bench.lock`.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
data=$(cd "${1:?usage: bench.sh DATA_DIR [RUNS]}" && pwd)
runs=${2:-3}
runner=${RUNNER:-$repo/target/release/runner}
pg_url=${PG_URL:-postgres://postgres@127.0.0.1:5432/bench_storage}
ts_url=${TS_URL:-postgres://postgres@127.0.0.1:5433/bench_storage}
out=${OUT:-/tmp/bench-storage.tsv}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A glob, not `ls | head`: with pipefail, head closing the pipe early kills ls (SIGPIPE).
stock_files=("$data"/stocks/*.csv)
symbol=$(basename "${stock_files[0]}" .csv)
raw=(avg_volume_last_quarter weekly_avg_close daily_change highest_volume_day)
agg=(avg_volume_last_quarter_agg weekly_avg_close_agg highest_volume_day_agg)

mkdir -p "$work/jobs" "$work/templates"
cp "$repo"/templates/*.sql "$repo"/scripts/bench-storage/templates/*.sql "$work/templates/"
job() { # $1 = compression true|false
    cat <<EOF
name = "bench"
[vars]
symbol = "$symbol"
weeks = 12
days = 14
symbols = []
as_of = 2020-04-01
[[ingest]]
kind = "prices"
paths = ["$data/stocks/*.csv", "$data/etfs/*.csv"]
[storage]
compression = $1
[report]
formats = ["csv"]
EOF
    for a in "${raw[@]}" "${agg[@]}"; do printf '[[analysis]]\nname = "%s"\ntemplate = "%s.sql"\n' "$a" "$a"; done
}
job false > "$work/jobs/raw.toml"
job true > "$work/jobs/compressed.toml"

# Rendered SQL per analysis and dialect (render needs no database).
for a in "${raw[@]}" "${agg[@]}"; do
    "$runner" render "$work/jobs/raw.toml" --select "$a" | sed '/^-- analysis:/d' > "$work/$a.pg.sql"
    "$runner" render "$work/jobs/raw.toml" --select "$a" --var timescaledb=true | sed '/^-- analysis:/d' > "$work/$a.ts.sql"
done

: > "$out"
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" | tee -a "$out"; }

# Median wall time (ms, psql \timing, results discarded) of $runs runs, after one warm-up.
# A statement over $TIMEOUT (default 60 s) is cancelled and recorded as `>TIMEOUT ms`
# (e.g. daily_change without any index: one full scan per symbol).
timeout_s=${TIMEOUT:-60}
median_ms() { # url sqlfile
    local times=()
    for i in $(seq 0 "$runs"); do
        t=$( { echo "SET statement_timeout = '${timeout_s}s';"; echo '\timing on'; echo '\o /dev/null'; cat "$2"; } \
            | psql -X -q "$1" 2>&1 | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1)
        if [ -z "$t" ]; then echo ">$((timeout_s * 1000))"; return; fi
        [ "$i" -gt 0 ] && times+=("$t")
    done
    printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'
}
measure() { # backend phase dialect analyses...
    local backend=$1 phase=$2 dialect=$3; shift 3
    local url=$pg_url; [ "$backend" = timescaledb ] && url=$ts_url
    for a in "$@"; do record "$backend" "$phase" "$a" "$(median_ms "$url" "$work/$a.$dialect.sql")"; done
}
elapsed() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }
scalar() { psql -X -qAt "$1" -c "$2"; }
fresh() { # url
    local admin=${1%/*}/postgres name=${1##*/}
    psql -X -q "$admin" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)"
}
load() { # url backend
    fresh "$1"
    local started=$(date +%s.%N)
    DATABASE_URL=$1 "$runner" run "$work/jobs/raw.toml" --select avg_volume_last_quarter 2>&1 | grep -E '^ingest:' || true
    record "$2" load seconds "$(elapsed "$started")"
    DATABASE_URL=$1 "$runner" maintain "$work/jobs/raw.toml" --out "$work/maintain-$2.md" > /dev/null
}
baseline() { # url backend dialect: drop the primary key (and so its index), measure, restore
    psql -X -q "$1" -c "ALTER TABLE daily_prices DROP CONSTRAINT daily_prices_pkey" -c "ANALYZE daily_prices"
    measure "$2" baseline "$3" "${raw[@]}"
    local started=$(date +%s.%N)
    psql -X -q "$1" -c "ALTER TABLE daily_prices ADD PRIMARY KEY (symbol, day)" -c "ANALYZE daily_prices"
    record "$2" restore_pk seconds "$(elapsed "$started")"
}

echo "symbol: $symbol; runs: $runs; rows: (after load)"

# Plain PostgreSQL: aggregates are runner-refreshed tables. SKIP_PG_LOAD=1 reuses a
# database loaded by an earlier run (restoring its primary key if that run stopped).
if [ -n "${SKIP_PG_LOAD:-}" ]; then
    psql -X -q "$pg_url" -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conname = 'daily_prices_pkey') THEN ALTER TABLE daily_prices ADD PRIMARY KEY (symbol, day); END IF; END \$\$"
else
    load "$pg_url" postgres
fi
record postgres rows count "$(scalar "$pg_url" 'SELECT count(*) FROM daily_prices')"
record postgres size_prices bytes "$(scalar "$pg_url" "SELECT pg_total_relation_size('daily_prices')")"
record postgres size_aggregates bytes "$(scalar "$pg_url" "SELECT pg_total_relation_size('prices_weekly') + pg_total_relation_size('prices_monthly')")"
baseline "$pg_url" postgres pg
measure postgres indexed pg "${raw[@]}"
measure postgres aggregates pg "${agg[@]}"

# TimescaleDB, uncompressed.
load "$ts_url" timescaledb
record timescaledb size_prices bytes "$(scalar "$ts_url" "SELECT hypertable_size('daily_prices')")"
record timescaledb size_aggregates bytes "$(scalar "$ts_url" "SELECT sum(hypertable_size(format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)::regclass)) FROM timescaledb_information.continuous_aggregates")"
baseline "$ts_url" timescaledb ts
measure timescaledb indexed ts "${raw[@]}"
measure timescaledb aggregates ts "${agg[@]}"

# TimescaleDB, compressed by `runner maintain` (every chunk is older than a year).
started=$(date +%s.%N)
DATABASE_URL=$ts_url "$runner" maintain "$work/jobs/compressed.toml" --out "$work/maintain-compressed.md" > /dev/null
record timescaledb compress seconds "$(elapsed "$started")"
record timescaledb size_prices_compressed bytes "$(scalar "$ts_url" "SELECT hypertable_size('daily_prices')")"
measure timescaledb compressed ts "${raw[@]}"
measure timescaledb compressed_aggregates ts "${agg[@]}"
grep -E '^\| (compression ratio|chunks|compressed chunks)' "$work/maintain-compressed.md" || true
cp "$work"/maintain-*.md "$(dirname "$out")/" 2>/dev/null || true
