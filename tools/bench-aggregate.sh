#!/usr/bin/env bash
# History of one million events: the runtime's engine against the Spark job on the same lake, and the
# workplace's reference engines (DuckDB and PySpark counting events per type) on it, in one run.
# usage: tools/bench-aggregate.sh
# Builds the standard benchmark lake once (../shared/bench/make_hours.py: five hours of 200,000 real events)
# under $HOME/.cache/forgecast; PySpark and DuckDB come from PyPI into a virtual environment there.
set -euo pipefail
cd "$(dirname "$0")/.."
cache="$HOME/.cache/forgecast"
lake="$cache/bench-lake-5x200k"
hours="$cache/bench-lake-5x200k-hours"
[ -f "$lake/2024-01-01-4.json.gz" ] || python3 ../shared/bench/make_hours.py "$lake" 200000 5
mkdir -p "$hours"
for f in "$lake"/*.json.gz; do ln -sf "$f" "$hours/"; done
venv="$cache/spark-venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/python" -c 'import pyspark, duckdb' 2>/dev/null || "$venv/bin/pip" install -q pyspark==4.3.0 duckdb
cargo build -q --release -p forgecast
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); lake: 1,000,000 events in 5 hour files"
for engine in embedded spark; do
  start=$(date +%s.%N)
  target/release/forgecast aggregate --engine "$engine" --lake "$hours" --data-dir "$work" --no-import \
    --spark-python "$venv/bin/python" >/dev/null 2>&1
  end=$(date +%s.%N)
  python3 - "$engine" "$start" "$end" <<'PY'
import sys
engine, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
print(f"  forgecast aggregate --engine {engine:<9} {1_000_000 / (end - start):>9.0f} events/s  ({end - start:.1f} s, whole history, Spark's start included)")
PY
done
python3 - "$work/history" <<'PY'
import json, sys
rows = lambda f: {(r["granularity"], r["bucket"], r["dimension"], r["key"]): r["count"] for r in map(json.loads, open(f))}
a, b = rows(sys.argv[1] + "/embedded.jsonl"), rows(sys.argv[1] + "/spark.jsonl")
print(f"  same rows from both engines: {a == b} ({len(a)} rows)")
PY
ANCHORS_VENV="$venv" bash ../shared/bench/anchors.sh "$hours" | sed 's/^/  reference: /'
