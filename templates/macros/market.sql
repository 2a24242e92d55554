{#-
  Shared building blocks for market analyses: {% import "macros/market.sql" as m %}.

  Every macro is an expression over the rows of one symbol in day order, so the calling
  query must define `WINDOW w AS (PARTITION BY symbol ORDER BY day)`. Column names are
  passed as strings and quoted with |ident, numbers are printed as SQL numbers.

  Rolling windows are NULL until the window is full (`n` non-NULL values), so an SMA(200)
  never silently averages 30 days.

  Recursive smoothing uses runner's aggregate analytics.smooth(x, alpha, warmup, seed)
  (see src/analysis/functions.rs): the first `warmup` values are averaged, then
  v = alpha * x + (1 - alpha) * v; NULL inputs are skipped. `seed` names a column holding
  a stored value to continue from (incremental runs); `only` names a boolean column that
  restricts which rows feed the recursion (the rows being computed).
-#}

{#- The aggregates run over numeric: PostgreSQL slides a numeric window by adding the
    new value and removing the old one (exactly), while float8 windows are summed
    again for every row (about 2.5x slower for sma200). Results are float8. A column
    that is already numeric is not converted again: a query with several windows over
    one float8 column converts it once in an earlier step and passes that column. -#}
{% macro rolling(func, column, n) -%}
CASE WHEN count({{ column|ident }}) OVER (w ROWS BETWEEN {{ n - 1 }} PRECEDING AND CURRENT ROW) = {{ n }}
     THEN ({{ func|ident }}({{ column|ident }}::numeric) OVER (w ROWS BETWEEN {{ n - 1 }} PRECEDING AND CURRENT ROW))::float8 END
{%- endmacro %}

{#- Simple moving average of the last n values. -#}
{% macro sma(column, n) -%}
{{ rolling('avg', column, n) }}
{%- endmacro %}

{#- Standard deviation of the last n values: sample (n - 1) or population (n). -#}
{% macro rolling_stddev(column, n, sample=true) -%}
{{ rolling('stddev_samp' if sample else 'stddev_pop', column, n) }}
{%- endmacro %}

{% macro smooth(column, alpha, warmup, seed=none, only=none) -%}
analytics.smooth({{ column|ident }}, {{ alpha }}::float8, {{ warmup }},
{%- if seed %} CASE WHEN {{ seed|ident }} IS NULL THEN NULL ELSE ARRAY[{{ warmup }}, {{ seed|ident }}, 0]::float8[] END
{%- else %} NULL::float8[]{% endif %})
{%- if only %} FILTER (WHERE {{ only|ident }}){% endif %} OVER w
{%- endmacro %}

{#- Exponential moving average, alpha = 2 / (span + 1), seeded with the first value
    (pandas' ewm(span, adjust=False)). -#}
{% macro ema(column, span, seed=none, only=none) -%}
{{ smooth(column, 2 / (span + 1), 1, seed, only) }}
{%- endmacro %}

{#- Wilder's smoothing (RSI, ATR): the first value is the mean of the first `period`
    values, then alpha = 1 / period. -#}
{% macro wilder(column, period, seed=none, only=none) -%}
{{ smooth(column, 1 / period, period, seed, only) }}
{%- endmacro %}

{#- The change to the previous row, NULL on a symbol's first row. -#}
{% macro change(column) -%}
({{ column|ident }} - lag({{ column|ident }}) OVER w)
{%- endmacro %}

{#- Every symbol in daily_prices, as a subquery for FROM: the primary key (symbol, day)
    walked from one symbol to the next, an index probe per symbol instead of a read of
    every row (PostgreSQL has no skip scan before 18, and `day` has no index of its
    own, so "the symbols with a day in this period" would otherwise scan the table). -#}
{% macro every_symbol() -%}
(WITH RECURSIVE walk AS (
        SELECT min(symbol) AS symbol FROM daily_prices
        UNION ALL
        SELECT (SELECT min(d.symbol) FROM daily_prices d WHERE d.symbol > w.symbol)
        FROM walk w WHERE w.symbol IS NOT NULL
    )
    SELECT symbol FROM walk WHERE symbol IS NOT NULL)
{%- endmacro %}
