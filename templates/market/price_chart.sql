{#-
  Daily bars of `chart_symbol` for the last `chart_days` calendar days up to as_of, with
  the moving averages and Bollinger bands to draw over the candles, and MACD.
-#}
SELECT p.day, p.open, p.high, p.low, p.close, p.volume,
       round(i.sma20::numeric, 4)       AS sma20,
       round(i.sma50::numeric, 4)       AS sma50,
       round(i.bb_upper::numeric, 4)    AS bb_upper,
       round(i.bb_lower::numeric, 4)    AS bb_lower,
       round(i.macd::numeric, 4)        AS macd,
       round(i.macd_signal::numeric, 4) AS macd_signal,
       round(i.rsi14::numeric, 2)       AS rsi14
FROM daily_prices p
JOIN {{ ref('indicators') }} i USING (symbol, day)
WHERE p.symbol = {{ chart_symbol }}
  AND p.day <= {{ as_of }}
  AND p.day >  {{ as_of }} - {{ chart_days }}
ORDER BY p.day
