-- The rollups are continuous aggregates with TimescaleDB, tables without.
DO $$
DECLARE
    rollup text;
BEGIN
    FOREACH rollup IN ARRAY ARRAY['intraday_daily', 'intraday_hourly'] LOOP
        -- Nested, not `AND`: without TimescaleDB its catalog views do not exist.
        IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
            EXECUTE format('DROP MATERIALIZED VIEW IF EXISTS %I', rollup);
        ELSE
            EXECUTE format('DROP TABLE IF EXISTS %I', rollup);
        END IF;
    END LOOP;
END $$;
DROP TABLE intraday_quality;
DROP TABLE stream_rejects;
DROP TABLE stream_offsets;
DROP TABLE intraday_bars;
