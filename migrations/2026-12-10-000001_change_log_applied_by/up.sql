-- Consumers that applied an entry in the same transaction that logged it: an ingest batch
-- that writes the weekly and monthly buckets of the symbols it replaces (computed while
-- parsing, on plain PostgreSQL) names those aggregates here, so their next drain skips the
-- entry instead of computing the same buckets again. Every other consumer still sees it.
ALTER TABLE change_log ADD COLUMN applied_by text[] NOT NULL DEFAULT '{}';
