#!/bin/sh
# Installs the hostpulse agent @VERSION@ on this host and ships its metrics to @SERVER_URL@.
# Served by that server at /install/agent.sh; run as root:
#
#   curl -fsSL @SERVER_URL@/install/agent.sh | sudo sh -s -- --token hpe_... --host web-1
#
# It creates a virtual environment in /opt/hostpulse/venv, installs the agent's wheel from
# the server (its dependencies come from PyPI or the index PIP_INDEX_URL names), writes
# /etc/hostpulse/agent.env and the systemd unit hostpulse-agent.service, exchanges the
# enrollment token for this host's agent key (/var/lib/hostpulse-agent/agent.key), then
# enables and (re)starts the service. Running it again upgrades the agent to the server's
# version and keeps the key, host id and labels: the token is only needed the first time.
#
# Options:
#   --token TOKEN        enrollment token (or HOSTPULSE_ENROLL_TOKEN in the environment)
#   --host ID            host id (default: /etc/machine-id)
#   --label NAME=VALUE   host label; repeat for more
#   --server URL         server to ship to (default: @SERVER_URL@)
#   --ca FILE            PEM CA certificate of the server's HTTPS certificate
#   --python PATH        Python 3.11 or newer for the virtual environment (default: python3)
#   --reenroll           enroll with --token even though this host has a key already
#   --no-systemctl       write the unit but do not run systemctl (containers, image builds)
# Environment: DESTDIR=/some/dir installs under that directory as if it were / (then
# systemctl only enables the unit there: nothing is started).
set -eu

SERVER="@SERVER_URL@"
VERSION="@VERSION@"
WHEEL="hostpulse-$VERSION-py3-none-any.whl"
UNIT=hostpulse-agent.service

die() {
    echo "hostpulse install: $*" >&2
    exit 2
}

write_unit() {
    cat >"$1" <<'UNIT_EOF'
# hostpulse agent: collects this host's metrics every 5 s and ships them to the hostpulse
# server named in /etc/hostpulse/agent.env (written by the install script the server serves at
# /install/agent.sh). Its key and unsent snapshots are kept in /var/lib/hostpulse-agent.
# More settings: /etc/hostpulse/agent.yml (YAML) or HOSTPULSE_* lines in agent.env.
[Unit]
Description=hostpulse agent (collects host metrics and ships them to the hostpulse server)
Documentation=https://github.com/hostpulse/hostpulse/blob/main/docs/install.md
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
DynamicUser=yes
ConfigurationDirectory=hostpulse
StateDirectory=hostpulse-agent
StateDirectoryMode=0700
Environment=HOSTPULSE_SPOOL__DIR=/var/lib/hostpulse-agent/spool
Environment=HOSTPULSE_SHIPPER__KEY_FILE=/var/lib/hostpulse-agent/agent.key
EnvironmentFile=-/etc/hostpulse/agent.env
ExecStart=/opt/hostpulse/venv/bin/hostpulse agent --config /etc/hostpulse/agent.yml
# SIGTERM stops the agent cleanly within 2 s (the spool is synced first).
KillSignal=SIGTERM
TimeoutStopSec=10
Restart=on-failure
RestartSec=5
# An exit status 2 is a configuration error: restarting will not help.
RestartPreventExitStatus=2
UMask=0077

# The agent reads /proc and /sys and sees every process (no ProtectProc=, no PrivatePIDs=);
# it writes only its state directory. ProtectHome=read-only rather than yes: with yes, /home
# would be an empty mount and the disk usage of a /home filesystem would be wrong.
NoNewPrivileges=yes
CapabilityBoundingSet=
ProtectSystem=strict
ProtectHome=read-only
PrivateTmp=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
MemoryMax=100M
CPUQuota=20%

[Install]
WantedBy=multi-user.target
UNIT_EOF
}

FETCH_PY='
import shutil, ssl, sys, urllib.request
url, dest, ca = sys.argv[1:4]
ctx = ssl.create_default_context(cafile=ca or None)
with urllib.request.urlopen(url, context=ctx, timeout=60) as resp, open(dest, "wb") as out:
    shutil.copyfileobj(resp, out)
'

fetch() { # fetch URL FILE, with the host's Python: curl or wget need not be installed
    "$PY" -c "$FETCH_PY" "$1" "$2" "$CA" </dev/null || die "cannot download $1"
}

previous() { # previous NAME: its value in the agent.env an earlier run wrote
    sed -n "s/^$1=//p" "$ETC/agent.env" | tail -n 1
}

main() {
    TOKEN="${HOSTPULSE_ENROLL_TOKEN:-}"
    HOST_ID=""
    LABELS=""
    CA=""
    PY=python3
    REENROLL=0
    SYSTEMCTL=1
    while [ $# -gt 0 ]; do
        case "$1" in
        --token) [ $# -ge 2 ] || die "--token needs a value"; TOKEN="$2"; shift 2 ;;
        --host) [ $# -ge 2 ] || die "--host needs a value"; HOST_ID="$2"; shift 2 ;;
        --label) [ $# -ge 2 ] || die "--label needs NAME=VALUE"
            LABELS="${LABELS:+$LABELS,}$2"; shift 2 ;;
        --server) [ $# -ge 2 ] || die "--server needs a URL"; SERVER="$2"; shift 2 ;;
        --ca) [ $# -ge 2 ] || die "--ca needs a file"; CA="$2"; shift 2 ;;
        --python) [ $# -ge 2 ] || die "--python needs a path"; PY="$2"; shift 2 ;;
        --reenroll) REENROLL=1; shift ;;
        --no-systemctl) SYSTEMCTL=0; shift ;;
        -h | --help)
            echo "usage: agent.sh --token TOKEN [--host ID] [--label NAME=VALUE]... [--server URL]"
            echo "       [--ca FILE] [--python PATH] [--reenroll] [--no-systemctl]"
            exit 0 ;;
        *) die "unknown option $1 (see the comment at the top of this script)" ;;
        esac
    done
    case "$HOST_ID$LABELS$SERVER" in
    *[!]A-Za-z0-9._:/,=@[-]*) die "--host, --label and --server take letters, digits and . _ - : / , = @ only" ;;
    esac

    ROOT="${DESTDIR:-}"
    ROOT="${ROOT%/}"
    if [ -z "$ROOT" ] && [ "$(id -u)" != 0 ]; then
        die "run it as root (sudo sh -s -- ...) or with DESTDIR set"
    fi
    command -v "$PY" >/dev/null 2>&1 || die "$PY not found: install Python 3.11 or newer"
    "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' </dev/null ||
        die "$PY is older than 3.11: pass --python /path/to/python3.11"
    "$PY" -c 'import ensurepip, venv' </dev/null 2>/dev/null ||
        die "$PY cannot create virtual environments (Debian/Ubuntu: apt install python3-venv)"

    OPT="$ROOT/opt/hostpulse"
    ETC="$ROOT/etc/hostpulse"
    if [ -f "$ETC/agent.env" ]; then # a re-run keeps what the first run was told
        [ -n "$HOST_ID" ] || HOST_ID=$(previous HOSTPULSE_HOST_ID)
        [ -n "$LABELS" ] || LABELS=$(previous HOSTPULSE_LABELS)
        [ -n "$CA" ] || [ -z "$(previous HOSTPULSE_SHIPPER__CA_FILE)" ] || CA="$ETC/ca.pem"
    fi
    STATE="$ROOT/var/lib/hostpulse-agent"
    UNIT_DIR="$ROOT/etc/systemd/system"
    KEY="$STATE/agent.key"
    if [ -s "$KEY" ] && [ "$REENROLL" = 0 ]; then
        ENROLL=0
    elif [ -n "$TOKEN" ]; then
        ENROLL=1
    else
        die "this host has no agent key yet: pass --token (an enrollment token from the server)"
    fi

    umask 022
    mkdir -p "$OPT" "$ETC" "$UNIT_DIR"
    mkdir -p -m 0700 "$STATE"
    WORK=$(mktemp -d)
    trap 'rm -rf "$WORK"' EXIT
    echo "hostpulse install: downloading the agent $VERSION from $SERVER"
    fetch "$SERVER/install/$WHEEL" "$WORK/$WHEEL"
    [ -x "$OPT/venv/bin/python" ] || "$PY" -m venv "$OPT/venv" </dev/null
    "$OPT/venv/bin/python" -m pip install --quiet --upgrade "$WORK/$WHEEL" </dev/null ||
        die "pip could not install the agent (see above; PIP_INDEX_URL names a PyPI mirror)"
    if [ -n "$CA" ] && [ "$CA" != "$ETC/ca.pem" ]; then
        cp "$CA" "$ETC/ca.pem"
        chmod 0644 "$ETC/ca.pem"
    fi

    umask 077
    {
        echo "# Written by the hostpulse install script; running it again rewrites this file."
        echo "HOSTPULSE_SHIPPER__SERVER=$SERVER"
        [ -z "$HOST_ID" ] || echo "HOSTPULSE_HOST_ID=$HOST_ID"
        [ -z "$LABELS" ] || echo "HOSTPULSE_LABELS=$LABELS"
        [ -z "$CA" ] || echo "HOSTPULSE_SHIPPER__CA_FILE=/etc/hostpulse/ca.pem"
    } >"$ETC/agent.env.tmp"
    mv "$ETC/agent.env.tmp" "$ETC/agent.env"
    umask 022
    if [ ! -e "$ETC/agent.yml" ]; then
        {
            echo "# hostpulse agent settings (YAML); HOSTPULSE_* lines in agent.env override them."
            echo "# Keys and defaults: hostpulse agent --help and config/agent.yml in the source."
            echo "{}"
        } >"$ETC/agent.yml"
    fi
    write_unit "$UNIT_DIR/$UNIT.tmp"
    mv "$UNIT_DIR/$UNIT.tmp" "$UNIT_DIR/$UNIT"

    if [ "$ENROLL" = 1 ]; then
        echo "hostpulse install: enrolling ${HOST_ID:-this host} with $SERVER"
        (
            set -a
            . "$ETC/agent.env"
            set +a
            [ -z "$CA" ] || HOSTPULSE_SHIPPER__CA_FILE="$ETC/ca.pem"
            export HOSTPULSE_SHIPPER__KEY_FILE="$KEY" HOSTPULSE_SPOOL__DIR="$STATE/spool"
            agent="$OPT/venv/bin/hostpulse"
            if [ "$REENROLL" = 0 ] && "$agent" agent --help </dev/null | grep -q -- --enroll-file; then
                # an agent that reads the token from its environment: not in the process list
                HOSTPULSE_ENROLL_TOKEN="$TOKEN" "$agent" agent --config "$ETC/agent.yml" \
                    --once --format json </dev/null >/dev/null
            else
                "$agent" agent --config "$ETC/agent.yml" --once --format json --enroll "$TOKEN" \
                    </dev/null >/dev/null
            fi
        ) || die "enrollment failed (see the message above); get a fresh token and run again"
    else
        echo "hostpulse install: this host is enrolled already (key in /var/lib/hostpulse-agent)"
    fi

    if [ "$SYSTEMCTL" = 0 ]; then
        echo "hostpulse install: done; start it with: systemctl enable --now $UNIT"
    elif [ -n "$ROOT" ]; then
        systemctl --root="$ROOT" --quiet enable "$UNIT" </dev/null
        echo "hostpulse install: done; $UNIT is enabled in $ROOT"
    else
        systemctl daemon-reload </dev/null
        systemctl --quiet enable "$UNIT" </dev/null
        systemctl restart "$UNIT" </dev/null
        echo "hostpulse install: done; hostpulse agent $VERSION runs as $UNIT (journalctl -u $UNIT)"
    fi
}

# The whole script is read before anything runs (curl ... | sh): nothing can eat its text.
main "$@"
