#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then runs the whole suite:
# formatting, lint, types, generated-code freshness and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start for real (Prometheus scrapes the exporter, node_exporter is
# the benchmark's reference; the alert tests post to a real Alertmanager).
need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
[ -x /usr/bin/prometheus-node-exporter ] || need+=(prometheus-node-exporter)
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
command -v openssl >/dev/null || need+=(openssl)  # test certificates for SMTP over TLS
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/ruff format --check src tests bench scripts
.venv/bin/ruff check src tests bench scripts
.venv/bin/mypy
.venv/bin/python scripts/gen_proto.py --check
.venv/bin/python -m pytest "$@"
