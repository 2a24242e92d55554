{#-
  Average daily volume of one symbol over the last full calendar quarter before as_of.

  A quarter counts as full once as_of reaches its last day: as_of = 2020-04-01 or
  2020-03-31 reports Q1 2020, as_of = 2020-03-30 reports Q4 2019. Using as_of rather
  than now() keeps the report reproducible; the half-open day range avoids the
  BETWEEN-with-timestamps off-by-one; avg() over bigint is numeric, so no integer
  division; days without a volume are not counted as zero.
-#}
WITH quarter AS (
    SELECT (date_trunc('quarter', ({{ as_of }} + 1)::timestamp) - INTERVAL '3 months')::date AS first_day,
           date_trunc('quarter', ({{ as_of }} + 1)::timestamp)::date AS next_first_day
)
SELECT {{ symbol }}::text                       AS symbol,
       to_char(q.first_day, 'YYYY-"Q"Q')        AS quarter,
       q.first_day                              AS quarter_start,
       q.next_first_day - 1                     AS quarter_end,
       count(p.day)                             AS trading_days,
       count(p.volume)                          AS days_with_volume,
       round(avg(p.volume), 2)                  AS avg_volume
FROM quarter q
LEFT JOIN daily_prices p
       ON p.symbol = {{ symbol }}
      AND p.day >= q.first_day
      AND p.day <  q.next_first_day
GROUP BY q.first_day, q.next_first_day
