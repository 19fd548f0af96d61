#!/usr/bin/env bash
# Runs every test of the project: unit, integration and end-to-end tests of the workspace.
# Services the tests need are installed under $HOME/.cache/forgecast and started on loopback by the tests'
# own harness; nothing outside the repository and that cache is touched.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
mkdir -p "$HOME/.cache/forgecast"

cargo build --workspace --all-targets --locked
cargo test --workspace --locked -- --test-threads=2
