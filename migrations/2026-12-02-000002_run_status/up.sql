-- Runs say what happened: `partial` (some files or analyses failed, exit 1),
-- `abandoned` (the process died; found by a later run holding the lock) and `skipped`
-- (another run held the lock and this one was told not to wait), with the exit code.
ALTER TABLE runs DROP CONSTRAINT runs_status_check;
ALTER TABLE runs ADD CONSTRAINT runs_status_check
    CHECK (status IN ('running', 'succeeded', 'partial', 'failed', 'abandoned', 'skipped'));
ALTER TABLE runs ADD COLUMN exit_code integer;
ALTER TABLE runs ADD COLUMN report_dir text;
