from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Label(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Host(_message.Message):
    __slots__ = ("host_id", "hostname", "os", "kernel", "arch", "cpu_model", "boot_time", "logical_cores", "memory_bytes", "labels", "interval_seconds", "agent_version")
    HOST_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    KERNEL_FIELD_NUMBER: _ClassVar[int]
    ARCH_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    BOOT_TIME_FIELD_NUMBER: _ClassVar[int]
    LOGICAL_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    host_id: str
    hostname: str
    os: str
    kernel: str
    arch: str
    cpu_model: str
    boot_time: float
    logical_cores: int
    memory_bytes: int
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    interval_seconds: float
    agent_version: str
    def __init__(self, host_id: _Optional[str] = ..., hostname: _Optional[str] = ..., os: _Optional[str] = ..., kernel: _Optional[str] = ..., arch: _Optional[str] = ..., cpu_model: _Optional[str] = ..., boot_time: _Optional[float] = ..., logical_cores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ..., interval_seconds: _Optional[float] = ..., agent_version: _Optional[str] = ...) -> None: ...

class SeriesDef(_message.Message):
    __slots__ = ("metric", "labels")
    METRIC_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    metric: str
    labels: _containers.RepeatedCompositeFieldContainer[Label]
    def __init__(self, metric: _Optional[str] = ..., labels: _Optional[_Iterable[_Union[Label, _Mapping]]] = ...) -> None: ...

class Process(_message.Message):
    __slots__ = ("pid", "name", "user", "cpu_percent", "mem_percent", "rss_bytes", "threads", "status", "cmdline")
    PID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    CPU_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MEM_PERCENT_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CMDLINE_FIELD_NUMBER: _ClassVar[int]
    pid: int
    name: str
    user: str
    cpu_percent: float
    mem_percent: float
    rss_bytes: int
    threads: int
    status: str
    cmdline: str
    def __init__(self, pid: _Optional[int] = ..., name: _Optional[str] = ..., user: _Optional[str] = ..., cpu_percent: _Optional[float] = ..., mem_percent: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., threads: _Optional[int] = ..., status: _Optional[str] = ..., cmdline: _Optional[str] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("timestamp_ms", "series_index", "values", "top_cpu", "top_memory", "sequence")
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    SERIES_INDEX_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    TOP_CPU_FIELD_NUMBER: _ClassVar[int]
    TOP_MEMORY_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    timestamp_ms: int
    series_index: _containers.RepeatedScalarFieldContainer[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    top_cpu: _containers.RepeatedCompositeFieldContainer[Process]
    top_memory: _containers.RepeatedCompositeFieldContainer[Process]
    sequence: int
    def __init__(self, timestamp_ms: _Optional[int] = ..., series_index: _Optional[_Iterable[int]] = ..., values: _Optional[_Iterable[float]] = ..., top_cpu: _Optional[_Iterable[_Union[Process, _Mapping]]] = ..., top_memory: _Optional[_Iterable[_Union[Process, _Mapping]]] = ..., sequence: _Optional[int] = ...) -> None: ...

class HostBatch(_message.Message):
    __slots__ = ("host", "series", "snapshots", "unsupported")
    HOST_FIELD_NUMBER: _ClassVar[int]
    SERIES_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_FIELD_NUMBER: _ClassVar[int]
    host: Host
    series: _containers.RepeatedCompositeFieldContainer[SeriesDef]
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    unsupported: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, host: _Optional[_Union[Host, _Mapping]] = ..., series: _Optional[_Iterable[_Union[SeriesDef, _Mapping]]] = ..., snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ..., unsupported: _Optional[_Iterable[str]] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("batches",)
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[HostBatch]
    def __init__(self, batches: _Optional[_Iterable[_Union[HostBatch, _Mapping]]] = ...) -> None: ...

class IngestResponse(_message.Message):
    __slots__ = ("accepted_samples", "duplicate_samples")
    ACCEPTED_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    accepted_samples: int
    duplicate_samples: int
    def __init__(self, accepted_samples: _Optional[int] = ..., duplicate_samples: _Optional[int] = ...) -> None: ...
