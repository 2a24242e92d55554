{#-
  Daily indicators of every symbol, materialized incrementally (analytics.indicators,
  unique on symbol and day). Conventions, checked against an independent computation in
  tests/it/indicators.rs:

  - simple_return = close / previous close - 1; log_return = ln(close / previous close);
    NULL on a symbol's first day.
  - sma20, sma50, sma200: mean of the last N closes, NULL until N closes exist.
  - ema12, ema26: alpha = 2 / (N + 1), seeded with the first close (pandas
    ewm(span=N, adjust=False)); macd = ema12 - ema26; macd_signal = EMA(9) of macd,
    seeded with the first macd; macd_hist = macd - macd_signal.
  - rsi14 (Wilder): gain / loss = the positive / negative part of the close change. The
    first averages are the means of the first 14 changes (day 15), then
    avg = x / 14 + avg * 13 / 14 (alpha = 1/14); rsi = 100 - 100 / (1 + avg_gain / avg_loss),
    100 when avg_loss is 0. The averages are kept (rsi_avg_gain, rsi_avg_loss).
  - Bollinger bands: bb_middle = sma20, bb_upper / bb_lower = sma20 +/- 2 population
    standard deviations of the last 20 closes (John Bollinger's definition).
  - tr = max(high - low, |high - previous close|, |low - previous close|), high - low on
    a symbol's first day; atr14 = Wilder's smoothing of tr (first value: mean of the
    first 14 TRs, day 14).
  - vol20: sample standard deviation of the last 20 log returns * sqrt(252), i.e.
    annualised with 252 trading days a year.

  Incremental runs (is_incremental) compute only the days after each symbol's last
  stored day, and still equal a full rebuild exactly:
  - moving windows re-read the stored days before it: 199 for sma200, 49 for the others;
  - recursive values (EMAs, MACD signal, Wilder averages) continue from that stored
    row's values (the `seed_*` columns feed analytics.smooth);
  - a symbol still warming up (no RSI/ATR average stored yet: fewer than 15 days) or
    new to the table is computed from its first day; runner keeps only the new rows.
  Corrections of old days reach the table too: before appending, runner deletes each
  changed symbol's rows from the first changed day on (from the change log), so they are
  computed again here from the stored row before it (see docs/analyses.md).
-#}
{% import "macros/market.sql" as m %}
{#- Stored days an incremental run reads before its first new day: sma200 needs 199; the
    other windows at most 49 (sma50). -#}
{% set lookback = 199 %}
{% set short_lookback = 49 %}
WITH
{% if is_incremental %}
symbols AS (
    SELECT symbol FROM {{ m.every_symbol() }} s
), stored AS (
    -- Each symbol's last stored row, when it can be continued from.
    SELECT last.*
    FROM symbols i
    CROSS JOIN LATERAL (
        SELECT * FROM {{ this }} s WHERE s.symbol = i.symbol ORDER BY s.day DESC LIMIT 1
    ) last
    WHERE last.rsi_avg_gain IS NOT NULL AND last.rsi_avg_loss IS NOT NULL AND last.atr14 IS NOT NULL
), prices AS (
    -- back: 0 for a day to compute, n for the n-th stored day before it (1 = the stored
    -- row continued from).
    SELECT s.symbol, p.day, p.high, p.low, p.close, p.back,
           s.seq AS seed_seq, s.ema12 AS seed_ema12, s.ema26 AS seed_ema26,
           s.macd_signal AS seed_macd_signal, s.rsi_avg_gain AS seed_gain,
           s.rsi_avg_loss AS seed_loss, s.atr14 AS seed_atr14
    FROM stored s
    CROSS JOIN LATERAL (
        (SELECT d.day, d.high, d.low, d.close, row_number() OVER (ORDER BY d.day DESC) AS back
         FROM daily_prices d
         WHERE d.symbol = s.symbol AND d.day <= s.day ORDER BY d.day DESC LIMIT {{ lookback }})
        UNION ALL
        SELECT d.day, d.high, d.low, d.close, 0 FROM daily_prices d
        WHERE d.symbol = s.symbol AND d.day > s.day
    ) p
    -- Symbols without new days need no work.
    WHERE EXISTS (SELECT 1 FROM daily_prices n WHERE n.symbol = s.symbol AND n.day > s.day)
    UNION ALL
    SELECT p.symbol, p.day, p.high, p.low, p.close, 0, 0, NULL, NULL, NULL, NULL, NULL, NULL
    FROM symbols i
    JOIN daily_prices p ON p.symbol = i.symbol
    WHERE NOT EXISTS (SELECT 1 FROM stored s WHERE s.symbol = i.symbol)
),
{% else %}
prices AS (
    SELECT symbol, day, high, low, close, 0 AS back,
           0 AS seed_seq, NULL::float8 AS seed_ema12, NULL::float8 AS seed_ema26,
           NULL::float8 AS seed_macd_signal, NULL::float8 AS seed_gain,
           NULL::float8 AS seed_loss, NULL::float8 AS seed_atr14
    FROM daily_prices
),
{% endif %}
long_window AS (
    -- close_num: the windows below average numeric closes (see macros/market.sql),
    -- converted here once per row instead of once in each of five windows (float8 ->
    -- numeric goes through text; measured: 12 % of the query's CPU on 73 k rows).
    -- sma200 is the only window that needs 199 days before a day to compute; the
    -- others need at most 49, so they run over that much less history (on a nightly
    -- run, a quarter of the rows).
    SELECT p.*, {{ m.sma('close_num', 200) }} AS sma200
    FROM (SELECT p.*, close::numeric AS close_num FROM prices p) p
    WINDOW w AS (PARTITION BY symbol ORDER BY day)
), changes AS (
    SELECT p.*, back = 0 AS is_new, lag(close) OVER w AS prev_close
    FROM long_window p
    WHERE back <= {{ short_lookback }}
    WINDOW w AS (PARTITION BY symbol ORDER BY day)
), steps AS (
    SELECT c.*,
           close / prev_close - 1                                   AS simple_return,
           ln(close / prev_close)                                   AS log_return,
           -- greatest() would skip the NULL of a first day; CASE keeps it NULL.
           CASE WHEN prev_close IS NULL THEN NULL
                WHEN close > prev_close THEN close - prev_close ELSE 0 END AS gain,
           CASE WHEN prev_close IS NULL THEN NULL
                WHEN close < prev_close THEN prev_close - close ELSE 0 END AS loss,
           CASE WHEN prev_close IS NULL THEN high - low
                ELSE greatest(high - low, abs(high - prev_close), abs(low - prev_close)) END AS tr
    FROM changes c
), smoothed AS (
    SELECT s.*,
           (seed_seq + count(*) FILTER (WHERE is_new) OVER w)::integer AS seq,
           {{ m.sma('close_num', 20) }} AS sma20,
           {{ m.sma('close_num', 50) }} AS sma50,
           {{ m.rolling_stddev('close_num', 20, sample=false) }} AS close_std20,
           {{ m.rolling_stddev('log_return', 20, sample=true) }} AS log_return_std20,
           {{ m.ema('close', 12, seed='seed_ema12', only='is_new') }} AS ema12,
           {{ m.ema('close', 26, seed='seed_ema26', only='is_new') }} AS ema26,
           {{ m.wilder('gain', 14, seed='seed_gain', only='is_new') }} AS rsi_avg_gain,
           {{ m.wilder('loss', 14, seed='seed_loss', only='is_new') }} AS rsi_avg_loss,
           {{ m.wilder('tr', 14, seed='seed_atr14', only='is_new') }} AS atr14
    FROM steps s
    WINDOW w AS (PARTITION BY symbol ORDER BY day)
), with_macd AS (
    SELECT s.*, ema12 - ema26 AS macd FROM smoothed s
), signal AS (
    SELECT x.*, {{ m.ema('macd', 9, seed='seed_macd_signal', only='is_new') }} AS macd_signal
    FROM with_macd x
    WINDOW w AS (PARTITION BY symbol ORDER BY day)
)
SELECT symbol, day, seq, close, simple_return, log_return,
       sma20, sma50, sma200, ema12, ema26,
       macd, macd_signal, macd - macd_signal                   AS macd_hist,
       rsi_avg_gain, rsi_avg_loss,
       CASE WHEN rsi_avg_loss = 0 THEN 100
            ELSE 100 - 100 / (1 + rsi_avg_gain / rsi_avg_loss) END AS rsi14,
       sma20                                                   AS bb_middle,
       sma20 + 2 * close_std20                                 AS bb_upper,
       sma20 - 2 * close_std20                                 AS bb_lower,
       tr, atr14,
       log_return_std20 * sqrt(252::float8)                    AS vol20
FROM signal
WHERE is_new
ORDER BY symbol, day
