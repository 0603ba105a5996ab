from . import metrics_pb2 as _metrics_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HostSummary(_message.Message):
    __slots__ = ("host_id", "hostname", "timestamp_ms", "interval_seconds", "cpu_percent", "memory_percent", "disk_percent", "net_rx_bytes_per_second", "net_tx_bytes_per_second", "load1")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEMORY_PERCENT_FIELD_NUMBER: _ClassVar[int]
    DISK_PERCENT_FIELD_NUMBER: _ClassVar[int]
    NET_RX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    NET_TX_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    LOAD1_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    hostname: str
    timestamp_ms: int
    interval_seconds: float
    cpu_percent: float
    memory_percent: float
    disk_percent: float
    net_rx_bytes_per_second: float
    net_tx_bytes_per_second: float
    load1: float
    def __init__(self, host_id: _Optional[str] = ..., hostname: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., interval_seconds: _Optional[float] = ..., cpu_percent: _Optional[float] = ..., memory_percent: _Optional[float] = ..., disk_percent: _Optional[float] = ..., net_rx_bytes_per_second: _Optional[float] = ..., net_tx_bytes_per_second: _Optional[float] = ..., load1: _Optional[float] = ...) -> None: ...

class FleetSummary(_message.Message):
    __slots__ = ("hosts",)
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedCompositeFieldContainer[HostSummary]
    def __init__(self, hosts: _Optional[_Iterable[_Union[HostSummary, _Mapping]]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("server_time_ms",)
    SERVER_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    server_time_ms: int
    def __init__(self, server_time_ms: _Optional[int] = ...) -> None: ...

class Subscribed(_message.Message):
    __slots__ = ("hosts", "fleet", "heartbeat_seconds")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    FLEET_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedScalarFieldContainer[str]
    fleet: bool
    heartbeat_seconds: float
    def __init__(self, hosts: _Optional[_Iterable[str]] = ..., fleet: _Optional[bool] = ..., heartbeat_seconds: _Optional[float] = ...) -> None: ...

class LiveError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class LiveFrame(_message.Message):
    __slots__ = ("samples", "fleet", "heartbeat", "subscribed", "error")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FLEET_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    samples: _metrics_pb2.HostBatch
    fleet: FleetSummary
    heartbeat: Heartbeat
    subscribed: Subscribed
    error: LiveError
    def __init__(self, samples: _Optional[_Union[_metrics_pb2.HostBatch, _Mapping]] = ..., fleet: _Optional[_Union[FleetSummary, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., error: _Optional[_Union[LiveError, _Mapping]] = ...) -> None: ...
