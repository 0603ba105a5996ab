# hostpulse server image: the server with its embedded store in /var/lib/hostpulse (a volume),
# listening on port 8400 as the unprivileged user hostpulse (uid 10001).
#   docker build -t hostpulse .
#   docker run -d -p 8400:8400 -v hostpulse:/var/lib/hostpulse hostpulse
# Pass HOSTPULSE_ADMIN_PASSWORD for the first start (it creates the user admin with it); every
# HOSTPULSE_* setting can be passed with -e.
# The same image runs the agent: docker run ... hostpulse agent --server URL (see
# deploy/compose/one-box.yml for the mounts and namespaces it needs).
#
# Build arguments:
#   BASE      the Debian image to build on (default debian:bookworm-slim; any Debian or Ubuntu
#             with Python 3.11+; Python is installed with apt when the base lacks it)
#   PIP_ARGS  extra pip options, e.g. "--no-index --find-links /wheels" for an offline build
ARG BASE=docker.io/library/debian:bookworm-slim

FROM ${BASE} AS build
RUN python3 -c 'import ensurepip, venv' 2>/dev/null || { apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*; }
ARG PIP_ARGS=""
COPY pyproject.toml README.md /src/
COPY src /src/src
RUN python3 -m venv /opt/hostpulse/venv \
    && /opt/hostpulse/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
       $PIP_ARGS '/src[server]' \
    && /opt/hostpulse/venv/bin/hostpulse version \
    && /opt/hostpulse/venv/bin/python -m pip uninstall --yes --quiet pip setuptools

FROM ${BASE}
RUN command -v python3 >/dev/null || { apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/*; }
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/hostpulse \
        --shell /usr/sbin/nologin hostpulse \
    && install -d -m 0700 -o hostpulse -g hostpulse /var/lib/hostpulse /var/lib/hostpulse-agent
COPY --from=build /opt/hostpulse/venv /opt/hostpulse/venv
ENV PATH=/opt/hostpulse/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    HOSTPULSE_DATA_DIR=/var/lib/hostpulse \
    HOSTPULSE_HOST=0.0.0.0 \
    HOSTPULSE_PORT=8400
USER hostpulse
WORKDIR /var/lib/hostpulse
VOLUME /var/lib/hostpulse
EXPOSE 8400
# Ready means the store reads and writes (plain HTTP on the container's own port; with TLS
# configured, point a health check of your own at https://).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD \
    ["python3", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:%s/api/v1/ready' % os.environ.get('HOSTPULSE_PORT', '8400'), timeout=4).status != 200)"]
ENTRYPOINT ["hostpulse"]
CMD ["server"]
