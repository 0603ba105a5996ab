#!/usr/bin/env bash
# The dashboard (web/): install from the lock file, type-check, unit tests, and check that the
# committed build (src/hostpulse/web) and the TypeScript generated from proto/ and from
# src/hostpulse/catalog.py (web/src/gen/catalog.ts) equal fresh ones.
set -euo pipefail
cd "$(dirname "$0")/../web"

npm ci --no-audit --no-fund --loglevel=error
npx vue-tsc --noEmit -p tsconfig.app.json
npx vitest run

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/gen"
../.venv/bin/python -m grpc_tools.protoc -I ../proto --plugin=protoc-gen-es=node_modules/.bin/protoc-gen-es \
  --es_out="$tmp/gen" --es_opt=target=ts ../proto/hostpulse/v1/*.proto
if ! diff -r "$tmp/gen/hostpulse" src/gen/hostpulse >/dev/null; then
  diff -r "$tmp/gen/hostpulse" src/gen/hostpulse | head -20 >&2 || true
  echo "web/src/gen is stale against proto/: run 'npm run gen' in web/ and commit" >&2
  exit 1
fi

../.venv/bin/python ../scripts/gen_catalog.py --check

HP_OUT_DIR="$tmp/web" npx vite build --logLevel error
if ! diff -r "$tmp/web" ../src/hostpulse/web >/dev/null; then
  diff -rq "$tmp/web" ../src/hostpulse/web >&2 || true
  echo "src/hostpulse/web differs from a fresh build of web/: run 'npm run build' in web/ and commit" >&2
  exit 1
fi
echo "web: committed build and generated code match the sources"
