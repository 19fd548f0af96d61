#!/usr/bin/env bash
# Runs SecantusDB, a MongoDB-wire server, on 127.0.0.1 in the foreground: the script execs the server, so the
# caller's PID is the server and `kill -9 PID` kills it.
#
# Usage: tools/mongo-server.sh DATA_DIR PORT
#   PORT      mongodb://127.0.0.1:PORT/ ; the server answers `hello` as the primary of a single-node replica set
#             named "secantus", so drivers allow multi-document transactions and change streams.
#   DATA_DIR  gets secantusd.toml and the WiredTiger store in DATA_DIR/db, created on the first start and reopened
#             as it is on the next one.
#
# Environment:
#   MONGO_LOG_LEVEL       DEBUG, INFO, WARNING (the default) or ERROR; logs go to stderr.
#   MONGO_CACHE_SIZE      WiredTiger cache, "256M" by default.
#   MONGO_SYNC_ON_COMMIT  1 (the default): every acknowledged write is in the journal on disk before the reply, so
#                         it survives kill -9. 0: the journal is written in the background, about 3x faster for
#                         single-document writes, but writes acknowledged in the last ~50 ms before a kill -9 are lost.
#
# Needs the virtual environment installed by `tools/services.sh install mongo`; uses nothing else.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 DATA_DIR PORT" >&2
  exit 2
fi

# Pinned versions and cache paths.
# shellcheck source=services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"

data_dir="$1"
port="$2"

if ! forgecast_stamp_ok "$FORGECAST_SERVICES_VENV_STAMP" "$forgecast_mongo_stamp_text"; then
  echo "mongo-server.sh: SecantusDB $FORGECAST_SECANTUSDB_VERSION is not installed; run tools/services.sh install mongo" >&2
  exit 1
fi

mkdir -p "$data_dir/db"
data_dir="$(cd "$data_dir" && pwd)"

# An explicit (empty) config file: without --config the server would read ./secantusd.toml or
# ~/.secantus/secantusd.toml if there were one. Everything is set by the flags below.
echo "# Settings are passed as flags by tools/mongo-server.sh." >"$data_dir/secantusd.toml"

# Always the journaled store: the server's fast test mode (SECANTUS_TEST_FAST_STORAGE=1) would not survive a restart.
unset SECANTUS_TEST_FAST_STORAGE
export SECANTUS_FORCE_DURABLE=1
export PYTHONUNBUFFERED=1

# Durable acknowledgements unless turned off.
sync_flag=(--sync-on-commit)
[ "${MONGO_SYNC_ON_COMMIT:-1}" = 0 ] && sync_flag=()

# Replace this shell by the server.
exec "$FORGECAST_SERVICES_VENV/bin/secantusd-py" \
  --config "$data_dir/secantusd.toml" \
  --host 127.0.0.1 --port "$port" \
  --storage-path "$data_dir/db" \
  --cache-size "${MONGO_CACHE_SIZE:-256M}" \
  --log-level "${MONGO_LOG_LEVEL:-WARNING}" \
  "${sync_flag[@]}"
