#!/usr/bin/env bash
# Runs every test of the project: unit, integration and end-to-end tests of the workspace.
# Tools the tests need are installed once and skipped when present; services are started on loopback by the
# tests themselves and stopped when they end.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

# Headless Chromium and ChromeDriver for the dashboard's browser tests (Debian packages, installed once).
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  echo "Installing Debian's chromium and chromium-driver for the browser tests…"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# Validators for the container files (PyPI), in a virtual environment kept in the cache.
tools_venv="$HOME/.cache/forgecast/tools-venv"
[ -x "$tools_venv/bin/python" ] || python3 -m venv "$tools_venv"
"$tools_venv/bin/python" -c 'import yaml, kubernetes_validate, dockerfile_parse' 2>/dev/null \
  || "$tools_venv/bin/pip" install -q pyyaml==6.0.4 kubernetes-validate==1.37.0 dockerfile-parse==2.0.1

# The compose file's validator, on the Compose specification's own loader (compose-go from the Go module proxy,
# pinned by tools/compose-check/go.mod and go.sum), built into the cache; an unchanged build is a cache hit.
compose_check="$HOME/.cache/forgecast/compose-check/compose-check"
(cd tools/compose-check && GOPATH="$HOME/.cache/forgecast/go" GOMODCACHE="$HOME/.cache/forgecast/go/mod" \
  GOCACHE="$HOME/.cache/forgecast/go/build" GOFLAGS="-modcacherw -buildvcs=false" GOTOOLCHAIN=local \
  go build -trimpath -o "$compose_check" .)

# The Kubernetes manifests' renderer and checker, on kustomize's own library (sigs.k8s.io/kustomize/api) and
# compose-go, pinned by tools/kustomize-check/go.mod and go.sum, built into the cache the same way. The k8s test of
# the runtime (runtime/server/tests/k8s.rs) renders the overlays with it too.
kustomize_check="$(tools/kustomize-check/build.sh)"

# Apache Kafka (jars from Maven Central) and SecantusDB (a MongoDB-wire server from PyPI) for the tests of the
# distributed backends; the tests start them on free loopback ports (tools/kafka-server.sh, tools/mongo-server.sh)
# and stop them by PID.
tools/services.sh install

# PySpark (local mode, on the machine's Java 17) for the Spark jobs and the parity test; pymongo (the streaming job's
# sink) and confluent-kafka (the streaming test's topics and producer). Spark's Kafka source is fetched by the job
# itself from Maven Central, once, into $HOME/.cache/forgecast/ivy.
spark_venv="$HOME/.cache/forgecast/spark-venv"
[ -x "$spark_venv/bin/python" ] || python3 -m venv "$spark_venv"
"$spark_venv/bin/python" -c 'import pyspark, pytest, pymongo, confluent_kafka' 2>/dev/null \
  || "$spark_venv/bin/pip" install -q pyspark==4.3.0 pytest==9.2.0 pymongo==4.20.1 confluent-kafka==2.16.1
export FORGECAST_SPARK_PYTHON="$spark_venv/bin/python"

cargo fmt --all --check
cargo build --workspace --all-targets --locked
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked -- --test-threads=2
"$spark_venv/bin/python" -m pytest -q spark/tests
# Every overlay rendered into target/k8s and checked as a whole (kustomize-check), then object by object against the
# Kubernetes schemas (check-k8s.py).
rm -rf target/k8s
"$kustomize_check" check -forgecast target/debug/forgecast -out target/k8s .
"$tools_venv/bin/python" tools/check-k8s.py target/debug/forgecast target/k8s
"$compose_check" compose/docker-compose.yml
