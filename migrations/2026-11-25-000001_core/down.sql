DROP TABLE runs;
DROP VIEW instruments;
DROP TABLE data_quality;
DROP TABLE ingest_rejects;
DROP TABLE ingest_files;
DROP TABLE daily_prices;
DROP TABLE symbols;
