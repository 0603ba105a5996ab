"""The fleet benchmark's senders build each request from parts made up front; what the server
receives must still be exactly what an agent sends: its own key, the given timestamp and the
next sequence, the host's series table, one snapshot in table order, a valid gzip body."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from hostpulse.protocol import HostBatch, IngestRequest
from hostpulse.sim.build import host_message, series_defs
from hostpulse.sim.push import make_hosts

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import fleet  # bench/fleet.py


def test_requests_decode_to_what_the_agent_serializes() -> None:
    hosts = make_hosts(5, seed=13)
    keys = {h.host_id: f"hpk_{h.host_id}" for h in hosts}
    requests = fleet.AgentRequests(hosts, 5.0, keys, "127.0.0.1:8080")
    requests.seq[1] = 126  # its sequence varint grows from one byte to two on the way
    ts = 1_765_000_000_000
    for k in range(6):
        for i, host in enumerate(hosts):
            raw = requests.request(i, ts + 5000 * k)
            head, _, body = raw.partition(b"\r\n\r\n")
            lines = head.decode().split("\r\n")
            assert lines[0] == "POST /api/v1/ingest HTTP/1.1"
            fields = dict(line.split(": ", 1) for line in lines[1:])
            assert fields["Authorization"] == f"Bearer hpk_{host.host_id}"
            assert fields["Content-Encoding"] == "gzip"
            assert int(fields["Content-Length"]) == len(body)
            data = gzip.decompress(body)  # checks the CRC-32 and the length
            request = IngestRequest.FromString(data)
            assert request.SerializeToString() == data
            [batch] = request.batches
            table = HostBatch(host=host_message(host, 5.0), series=series_defs(host))
            assert HostBatch(host=batch.host, series=batch.series) == table
            [snap] = batch.snapshots
            assert snap.timestamp_ms == ts + 5000 * k
            assert snap.sequence == (126 if i == 1 else 0) + k
            assert list(snap.series_index) == list(range(len(batch.series)))
            assert len(snap.values) == len(batch.series)
            cpu = snap.values[host.series.index(("cpu_busy_percent", ()))]
            assert 0 <= cpu <= 85.0
