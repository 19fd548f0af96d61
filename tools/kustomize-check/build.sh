#!/usr/bin/env bash
# Builds tools/kustomize-check into $HOME/.cache/forgecast/kustomize-check/ and prints the binary's path. Its
# modules (kustomize's api and kyaml, compose-go) come from the Go module proxy, pinned by go.mod and go.sum, into the
# same cache; an unchanged build is a cache hit (about a second). tools/test.sh and runtime/server/tests/k8s.rs run it.
set -euo pipefail
cd "$(dirname "$0")"
cache="${FORGECAST_CACHE:-$HOME/.cache/forgecast}"
binary="$cache/kustomize-check/kustomize-check"
command -v go >/dev/null || { echo "kustomize-check: Go is needed to build tools/kustomize-check" >&2; exit 1; }
GOPATH="$cache/go" GOMODCACHE="$cache/go/mod" GOCACHE="$cache/go/build" GOFLAGS="-modcacherw -buildvcs=false" \
  GOTOOLCHAIN=local go build -trimpath -o "$binary" .
echo "$binary"
