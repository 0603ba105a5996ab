// Shapes of the server's JSON answers (src/hostpulse/server/api/models.py).

export type HostStatus = 'online' | 'stale' | 'offline'
export type Tier = 'raw' | '1m' | '1h'
export type Agg = 'avg' | 'min' | 'max' | 'last'

export interface HostOut {
  host_id: string
  hostname: string
  status: HostStatus
  last_seen_ms: number
  first_seen_ms: number
  interval_seconds: number
  os: string
  kernel: string
  arch: string
  cpu_model: string
  boot_time: number
  logical_cores: number
  memory_bytes: number
  labels: Record<string, string>
  agent_version: string
  unsupported: string[]
  /** The server's status rule for this host (online/stale factor x interval). */
  online_within_seconds?: number
  stale_within_seconds?: number
}

export interface Value {
  metric: string
  labels: Record<string, string>
  ts_ms: number
  value: number
}

export interface CurrentSnapshot {
  host: HostOut
  values: Value[]
}

export interface PointOut {
  ts_ms: number
  value: number
  min: number
  max: number
  count: number
}

export interface SeriesHistory {
  metric: string
  labels: Record<string, string>
  points: PointOut[]
}

export interface SeriesOut {
  metric: string
  labels: Record<string, string>
}

export interface History {
  host_id: string
  metric: string
  start_ms: number
  end_ms: number
  agg: Agg
  tier: Tier
  step_ms: number
  series: SeriesHistory[]
  next_cursor: string | null
}

export interface ProcessOut {
  pid: number
  name: string
  user: string
  cpu_percent: number
  mem_percent: number
  rss_bytes: number
  threads: number
  status: string
  cmdline: string
}

export interface ProcessesOut {
  host_id: string
  ts_ms: number
  top_cpu: ProcessOut[]
  top_memory: ProcessOut[]
}

export interface HistoryQuery {
  start: number
  end: number
  step?: number // ms
  agg?: Agg
  tier?: Tier
  labels?: Record<string, string>
}
