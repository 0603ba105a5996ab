#!/usr/bin/env bash
# Installs everything the tests need on a fresh Debian machine, then runs the whole suite:
# formatting, lint, types, generated-code freshness and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start for real (Prometheus scrapes the exporter, node_exporter is
# the benchmark's reference; the alert tests post to a real Alertmanager).
need=()
need_db=()
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
# the TSDB backend's tests write to and query a real VictoriaMetrics (single-node)
[ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
command -v buildah >/dev/null || need+=(buildah)
command -v debootstrap >/dev/null || need+=(debootstrap)
if ((${#need[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# the relational tests also run on PostgreSQL (each session creates and drops its own database
# on 127.0.0.1:5432, user postgres, trust); Redis at 127.0.0.1:6379. Both are normally running
# on these machines; start them when they are not, and stop here with a clear message when
# that is not possible.
command -v pg_ctlcluster >/dev/null || need_db+=(postgresql)
command -v redis-server >/dev/null || need_db+=(redis-server)
if ((${#need_db[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_db[@]}" >/dev/null
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -qtAc 'SELECT 1' >/dev/null 2>&1; then
  echo "scripts/test.sh: PostgreSQL is not usable at 127.0.0.1:5432 as user postgres without a" >&2
  echo "password (trust); the relational tests need it. Start it with:" >&2
  echo "  pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start" >&2
  exit 1
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "scripts/test.sh: Redis is not answering at 127.0.0.1:6379 and could not be started" >&2
  echo "(see /var/log/redis/ci.log)." >&2
  exit 1
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
# two workers (pytest-xdist; a test file stays on one worker): most of the suite waits on
# servers, browsers and subprocesses, so two files at a time fit the 2-core budget
.venv/bin/python -m pytest -n 2 --dist loadfile "$@"
