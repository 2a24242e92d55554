{#-
  Beta of each chosen symbol against `benchmark` over the `period_days` calendar days up
  to as_of: covar_samp(r, r_benchmark) / var_samp(r_benchmark) of daily simple returns
  on the days both have one, with their correlation and the number of days.
-#}
WITH r AS (
    SELECT symbol, day, simple_return
    FROM {{ ref('indicators') }}
    WHERE day >  {{ as_of }} - {{ period_days }}
      AND day <= {{ as_of }}
      AND simple_return IS NOT NULL
{% if symbols %}
      -- Here as well as below: only these symbols' rows are read (an index range each).
      AND (symbol IN {{ symbols }} OR symbol = {{ benchmark }})
{% endif %}
), bench AS (
    SELECT day, simple_return FROM r WHERE symbol = {{ benchmark }}
)
SELECT r.symbol, {{ benchmark }}::text AS benchmark,
       round((covar_samp(r.simple_return, b.simple_return) / var_samp(b.simple_return))::numeric, 4) AS beta,
       round(corr(r.simple_return, b.simple_return)::numeric, 4) AS correlation,
       count(*) AS days
FROM r
JOIN bench b USING (day)
WHERE r.symbol <> {{ benchmark }}
{% if symbols %}
  AND r.symbol IN {{ symbols }}
{% endif %}
GROUP BY r.symbol
ORDER BY r.symbol
