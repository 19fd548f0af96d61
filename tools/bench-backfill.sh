#!/usr/bin/env bash
# Backfill throughput against DuckDB on the same GH Archive hour file, in one run.
# usage: tools/bench-backfill.sh [HOUR_FILE]
# Without a file, builds one hour of 200,000 real events with the workplace's standard generator
# (../shared/bench/make_hours.py, the samples repeated with unique ids). DuckDB comes from PyPI into a
# virtual environment under $HOME/.cache/forgecast.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$HOME/.cache/forgecast"
hour="${1:-}"
if [ -z "$hour" ]; then
  lake="$cache/bench-lake-1x200k"
  [ -f "$lake/2024-01-01-0.json.gz" ] || python3 ../shared/bench/make_hours.py "$lake" 200000 1
  hour="$lake/2024-01-01-0.json.gz"
fi
venv="$cache/bench-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import duckdb' 2>/dev/null || "$venv/bin/pip" install -q duckdb

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
FORGECAST_BENCH_HOUR="$hour" cargo bench -q -p forgecast --bench backfill 2>/dev/null
"$venv/bin/python" - "$hour" <<'PY'
import sys, time, duckdb
path = sys.argv[1]
t = time.time()
rows = duckdb.connect().execute(
    f"select type, count(*) from read_json('{path}', format='newline_delimited', "
    "columns={'id':'VARCHAR','type':'VARCHAR','created_at':'VARCHAR'}) group by type").fetchall()
n = sum(c for _, c in rows); dt = time.time() - t
print(f"  DuckDB {duckdb.__version__} group by type  {n/dt:>9.0f} events/s  ({n} events in {dt:.2f} s)")
PY
