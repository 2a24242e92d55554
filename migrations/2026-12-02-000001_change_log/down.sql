DROP TABLE change_log_consumers;
DROP TABLE change_log;
