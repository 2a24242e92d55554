{#-
  "Today so far": each symbol's latest intraday session (from the `intraday_daily`
  rollup, fed by `runner stream`) next to its daily history in `daily_prices`: the
  previous close, the change since, and today's volume against the 20-session average.

  The rollup's bucket is the UTC day, which holds the whole US session. History is taken
  strictly before that day, so a session that is also loaded as a daily bar is not
  compared with itself. Symbols without history still appear, with NULL comparisons.
-#}
WITH today AS (
    SELECT symbol, (bucket AT TIME ZONE 'UTC')::date AS day,
           open, high, low, close, volume, bars
    FROM intraday_daily
    WHERE bucket = (SELECT max(bucket) FROM intraday_daily)
{% if symbols is defined and symbols %}
      AND symbol IN {{ symbols }}
{% endif %}
), history AS (
    SELECT t.symbol, h.prev_day, h.prev_close, h.avg_volume_20
    FROM today t
    CROSS JOIN LATERAL (
        SELECT max(p.day) AS prev_day,
               (array_agg(p.close ORDER BY p.day DESC))[1] AS prev_close,
               avg(p.volume) AS avg_volume_20
        FROM (
            SELECT day, close, volume FROM daily_prices
            WHERE symbol = t.symbol AND day < t.day
            ORDER BY day DESC LIMIT 20
        ) p
    ) h
)
SELECT t.symbol,
       t.day,
       t.bars,
       t.open,
       t.high,
       t.low,
       t.close AS last,
       h.prev_day,
       h.prev_close,
       round(((t.close / h.prev_close - 1) * 100)::numeric, 2) AS change_pct,
       t.volume AS volume_so_far,
       round(h.avg_volume_20::numeric, 0) AS avg_volume_20,
       round((t.volume / nullif(h.avg_volume_20, 0))::numeric, 2) AS volume_vs_avg
FROM today t
LEFT JOIN history h USING (symbol)
ORDER BY change_pct DESC NULLS LAST, t.symbol
