"""The wire contract shared by the agent and the server (generated from proto/hostpulse/v1)."""

from hostpulse.protocol.metrics_pb2 import (
    Host,
    HostBatch,
    IngestRequest,
    IngestResponse,
    Label,
    Process,
    SeriesDef,
    Snapshot,
)

PROTOBUF_CONTENT_TYPE = "application/x-protobuf"
JSON_CONTENT_TYPE = "application/json"

__all__ = [
    "JSON_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "Host",
    "HostBatch",
    "IngestRequest",
    "IngestResponse",
    "Label",
    "Process",
    "SeriesDef",
    "Snapshot",
]
