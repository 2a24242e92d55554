{#-
  Weekly average close per symbol for the last `weeks` weeks up to as_of (the week of
  as_of included, even when partial). Weeks start on Monday: TimescaleDB's time_bucket
  and the plain-PostgreSQL date_bin rendering of bucket() use the same origin.
-#}
SELECT symbol,
       {{ bucket('1 week', 'day') }}  AS week,
       count(*)                       AS trading_days,
       round(avg(close)::numeric, 4)  AS avg_close
FROM daily_prices
WHERE day <= {{ as_of }}
  AND day >= {{ as_of }} - (extract(isodow FROM {{ as_of }})::int - 1) - 7 * ({{ weeks }} - 1)
{% if symbols %}
  AND symbol IN {{ symbols }}
{% endif %}
GROUP BY symbol, week
ORDER BY symbol, week
