{#-
  Maximum drawdown of each chosen symbol over the trading days in the `period_days`
  calendar days up to as_of: the largest fall from a running peak close to a later
  close, as a percentage (negative), with the peak and the trough. Ties go to the
  earliest trough and, for it, the earliest peak. 0 when the price never fell.
-#}
WITH period AS (
    SELECT symbol, day, close,
           max(close) OVER (PARTITION BY symbol ORDER BY day) AS running_peak
    FROM daily_prices
    WHERE day >  {{ as_of }} - {{ period_days }}
      AND day <= {{ as_of }}
{% if symbols %}
      AND symbol IN {{ symbols }}
{% endif %}
), trough AS (
    SELECT DISTINCT ON (symbol) symbol, day AS trough_day, close AS trough_close,
           running_peak, close / running_peak - 1 AS drawdown
    FROM period
    ORDER BY symbol, close / running_peak - 1, day
)
SELECT t.symbol,
       round((100 * t.drawdown)::numeric, 2) AS max_drawdown_pct,
       pk.day AS peak_day, t.running_peak AS peak_close,
       t.trough_day, t.trough_close
FROM trough t
CROSS JOIN LATERAL (
    SELECT day FROM period p
    WHERE p.symbol = t.symbol AND p.day <= t.trough_day AND p.close = t.running_peak
    ORDER BY p.day LIMIT 1
) pk
ORDER BY t.drawdown, t.symbol
