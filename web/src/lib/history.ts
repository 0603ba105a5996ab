// The host page's history charts: which catalog metrics each draws, and how the server's history
// answers become chart columns (a value line with its min/max band per series, or one line per
// label value, or a sum over label values).
import type { History } from '../api/types'
import type { MetricKey, Unit } from '../gen/catalog'
import { METRICS } from '../gen/catalog'
import type { MessageKey } from '../i18n/en'
import { align, isLoopback, type Series } from './series'

export interface HistorySpec {
  id: string
  title: MessageKey
  metrics: MetricKey[]
  /** Names of the metrics in the legend (when there are several). */
  names?: MessageKey[]
  /** Split by this label: a picker chooses one value (drawn with its band) or all. */
  by?: string
  /** With `by` and nothing picked: the sum over label values per metric, not a line each. */
  sum?: boolean
  skip?: (labels: Record<string, string>) => boolean
  /** Not drawn at all for a host without these series (containers). */
  optional?: boolean
}

export const HISTORY: HistorySpec[] = [
  { id: 'cpu', title: 'metric.cpu', metrics: ['cpu_busy_percent'] },
  { id: 'memory', title: 'metric.memory', metrics: ['memory_usage_percent'] },
  { id: 'cores', title: 'host.perCore', metrics: ['cpu_core_busy_percent'], by: 'cpu' },
  {
    id: 'load',
    title: 'metric.load',
    metrics: ['cpu_load1', 'cpu_load5', 'cpu_load15'],
    names: ['metric.load1', 'metric.load5', 'metric.load15'],
  },
  {
    id: 'network',
    title: 'metric.network',
    metrics: ['network_receive_bytes_per_second', 'network_transmit_bytes_per_second'],
    names: ['metric.rx', 'metric.tx'],
    by: 'interface',
    sum: true,
    skip: isLoopback,
  },
  {
    id: 'disk',
    title: 'history.diskIo',
    metrics: ['disk_read_bytes_per_second', 'disk_write_bytes_per_second'],
    names: ['metric.read', 'metric.write'],
    by: 'device',
    sum: true,
  },
  { id: 'fs', title: 'host.filesystems', metrics: ['filesystem_usage_percent'], by: 'mountpoint' },
  { id: 'diskBusy', title: 'history.diskBusy', metrics: ['disk_busy_percent'], by: 'device' },
  { id: 'swap', title: 'metric.swap', metrics: ['memory_swap_usage_percent'] },
  { id: 'tcp', title: 'history.tcp', metrics: ['netstat_tcp_connections'], by: 'state' },
  {
    id: 'procs',
    title: 'history.processes',
    metrics: ['processes_all', 'processes_threads'],
    names: ['metric.processes', 'metric.threads'],
  },
  { id: 'procStates', title: 'history.procStates', metrics: ['processes_state'], by: 'state' },
  { id: 'ctrCpu', title: 'host.containersCpu', metrics: ['container_cpu_usage_percent'], by: 'name', optional: true },
  { id: 'ctrMem', title: 'host.containersMem', metrics: ['container_memory_usage_bytes'], by: 'name', optional: true },
]

/** Every metric the history charts read (each fetched once per range). */
export const HISTORY_METRICS: MetricKey[] = [...new Set(HISTORY.flatMap((s) => s.metrics))]

export function chartUnit(spec: HistorySpec): Unit | 'plain' {
  const u = METRICS[spec.metrics[0]].unit
  return u === '' || u === 'snapshots' ? 'plain' : u
}

export interface ChartColumn {
  label: string
  /** A min/max edge (drawn thin; its band is filled). */
  edge?: boolean
  /** Index of the value column this one belongs to (for its colour). */
  of: number
}

export interface ChartData {
  ts: number[]
  values: (number | null)[][]
  columns: ChartColumn[]
  /** (max, min) column pairs to fill between. */
  bands: [number, number][]
  /** The label values `by` offers in the picker. */
  options: string[]
}

const natural = new Intl.Collator('en', { numeric: true })

/** The columns of one chart from the fetched histories; `pick` is the chosen label value. */
export function chartData(
  spec: HistorySpec,
  histories: ReadonlyMap<string, History | null>,
  pick: string | null,
  name: (metricIndex: number) => string,
): ChartData {
  const cols: Series[] = []
  const columns: ChartColumn[] = []
  const bands: [number, number][] = []
  const options = new Set<string>()
  const skip = spec.skip ?? (() => false)
  const multi = spec.metrics.length > 1
  spec.metrics.forEach((metric, k) => {
    const list = (histories.get(metric)?.series ?? []).filter((s) => !skip(s.labels))
    if (spec.by) for (const s of list) if (s.labels[spec.by] !== undefined) options.add(s.labels[spec.by])
    if (spec.by && pick === null && spec.sum) {
      const acc = new Map<number, number>()
      for (const s of list) for (const p of s.points) acc.set(p.ts_ms, (acc.get(p.ts_ms) ?? 0) + p.value)
      const ts = [...acc.keys()].sort((a, b) => a - b)
      columns.push({ label: name(k), of: columns.length })
      cols.push({ metric, labels: {}, ts, v: ts.map((x) => acc.get(x) as number) })
      return
    }
    let chosen = list
    if (spec.by) {
      chosen = pick === null ? list : list.filter((s) => s.labels[spec.by as string] === pick)
      chosen = [...chosen].sort((a, b) => natural.compare(a.labels[spec.by as string] ?? '', b.labels[spec.by as string] ?? ''))
    }
    const withBand = !spec.by || pick !== null
    for (const s of chosen) {
      const labelValue = spec.by ? s.labels[spec.by] : ''
      const label = spec.by && pick === null ? (multi ? `${name(k)} ${labelValue}` : labelValue) : multi || !spec.by ? name(k) : labelValue
      const at = columns.length
      const ts = s.points.map((p) => p.ts_ms)
      columns.push({ label, of: at })
      cols.push({ metric, labels: s.labels, ts, v: s.points.map((p) => p.value) })
      if (withBand) {
        columns.push({ label: `${label} max`, edge: true, of: at })
        cols.push({ metric, labels: s.labels, ts, v: s.points.map((p) => p.max) })
        columns.push({ label: `${label} min`, edge: true, of: at })
        cols.push({ metric, labels: s.labels, ts, v: s.points.map((p) => p.min) })
        bands.push([at + 1, at + 2])
      }
    }
  })
  const { ts, values } = align(cols)
  return { ts, values, columns, bands, options: [...options].sort(natural.compare) }
}
