{#-
  Days in the `period_days` calendar days up to as_of whose volume stands out: its
  z-score against the `spike_window` trading days before it (mean and sample standard
  deviation of those days, the day itself excluded) is at least `spike_z`. Needs a full
  window of days with a volume; strongest spikes first.
-#}
{% import "macros/market.sql" as m %}
WITH scored AS (
    SELECT symbol, day, volume,
           count(volume)       OVER prior AS window_days,
           avg(volume)         OVER prior AS window_mean,
           stddev_samp(volume) OVER prior AS window_stddev
    FROM {{ m.every_symbol() }} s
    CROSS JOIN LATERAL (
        -- The period's days and the `spike_window` trading days before it: all that the
        -- window reads.
        SELECT d.day, d.volume FROM daily_prices d
        WHERE d.symbol = s.symbol AND d.day > {{ as_of }} - {{ period_days }} AND d.day <= {{ as_of }}
        UNION ALL
        (SELECT d.day, d.volume FROM daily_prices d
         WHERE d.symbol = s.symbol AND d.day <= {{ as_of }} - {{ period_days }}
         ORDER BY d.day DESC LIMIT {{ spike_window }})
    ) d
    WINDOW prior AS (PARTITION BY symbol ORDER BY day ROWS BETWEEN {{ spike_window }} PRECEDING AND 1 PRECEDING)
)
SELECT symbol, day, volume,
       round(window_mean, 1) AS window_mean,
       round(window_stddev, 1) AS window_stddev,
       round((volume - window_mean) / window_stddev, 2) AS z_score
FROM scored
WHERE day > {{ as_of }} - {{ period_days }}
  AND window_days = {{ spike_window }}
  AND window_stddev > 0
  AND (volume - window_mean) / window_stddev >= {{ spike_z }}
ORDER BY (volume - window_mean) / window_stddev DESC, symbol, day
