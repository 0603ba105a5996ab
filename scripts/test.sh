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
command -v openssl >/dev/null || need+=(openssl)  # self-signed certificates for TLS tests

# the dashboard's E2E runs in Debian's Chromium (never a downloaded browser); Nanum draws Korean
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -d /usr/share/fonts/truetype/nanum ] || need+=(fonts-nanum)

[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)

# deployment tests: systemd-analyze verifies the units, haproxy checks its config, the image
# is built with buildah (chroot isolation) on a base debootstrap makes from Debian's packages
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v haproxy >/dev/null || need+=(haproxy)
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[dev]'

dirs=()
for d in src tests bench scripts; do [ -d "$d" ] && dirs+=("$d"); done
.venv/bin/ruff format --check "${dirs[@]}"
.venv/bin/ruff check "${dirs[@]}"
.venv/bin/mypy
.venv/bin/python scripts/gen_proto.py --check
bash scripts/web_check.sh
.venv/bin/python -m pytest "$@"
