{#-
  The `top_n` biggest gainers and losers over the `period_days` calendar days up to
  as_of: return from each symbol's last close on or before the period's start
  (as_of - period_days) to its last close on or before as_of. Symbols without a close
  at the start are left out (they did not trade for the whole period). Ties go to the
  alphabetically first symbol.
-#}
{% import "macros/market.sql" as m %}
WITH ends AS (
    SELECT s.symbol,
           st.day AS start_day, st.close AS start_close,
           en.day AS end_day,   en.close AS end_close
    FROM {{ m.every_symbol() }} s
    CROSS JOIN LATERAL (
        SELECT day, close FROM daily_prices d
        WHERE d.symbol = s.symbol AND d.day <= {{ as_of }} - {{ period_days }}
        ORDER BY d.day DESC LIMIT 1
    ) st
    CROSS JOIN LATERAL (
        SELECT day, close FROM daily_prices d
        WHERE d.symbol = s.symbol AND d.day <= {{ as_of }}
        ORDER BY d.day DESC LIMIT 1
    ) en
    -- Symbols that traded in the period.
    WHERE EXISTS (
        SELECT 1 FROM daily_prices d
        WHERE d.symbol = s.symbol AND d.day > {{ as_of }} - {{ period_days }} AND d.day <= {{ as_of }}
    )
), ranked AS (
    SELECT e.*, 100 * (end_close / start_close - 1) AS return_pct,
           row_number() OVER (ORDER BY end_close / start_close DESC, symbol) AS gain_rank,
           row_number() OVER (ORDER BY end_close / start_close ASC, symbol)  AS loss_rank
    FROM ends e
)
SELECT direction, rank, symbol, start_day, start_close, end_day, end_close,
       round(return_pct::numeric, 2) AS return_pct
FROM (
    SELECT 'gainer' AS direction, gain_rank AS rank, * FROM ranked WHERE gain_rank <= {{ top_n }}
    UNION ALL
    SELECT 'loser', loss_rank, * FROM ranked WHERE loss_rank <= {{ top_n }}
) movers
ORDER BY direction, rank
