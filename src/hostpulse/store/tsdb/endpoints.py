"""Where the TSDB backend writes and reads: two Prometheus API roots.

``tsdb_url`` is the root that takes remote write (``<root>/api/v1/write``); ``tsdb_query_url``
(default: the same root) answers ``<root>/api/v1/query`` and ``<root>/api/v1/query_range``:

- VictoriaMetrics single-node: ``http://vm:8428`` (queries: the same)
- VictoriaMetrics cluster: ``http://vminsert:8480/insert/0/prometheus``, queries
  ``http://vmselect:8481/select/0/prometheus`` (``0``: the tenant)
- Prometheus with ``--web.enable-remote-write-receiver``: ``http://prometheus:9090`` (the same)

A cluster insert URL (``/insert/<tenant>/...``) cannot answer queries, so it needs
``tsdb_query_url``; a URL given with its ``/api/v1/write`` tail is taken as its root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

WRITE_PATH = "/api/v1/write"
QUERY_PATH = "/api/v1/query"
QUERY_RANGE_PATH = "/api/v1/query_range"
_INSERT = re.compile(r"/insert/[^/]+(/|$)")
_SELECT = re.compile(r"/select/[^/]+(/|$)")


@dataclass(frozen=True, slots=True)
class Endpoints:
    write: str
    query: str
    query_range: str
    shown: str
    """The roots without credentials, for logs and messages."""


def _root(url: str, key: str) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{key}: {url!r} is not an http:// or https:// URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{key}: {url!r} has a query or fragment; give the API root only")
    path = parts.path.rstrip("/")
    for tail in (WRITE_PATH, QUERY_RANGE_PATH, QUERY_PATH):
        path = path.removesuffix(tail)
    return f"{parts.scheme}://{parts.netloc}{path}"


def _shown(root: str) -> str:
    parts = urlsplit(root)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def endpoints(tsdb_url: str, tsdb_query_url: str | None = None) -> Endpoints:
    """The write and query URLs for the settings; ValueError naming the key when they cannot
    work (not http(s), a cluster insert URL without a query URL, a select URL to write to)."""
    write_root = _root(tsdb_url, "tsdb_url")
    if _SELECT.search(urlsplit(write_root).path):
        raise ValueError(
            f"tsdb_url: {tsdb_url!r} is a VictoriaMetrics cluster select URL; writes go to "
            "vminsert: http://vminsert:8480/insert/<tenant>/prometheus"
        )
    if tsdb_query_url:
        query_root = _root(tsdb_query_url, "tsdb_query_url")
        if _INSERT.search(urlsplit(query_root).path):
            raise ValueError(
                f"tsdb_query_url: {tsdb_query_url!r} is a VictoriaMetrics cluster insert URL; "
                "queries go to vmselect: http://vmselect:8481/select/<tenant>/prometheus"
            )
    elif _INSERT.search(urlsplit(write_root).path):
        raise ValueError(
            f"tsdb_url: {tsdb_url!r} is a VictoriaMetrics cluster insert URL, which cannot "
            "answer queries: also set tsdb_query_url "
            "(http://vmselect:8481/select/<tenant>/prometheus)"
        )
    else:
        query_root = write_root
    shown = _shown(write_root)
    if query_root != write_root:
        shown += f" (queries: {_shown(query_root)})"
    return Endpoints(
        write=write_root + WRITE_PATH,
        query=query_root + QUERY_PATH,
        query_range=query_root + QUERY_RANGE_PATH,
        shown=shown,
    )
