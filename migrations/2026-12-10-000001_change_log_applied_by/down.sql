ALTER TABLE change_log DROP COLUMN applied_by;
