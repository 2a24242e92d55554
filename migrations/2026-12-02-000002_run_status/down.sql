ALTER TABLE runs DROP COLUMN report_dir;
ALTER TABLE runs DROP COLUMN exit_code;
UPDATE runs SET status = 'failed' WHERE status IN ('partial', 'abandoned', 'skipped');
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check CHECK (status IN ('running', 'succeeded', 'failed'));
