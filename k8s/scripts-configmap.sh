#!/usr/bin/env bash
# Prints the forgecast-scripts ConfigMap made from scripts/, for `kubectl apply -f -`.
# Keys cannot contain '/': scripts/features/x.rhai becomes the key features.x.rhai, and the Deployment's
# volume `items` put each key back at its path. A script added here needs its line in k8s/forgecast.yaml too
# (tools/check-k8s.py checks both lists agree).
set -euo pipefail
cd "$(dirname "$0")/.."
kubectl create configmap forgecast-scripts --dry-run=client -o yaml \
  --from-file=features.issue_outcome.cases.jsonl=scripts/features/issue_outcome.cases.jsonl \
  --from-file=features.issue_outcome.rhai=scripts/features/issue_outcome.rhai \
  --from-file=features.sentiment.cases.jsonl=scripts/features/sentiment.cases.jsonl \
  --from-file=features.sentiment.rhai=scripts/features/sentiment.rhai \
  --from-file=policies.retrain.cases.jsonl=scripts/policies/retrain.cases.jsonl \
  --from-file=policies.retrain.rhai=scripts/policies/retrain.rhai \
  --from-file=queries.events.cases.jsonl=scripts/queries/events.cases.jsonl \
  --from-file=queries.events.rhai=scripts/queries/events.rhai \
  --from-file=queries.new_repos.cases.jsonl=scripts/queries/new_repos.cases.jsonl \
  --from-file=queries.new_repos.rhai=scripts/queries/new_repos.rhai \
  --from-file=routing.cases.jsonl=scripts/routing.cases.jsonl \
  --from-file=routing.rhai=scripts/routing.rhai
