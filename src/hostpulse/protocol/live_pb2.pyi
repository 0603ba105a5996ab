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
    __slots__ = ("hosts", "fleet", "heartbeat_seconds", "alerts")
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    FLEET_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    hosts: _containers.RepeatedScalarFieldContainer[str]
    fleet: bool
    heartbeat_seconds: float
    alerts: bool
    def __init__(self, hosts: _Optional[_Iterable[str]] = ..., fleet: _Optional[bool] = ..., heartbeat_seconds: _Optional[float] = ..., alerts: _Optional[bool] = ...) -> None: ...

class LiveError(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class ActiveAlert(_message.Message):
    __slots__ = ("id", "rule_id", "rule_title", "host", "host_name", "labels", "state", "severity", "value", "pending_since_ms", "fired_at_ms", "acked_by", "acked_at_ms", "silenced", "silence_id", "silenced_until_ms")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_TITLE_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    PENDING_SINCE_MS_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ACKED_BY_FIELD_NUMBER: _ClassVar[int]
    ACKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    SILENCED_FIELD_NUMBER: _ClassVar[int]
    SILENCE_ID_FIELD_NUMBER: _ClassVar[int]
    SILENCED_UNTIL_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    rule_id: str
    rule_title: str
    host: str
    host_name: str
    labels: _containers.ScalarMap[str, str]
    state: str
    severity: str
    value: float
    pending_since_ms: int
    fired_at_ms: int
    acked_by: str
    acked_at_ms: int
    silenced: bool
    silence_id: str
    silenced_until_ms: int
    def __init__(self, id: _Optional[str] = ..., rule_id: _Optional[str] = ..., rule_title: _Optional[str] = ..., host: _Optional[str] = ..., host_name: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[str] = ..., severity: _Optional[str] = ..., value: _Optional[float] = ..., pending_since_ms: _Optional[int] = ..., fired_at_ms: _Optional[int] = ..., acked_by: _Optional[str] = ..., acked_at_ms: _Optional[int] = ..., silenced: _Optional[bool] = ..., silence_id: _Optional[str] = ..., silenced_until_ms: _Optional[int] = ...) -> None: ...

class AlertEvents(_message.Message):
    __slots__ = ("snapshot", "alerts", "ended", "server_time_ms")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    ENDED_FIELD_NUMBER: _ClassVar[int]
    SERVER_TIME_MS_FIELD_NUMBER: _ClassVar[int]
    snapshot: bool
    alerts: _containers.RepeatedCompositeFieldContainer[ActiveAlert]
    ended: _containers.RepeatedScalarFieldContainer[str]
    server_time_ms: int
    def __init__(self, snapshot: _Optional[bool] = ..., alerts: _Optional[_Iterable[_Union[ActiveAlert, _Mapping]]] = ..., ended: _Optional[_Iterable[str]] = ..., server_time_ms: _Optional[int] = ...) -> None: ...

class LiveFrame(_message.Message):
    __slots__ = ("samples", "fleet", "heartbeat", "subscribed", "error", "alerts")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FLEET_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    samples: _metrics_pb2.HostBatch
    fleet: FleetSummary
    heartbeat: Heartbeat
    subscribed: Subscribed
    error: LiveError
    alerts: AlertEvents
    def __init__(self, samples: _Optional[_Union[_metrics_pb2.HostBatch, _Mapping]] = ..., fleet: _Optional[_Union[FleetSummary, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., subscribed: _Optional[_Union[Subscribed, _Mapping]] = ..., error: _Optional[_Union[LiveError, _Mapping]] = ..., alerts: _Optional[_Union[AlertEvents, _Mapping]] = ...) -> None: ...
