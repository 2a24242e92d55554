{#-
  avg_volume_last_quarter.sql from the monthly OHLCV aggregate: a quarter is three
  whole months, and the average daily volume is sum(volume) / sum(volume_days) (days
  without a volume are not counted), so the result is exactly the raw query's.
-#}
WITH quarter AS (
    SELECT (date_trunc('quarter', ({{ as_of }} + 1)::timestamp) - INTERVAL '3 months')::date AS first_day,
           date_trunc('quarter', ({{ as_of }} + 1)::timestamp)::date AS next_first_day
)
SELECT {{ symbol }}::text                                          AS symbol,
       to_char(q.first_day, 'YYYY-"Q"Q')                           AS quarter,
       q.first_day                                                 AS quarter_start,
       q.next_first_day - 1                                        AS quarter_end,
       coalesce(sum(m.trading_days), 0)                            AS trading_days,
       coalesce(sum(m.volume_days), 0)                             AS days_with_volume,
       round(sum(m.volume) / nullif(sum(m.volume_days), 0), 2)     AS avg_volume
FROM quarter q
LEFT JOIN {{ ohlcv('monthly') }} m
       ON m.symbol = {{ symbol }}
      AND m.bucket >= q.first_day
      AND m.bucket <  q.next_first_day
GROUP BY q.first_day, q.next_first_day
