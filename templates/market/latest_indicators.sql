{#-
  Each chosen symbol's indicators on its last trading day up to as_of (looking back at
  most 14 calendar days, so a delisted symbol does not show stale values), rounded for
  reading; the full-precision values are in analytics.indicators.
-#}
SELECT DISTINCT ON (symbol)
       symbol, day, close,
       round((100 * simple_return)::numeric, 2) AS return_pct,
       round(sma20::numeric, 2)        AS sma20,
       round(sma50::numeric, 2)        AS sma50,
       round(sma200::numeric, 2)       AS sma200,
       round(ema12::numeric, 2)        AS ema12,
       round(ema26::numeric, 2)        AS ema26,
       round(macd::numeric, 4)         AS macd,
       round(macd_signal::numeric, 4)  AS macd_signal,
       round(rsi14::numeric, 2)        AS rsi14,
       round(bb_lower::numeric, 2)     AS bb_lower,
       round(bb_upper::numeric, 2)     AS bb_upper,
       round(atr14::numeric, 4)        AS atr14,
       round((100 * vol20)::numeric, 2) AS vol20_pct
FROM {{ ref('indicators') }}
WHERE day <= {{ as_of }}
  AND day >  {{ as_of }} - 14
{% if symbols %}
  AND symbol IN {{ symbols }}
{% endif %}
ORDER BY symbol, day DESC
