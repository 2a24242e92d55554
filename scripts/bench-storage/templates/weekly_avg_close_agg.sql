{#-
  weekly_avg_close.sql read from the weekly OHLCV aggregate instead of every bar.
  The aggregate holds whole weeks, so this equals the raw query when as_of is the last
  loaded day (the week of as_of has no bars after it) — the case of a nightly job.
-#}
SELECT symbol,
       bucket                          AS week,
       trading_days,
       round(avg_close::numeric, 4)    AS avg_close
FROM {{ ohlcv('weekly') }}
WHERE bucket <= {{ as_of }}
  AND bucket >= {{ as_of }} - (extract(isodow FROM {{ as_of }})::int - 1) - 7 * ({{ weeks }} - 1)
{% if symbols %}
  AND symbol IN {{ symbols }}
{% endif %}
ORDER BY symbol, week
