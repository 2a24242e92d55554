{#-
  Correlation matrix (long form: one row per pair, both orders and the diagonal) of the
  daily log returns of the chosen `symbols` over the `period_days` calendar days up to
  as_of, on the days both symbols have a return. Pearson correlation (corr()), with the
  number of days it is based on.
-#}
WITH r AS (
    SELECT symbol, day, log_return
    FROM {{ ref('indicators') }}
    WHERE day >  {{ as_of }} - {{ period_days }}
      AND day <= {{ as_of }}
      AND log_return IS NOT NULL
      AND symbol IN {{ symbols }}
)
SELECT a.symbol AS symbol_a, b.symbol AS symbol_b,
       round(corr(a.log_return, b.log_return)::numeric, 4) AS correlation,
       count(*) AS days
FROM r a
JOIN r b USING (day)
GROUP BY a.symbol, b.symbol
ORDER BY a.symbol, b.symbol
