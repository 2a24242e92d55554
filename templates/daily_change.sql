{#-
  Day-over-day close change per symbol for the trading days in the `days` calendar days
  up to as_of, with LAG partitioned by symbol.

  The usual mistake is to filter to the period first and then LAG: the first day of the
  period then has no previous close. Here each symbol's last row before the period is
  added (an index lookup per symbol) so every day in the period has its previous close.
-#}
WITH period AS (
    SELECT symbol, day, close
    FROM daily_prices
    WHERE day >  {{ as_of }} - {{ days }}
      AND day <= {{ as_of }}
{% if symbols %}
      AND symbol IN {{ symbols }}
{% endif %}
), previous AS (
    SELECT s.symbol, prev.day, prev.close
    FROM (SELECT DISTINCT symbol FROM period) s
    CROSS JOIN LATERAL (
        SELECT p.day, p.close
        FROM daily_prices p
        WHERE p.symbol = s.symbol
          AND p.day <= {{ as_of }} - {{ days }}
        ORDER BY p.day DESC
        LIMIT 1
    ) prev
), changes AS (
    SELECT symbol, day, close,
           lag(day)   OVER w AS prev_day,
           lag(close) OVER w AS prev_close
    FROM (SELECT * FROM period UNION ALL SELECT * FROM previous) rows
    WINDOW w AS (PARTITION BY symbol ORDER BY day)
)
SELECT symbol, day, close, prev_day, prev_close,
       round((close - prev_close)::numeric, 6)               AS change,
       round((100 * (close / prev_close - 1))::numeric, 4)   AS pct_change
FROM changes
WHERE day > {{ as_of }} - {{ days }}
ORDER BY symbol, day
