#!/usr/bin/env python3
"""The analyst's side of scripts/bench-indicators, and the tools around it.

    bench-indicators.py peer DATA_DIR OUT.parquet   the indicators of every CSV, in pandas
    bench-indicators.py check OUT.parquet < rows    compare with runner's analytics.indicators
    bench-indicators.py append-day DATA_DIR         add one trading day to every file

`peer` is written the way an analyst would: read each symbol's CSV with pandas, compute
the indicators with pandas' own rolling / ewm (vectorised per symbol), and write one
Parquet file (a local file: the honest default for an analysis script). It follows the
conventions in templates/market/indicators.sql exactly: Wilder's RSI/ATR seeded with
the mean of the first 14 values, population Bollinger bands, sample volatility
annualised with 252 days, EMAs seeded with the first value (ewm(adjust=False)). Frames
are written in row groups of a few hundred symbols, so memory stays bounded at 23 M
rows instead of holding the whole result twice for one concat.

`check` reads runner's rows as CSV on stdin (psql `\\copy (… ORDER BY symbol COLLATE
"C", day) TO STDOUT`), streams them beside the Parquet file in the same order and
compares every row: the same (symbol, day, seq), and every value equal within
|a - b| <= 1e-9 * max(1, |a|, |b|) (the tolerance of tests/it/indicators.rs: float
rounding, e.g. PostgreSQL's numeric windows against pandas' float sums), NULL exactly
where NaN. It prints the largest differences per column and exits 1 on any mismatch.

`append-day` writes a new file next to each one and renames it over the old, so a file
hard-linked from the shared dataset is never written through.
"""

import math
import os
import sys
import time
import zlib
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

FLOATS = [
    "close", "simple_return", "log_return", "sma20", "sma50", "sma200", "ema12", "ema26",
    "macd", "macd_signal", "macd_hist", "rsi_avg_gain", "rsi_avg_loss", "rsi14",
    "bb_middle", "bb_upper", "bb_lower", "tr", "atr14", "vol20",
]
COLUMNS = ["symbol", "day", "seq"] + FLOATS
TOLERANCE = 1e-9
GROUP_FILES = 250  # symbols per Parquet row group


def csv_files(data_dir):
    root = Path(data_dir)
    files = list((root / "stocks").glob("*.csv")) + list((root / "etfs").glob("*.csv"))
    # Sorted by symbol (byte order, like COLLATE "C"), so `check` can stream both sides.
    return sorted(files, key=lambda f: f.stem)


def wilder(x, n):
    """Wilder's smoothing: NaN until n values, then their mean, then alpha = 1/n."""
    values = x.to_numpy(copy=True)
    valid = np.flatnonzero(~np.isnan(values))
    if len(valid) < n:
        return pd.Series(np.nan, index=x.index)
    first = valid[0]
    seed = values[first:first + n].mean()
    values[:first + n - 1] = np.nan
    values[first + n - 1] = seed
    return pd.Series(values, index=x.index).ewm(alpha=1 / n, adjust=False).mean()


def indicators(symbol, prices):
    close, high, low = prices["Close"], prices["High"], prices["Low"]
    prev = close.shift()
    out = pd.DataFrame({"symbol": symbol, "day": prices["Date"]})
    out["seq"] = np.arange(1, len(prices) + 1, dtype=np.int32)
    out["close"] = close
    out["simple_return"] = close / prev - 1
    out["log_return"] = np.log(close / prev)
    out["sma20"] = close.rolling(20).mean()
    out["sma50"] = close.rolling(50).mean()
    out["sma200"] = close.rolling(200).mean()
    out["ema12"] = close.ewm(span=12, adjust=False).mean()
    out["ema26"] = close.ewm(span=26, adjust=False).mean()
    out["macd"] = out["ema12"] - out["ema26"]
    out["macd_signal"] = out["macd"].ewm(span=9, adjust=False).mean()
    out["macd_hist"] = out["macd"] - out["macd_signal"]
    change = close.diff()
    out["rsi_avg_gain"] = wilder(change.clip(lower=0), 14)
    out["rsi_avg_loss"] = wilder((-change).clip(lower=0), 14)
    out["rsi14"] = np.where(
        out["rsi_avg_loss"] == 0, 100.0,
        100 - 100 / (1 + out["rsi_avg_gain"] / out["rsi_avg_loss"]))
    std20 = close.rolling(20).std(ddof=0)
    out["bb_middle"] = out["sma20"]
    out["bb_upper"] = out["sma20"] + 2 * std20
    out["bb_lower"] = out["sma20"] - 2 * std20
    # A symbol's first day has no previous close: its true range is high - low.
    out["tr"] = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
    out["atr14"] = wilder(out["tr"], 14)
    out["vol20"] = out["log_return"].rolling(20).std() * math.sqrt(252)
    return out


def peer(data_dir, out_path):
    started = time.monotonic()
    read = compute = write = 0.0
    rows = 0
    writer = None
    frames = []

    def flush():
        nonlocal writer, write
        t = time.monotonic()
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(out_path, table.schema)
        writer.write_table(table)
        frames.clear()
        write += time.monotonic() - t

    for f in csv_files(data_dir):
        t = time.monotonic()
        prices = pd.read_csv(f, usecols=["Date", "High", "Low", "Close"], dtype={"Date": str})
        t2 = time.monotonic()
        frames.append(indicators(f.stem, prices))
        rows += len(prices)
        t3 = time.monotonic()
        read += t2 - t
        compute += t3 - t2
        if len(frames) == GROUP_FILES:
            flush()
    if frames:
        flush()
    if writer is not None:
        writer.close()
    total = time.monotonic() - started
    print(f"peer: {rows} rows; read {read:.2f} s, compute {compute:.2f} s, "
          f"write {write:.2f} s, total {total:.2f} s")


def chunks_of(batches, size):
    """Re-cut an iterator of record batches into tables of exactly `size` rows."""
    pending, have = [], 0
    for batch in batches:
        pending.append(batch)
        have += batch.num_rows
        while have >= size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, size)
            rest = table.slice(size)
            pending, have = rest.to_batches(), rest.num_rows
    if have:
        yield pa.Table.from_batches(pending)


def check(parquet_path, chunk=500_000):
    # pandas 3 reads PostgreSQL's shortest exact float text exactly (round trip).
    ours = pd.read_csv(sys.stdin, names=COLUMNS, header=None, chunksize=chunk,
                       dtype={"symbol": str, "day": str, "seq": np.int64},
                       keep_default_na=False, na_values=[""])
    theirs = chunks_of(pq.ParquetFile(parquet_path).iter_batches(batch_size=chunk), chunk)
    rows = bad_rows = 0
    bad = {c: 0 for c in COLUMNS}
    worst = {c: 0.0 for c in FLOATS}  # largest |a - b| / max(1, |a|, |b|)
    shown = 0
    for got in ours:
        want = next(theirs, None)
        if want is None or want.num_rows != len(got):
            print(f"check: row counts differ near row {rows}", file=sys.stderr)
            return 1
        want = want.to_pandas()
        wrong = np.zeros(len(got), dtype=bool)
        for c, kind in (("symbol", object), ("day", object), ("seq", np.int64)):
            diff = got[c].to_numpy(dtype=kind) != want[c].to_numpy(dtype=kind)
            bad[c] += int(diff.sum())
            wrong |= diff
        for c in FLOATS:
            a = got[c].to_numpy(dtype=np.float64)
            b = want[c].to_numpy(dtype=np.float64)
            nan_a, nan_b = np.isnan(a), np.isnan(b)
            with np.errstate(invalid="ignore"):
                scale = np.maximum(1.0, np.maximum(np.abs(a), np.abs(b)))
                err = np.where(nan_a | nan_b, 0.0, np.abs(a - b) / scale)
            diff = (nan_a != nan_b) | (err > TOLERANCE)
            bad[c] += int(diff.sum())
            wrong |= diff
            worst[c] = max(worst[c], float(err.max(initial=0.0)))
        for i in np.flatnonzero(wrong)[: max(0, 10 - shown)]:
            cols = [c for c in COLUMNS if not _same(got[c].iat[i], want[c].iat[i])]
            print(f"  mismatch {got['symbol'].iat[i]} {got['day'].iat[i]}: "
                  + ", ".join(f"{c} runner={got[c].iat[i]} peer={want[c].iat[i]}" for c in cols),
                  file=sys.stderr)
            shown += 1
        bad_rows += int(wrong.sum())
        rows += len(got)
    if next(theirs, None) is not None:
        print(f"check: the peer has more rows than runner's {rows}", file=sys.stderr)
        return 1
    worst_text = ", ".join(f"{c} {e:.1e}" for c, e in worst.items() if e > 0)
    print(f"check: {rows} rows compared, {bad_rows} mismatching (tolerance {TOLERANCE:g} "
          f"relative, floor 1); largest differences: {worst_text or 'none'}")
    if bad_rows:
        print("check: mismatches by column: "
              + ", ".join(f"{c} {n}" for c, n in bad.items() if n), file=sys.stderr)
        return 1
    return 0


def _same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    return str(a) == str(b)


def next_weekday(day):
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def append_day(data_dir):
    """One more trading day for every symbol, as the data vendor's next file would have:
    the open at the last close, a move of at most ±1 % fixed by the symbol's name (so
    every run appends the same rows), the range around them, yesterday's volume."""
    files = csv_files(data_dir)
    days = set()
    for f in files:
        data = f.read_bytes()
        last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1].decode()
        day, _open, _high, _low, close, adj, volume = last.split(",")
        close, adj = float(close), float(adj)
        move = (zlib.crc32(f.stem.encode()) % 2001 - 1000) / 100_000
        new_close = close * (1 + move)
        high = max(close, new_close) * 1.004
        low = min(close, new_close) * 0.996
        new_day = next_weekday(date.fromisoformat(day))
        days.add(new_day)
        line = (f"{new_day},{close!r},{high!r},{low!r},{new_close!r},"
                f"{new_close * adj / close!r},{volume}\n")
        sep = b"" if data.endswith(b"\n") else b"\n"
        tmp = f.with_name(f.name + ".tmp")
        tmp.write_bytes(data + sep + line.encode())
        os.replace(tmp, f)
    print(f"append-day: {len(files)} files, new day {', '.join(str(d) for d in sorted(days))}")


def main(argv):
    if len(argv) == 3 and argv[0] == "peer":
        peer(argv[1], argv[2])
        return 0
    if len(argv) == 2 and argv[0] == "check":
        return check(argv[1])
    if len(argv) == 2 and argv[0] == "append-day":
        append_day(argv[1])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
