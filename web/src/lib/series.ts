// Live time series of one host, filled from HostBatch frames and back-filled from history.
import type { MetricKey } from '../gen/catalog'
import type { HostBatch } from '../gen/hostpulse/v1/metrics_pb'

export interface Series {
  metric: string
  labels: Record<string, string>
  ts: number[]
  v: number[]
}

export function seriesKey(metric: string, labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
  return parts.length ? `${metric}{${parts.join(',')}}` : metric
}

export class SeriesBuffer {
  readonly map = new Map<string, Series>()
  lastTs = 0

  constructor(readonly cap = 3600) {}

  add(metric: string, labels: Record<string, string>, ts: number, value: number): void {
    const key = seriesKey(metric, labels)
    let s = this.map.get(key)
    if (!s) {
      s = { metric, labels, ts: [], v: [] }
      this.map.set(key, s)
    }
    const n = s.ts.length
    if (n === 0 || ts > s.ts[n - 1]) {
      s.ts.push(ts)
      s.v.push(value)
    } else {
      // out of order (a back-fill): insert in place, replacing an equal timestamp
      let i = n - 1
      while (i >= 0 && s.ts[i] > ts) i--
      if (i >= 0 && s.ts[i] === ts) s.v[i] = value
      else {
        s.ts.splice(i + 1, 0, ts)
        s.v.splice(i + 1, 0, value)
      }
    }
    if (s.ts.length > this.cap) {
      const drop = s.ts.length - this.cap
      s.ts.splice(0, drop)
      s.v.splice(0, drop)
    }
    if (ts > this.lastTs) this.lastTs = ts
  }

  addBatch(batch: HostBatch): number {
    const defs = batch.series.map((sd) => ({
      metric: sd.metric,
      labels: Object.fromEntries(sd.labels.map((l) => [l.name, l.value])),
    }))
    let count = 0
    for (const snap of batch.snapshots) {
      const ts = Number(snap.timestampMs)
      for (let j = 0; j < snap.seriesIndex.length; j++) {
        const d = defs[snap.seriesIndex[j]]
        if (!d) continue
        this.add(d.metric, d.labels, ts, snap.values[j])
        count++
      }
    }
    return count
  }

  get(metric: MetricKey, labels: Record<string, string> = {}): Series | undefined {
    return this.map.get(seriesKey(metric, labels))
  }

  all(metric: MetricKey): Series[] {
    const out: Series[] = []
    for (const s of this.map.values()) if (s.metric === metric) out.push(s)
    return out
  }

  /** Sum over the series of `metric` (optionally skipping some), aligned on timestamps. */
  sum(metric: MetricKey, skip: (labels: Record<string, string>) => boolean = () => false): Series {
    const acc = new Map<number, number>()
    for (const s of this.all(metric)) {
      if (skip(s.labels)) continue
      for (let i = 0; i < s.ts.length; i++) acc.set(s.ts[i], (acc.get(s.ts[i]) ?? 0) + s.v[i])
    }
    const ts = [...acc.keys()].sort((a, b) => a - b)
    return { metric, labels: {}, ts, v: ts.map((t) => acc.get(t) as number) }
  }

  latest(metric: MetricKey, labels: Record<string, string> = {}): number | undefined {
    const s = this.get(metric, labels)
    return s && s.v.length ? s.v[s.v.length - 1] : undefined
  }
}

export const isLoopback = (labels: Record<string, string>): boolean =>
  labels.interface === 'lo' || labels.interface === 'lo0'

/** Series on one shared, sorted time axis (null where a series has no point), from `fromMs`. */
export function align(list: Series[], fromMs = 0): { ts: number[]; values: (number | null)[][] } {
  const all = new Set<number>()
  for (const s of list) for (const t of s.ts) if (t >= fromMs) all.add(t)
  const ts = [...all].sort((a, b) => a - b)
  const index = new Map(ts.map((t, i) => [t, i]))
  const values = list.map((s) => {
    const row: (number | null)[] = new Array(ts.length).fill(null)
    for (let i = 0; i < s.ts.length; i++) {
      const at = index.get(s.ts[i])
      if (at !== undefined) row[at] = s.v[i]
    }
    return row
  })
  return { ts, values }
}

/** Where consecutive points are further apart than `factor` steps (an outage, an agent that was
 * stopped), put a null row between them so the chart breaks the line instead of drawing a
 * straight one across the gap (uPlot draws nulls as gaps unless `spanGaps`). */
export function withGaps(
  data: { ts: number[]; values: (number | null)[][] },
  stepMs: number,
  factor = 2.5,
): { ts: number[]; values: (number | null)[][] } {
  const { ts, values } = data
  if (!(stepMs > 0) || ts.length < 2) return data
  const limit = stepMs * factor
  const outTs: number[] = []
  const outV: (number | null)[][] = values.map(() => [])
  for (let i = 0; i < ts.length; i++) {
    if (i > 0 && ts[i] - ts[i - 1] > limit) {
      outTs.push(ts[i - 1] + stepMs)
      for (const row of outV) row.push(null)
    }
    outTs.push(ts[i])
    for (let j = 0; j < values.length; j++) outV[j].push(values[j][i] ?? null)
  }
  return { ts: outTs, values: outV }
}

/** Indexes of points with no neighbour to draw a line to (alone between gaps, or the only
 * point): the chart marks them with a dot, or a fresh host's single sample draws nothing. */
export function isolated(values: readonly (number | null | undefined)[]): number[] {
  const out: number[] = []
  const has = (i: number) => i >= 0 && i < values.length && values[i] !== null && values[i] !== undefined
  for (let i = 0; i < values.length; i++) if (has(i) && !has(i - 1) && !has(i + 1)) out.push(i)
  return out
}

/** Whether any series has a value (else the chart says "no data"). */
export function hasData(values: readonly (readonly (number | null)[])[]): boolean {
  return values.some((row) => row.some((v) => v !== null && v !== undefined))
}
