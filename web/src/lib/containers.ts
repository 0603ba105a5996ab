// The host page's containers table: one row per container from the host's live series (the
// `container` subsystem of the catalog: cgroup v2/v1 of Docker, Podman, containerd, systemd).
import type { MetricKey } from '../gen/catalog'
import type { Series, SeriesBuffer } from './series'

export interface ContainerRow {
  id: string
  name: string
  image: string
  runtime: string
  state: string
  cpu?: number
  mem?: number
  limit?: number
  /** mem / limit in percent, when the container has a limit. */
  memPct?: number
  oom?: number
  rx?: number
  tx?: number
  read?: number
  write?: number
  /** Newest sample of the container (ms). */
  ts: number
}

const last = (s: Series | undefined) => (s && s.v.length ? s.v[s.v.length - 1] : undefined)
const lastTs = (s: Series) => (s.ts.length ? s.ts[s.ts.length - 1] : 0)

/** Containers whose newest sample is within `staleMs` of the newest container sample; a
 * container that stopped reporting (removed) drops out. Sorted by CPU, busiest first. */
export function containerRows(buf: SeriesBuffer, staleMs: number): ContainerRow[] {
  const rows = new Map<string, ContainerRow>()
  const row = (s: Series): ContainerRow => {
    const id = s.labels.id ?? ''
    let r = rows.get(id)
    if (!r) {
      r = { id, name: s.labels.name || id, image: s.labels.image ?? '', runtime: s.labels.runtime ?? '', state: '', ts: 0 }
      rows.set(id, r)
    }
    r.ts = Math.max(r.ts, lastTs(s))
    return r
  }
  const one = (metric: MetricKey, set: (r: ContainerRow, v: number) => void) => {
    for (const s of buf.all(metric)) {
      const v = last(s)
      if (v !== undefined) set(row(s), v)
    }
  }
  one('container_cpu_usage_percent', (r, v) => (r.cpu = v))
  one('container_memory_usage_bytes', (r, v) => (r.mem = v))
  one('container_spec_memory_limit_bytes', (r, v) => (r.limit = v))
  one('container_oom_events', (r, v) => (r.oom = v))
  one('container_fs_reads_bytes_per_second', (r, v) => (r.read = v))
  one('container_fs_writes_bytes_per_second', (r, v) => (r.write = v))
  // per interface: summed per container
  one('container_network_receive_bytes_per_second', (r, v) => (r.rx = (r.rx ?? 0) + v))
  one('container_network_transmit_bytes_per_second', (r, v) => (r.tx = (r.tx ?? 0) + v))
  // a state change is a new series (the state is a label): the newest one counts
  const stateTs = new Map<string, number>()
  for (const s of buf.all('container_state')) {
    const r = row(s)
    const at = lastTs(s)
    if (at >= (stateTs.get(r.id) ?? -1)) {
      stateTs.set(r.id, at)
      r.state = s.labels.state ?? ''
    }
  }
  const newest = Math.max(0, ...[...rows.values()].map((r) => r.ts))
  const out = [...rows.values()].filter((r) => r.ts >= newest - staleMs)
  for (const r of out) if (r.mem !== undefined && r.limit) r.memPct = (r.mem / r.limit) * 100
  return out.sort((a, b) => (b.cpu ?? -1) - (a.cpu ?? -1) || a.name.localeCompare(b.name))
}

/** The custom metrics (`custom:<name>`) a host reports, with how many series each has. */
export function customMetrics(buf: SeriesBuffer): { metric: string; series: number; value?: number }[] {
  const by = new Map<string, Series[]>()
  for (const s of buf.map.values()) if (s.metric.startsWith('custom:')) by.set(s.metric, [...(by.get(s.metric) ?? []), s])
  return [...by.entries()]
    .map(([metric, list]) => ({ metric, series: list.length, value: list.length === 1 ? last(list[0]) : undefined }))
    .sort((a, b) => a.metric.localeCompare(b.metric))
}
