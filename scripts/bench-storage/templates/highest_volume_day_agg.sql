{#-
  highest_volume_day.sql via the monthly OHLCV aggregate: each symbol's record month
  (the earliest month holding its maximum volume, from ~150 rows per symbol instead of
  ~3,000 bars), then one index lookup for the earliest day of that month with that
  volume. The month of as_of may be partial, so its days up to as_of come from the
  bars themselves. Same answer and tie-breaking as the raw query.
-#}
WITH month_of_as_of AS (
    SELECT date_trunc('month', {{ as_of }}::timestamp)::date AS first_day
), candidates AS (
    SELECT m.symbol, m.bucket AS from_day, (m.bucket + INTERVAL '1 month')::date AS to_day, m.max_volume
    FROM {{ ohlcv('monthly') }} m, month_of_as_of a
    WHERE m.bucket < a.first_day
      AND m.max_volume IS NOT NULL
    UNION ALL
    SELECT p.symbol, a.first_day, {{ as_of }} + 1, max(p.volume)
    FROM daily_prices p, month_of_as_of a
    WHERE p.day >= a.first_day
      AND p.day <= {{ as_of }}
      AND p.volume IS NOT NULL
    GROUP BY p.symbol, a.first_day
), best AS (
    SELECT DISTINCT ON (symbol) symbol, from_day, to_day, max_volume
    FROM candidates
    ORDER BY symbol, max_volume DESC, from_day
)
SELECT b.symbol, d.day, d.volume, d.close
FROM best b
CROSS JOIN LATERAL (
    SELECT p.day, p.volume, p.close
    FROM daily_prices p
    WHERE p.symbol = b.symbol
      AND p.day >= b.from_day
      AND p.day <  b.to_day
      AND p.volume = b.max_volume
    ORDER BY p.day
    LIMIT 1
) d
ORDER BY b.symbol
