{#-
  Each symbol's highest-volume day up to as_of. Ties go to the earliest day, so the
  answer is deterministic; rows without a volume never win (ORDER BY … DESC puts NULLs
  first unless told otherwise — a classic bug).
-#}
SELECT symbol, day, volume, close
FROM (
    SELECT symbol, day, volume, close,
           row_number() OVER (PARTITION BY symbol ORDER BY volume DESC NULLS LAST, day) AS rank
    FROM daily_prices
    WHERE volume IS NOT NULL
      AND day <= {{ as_of }}
) ranked
WHERE rank = 1
ORDER BY symbol
