// The metric explorer's state (all of it in the URL, so a copied link shows the same view) and
// how the histories of several hosts become one chart.
import type { LocationQuery } from 'vue-router'
import type { Agg, History } from '../api/types'
import { METRICS, type MetricKey, type Unit } from '../gen/catalog'
import { align, type Series } from './series'
import { RANGES, type RangeKey } from './ranges'

/** At most this many hosts on one chart (each is one history request). */
export const MAX_HOSTS = 12
/** At most this many lines on one chart; more are left out (and the page says so). */
export const MAX_LINES = 60
export const AGGS: Agg[] = ['avg', 'min', 'max', 'last']
export type Combine = 'none' | 'sum' | 'avg' | 'max' | 'min'
export const COMBINES: Combine[] = ['none', 'sum', 'avg', 'max', 'min']
/** Steps offered besides "auto" (ms). */
export const STEPS = [10e3, 60e3, 300e3, 900e3, 3600e3, 86400e3]

export interface ExploreState {
  /** A catalog key or `custom:<name>`; '' when none is chosen yet. */
  metric: string
  hosts: string[]
  range: RangeKey
  /** A zoomed or typed span (ms); overrides `range`. */
  span: [number, number] | null
  /** Point spacing (ms); null: chosen from the range. */
  step: number | null
  agg: Agg
  /** How the series of one host combine (label sets), or a line per series. */
  combine: Combine
  /** Label filters: only series with these label values. */
  labels: Record<string, string>
}

const first = (v: LocationQuery[string] | undefined): string | null => (Array.isArray(v) ? v[0] : v) ?? null

export function isMetric(key: string): boolean {
  return key in METRICS ? METRICS[key as MetricKey].kind !== 'info' : /^custom:[A-Za-z_:][A-Za-z0-9_:]{0,199}$/.test(key)
}

/** The explorer's state from the URL query; anything invalid falls back to its default. */
export function parseExplore(q: LocationQuery): ExploreState {
  const metric = first(q.metric) ?? ''
  const hosts = [...new Set((first(q.hosts) ?? '').split(',').filter(Boolean))].slice(0, MAX_HOSTS)
  const r = first(q.range)
  const a = Number(first(q.from))
  const b = Number(first(q.to))
  const step = Number(first(q.step))
  const agg = first(q.agg) as Agg
  const combine = first(q.combine) as Combine
  const labels: Record<string, string> = {}
  for (const [k, v] of Object.entries(q)) {
    const value = first(v)
    if (k.startsWith('label.') && k.length > 6 && value) labels[k.slice(6)] = value
  }
  return {
    metric: isMetric(metric) ? metric : '',
    hosts,
    range: r && r in RANGES ? (r as RangeKey) : '1h',
    span: Number.isFinite(a) && Number.isFinite(b) && a > 0 && b > a ? [a, b] : null,
    step: Number.isFinite(step) && step >= 1000 ? step : null,
    agg: AGGS.includes(agg) ? agg : 'avg',
    combine: COMBINES.includes(combine) ? combine : 'none',
    labels,
  }
}

/** The URL query of a state (defaults left out, so links stay short). */
export function exploreQuery(s: ExploreState): Record<string, string> {
  const q: Record<string, string> = {}
  if (s.metric) q.metric = s.metric
  if (s.hosts.length) q.hosts = s.hosts.join(',')
  if (s.span) {
    q.from = String(Math.round(s.span[0]))
    q.to = String(Math.round(s.span[1]))
  } else if (s.range !== '1h') q.range = s.range
  if (s.step) q.step = String(s.step)
  if (s.agg !== 'avg') q.agg = s.agg
  if (s.combine !== 'none') q.combine = s.combine
  for (const k of Object.keys(s.labels).sort()) if (s.labels[k]) q[`label.${k}`] = s.labels[k]
  return q
}

export function unitOfMetric(metric: string): Unit | 'plain' {
  const def = METRICS[metric as MetricKey]
  const u = def?.unit ?? ''
  return u === '' || u === 'snapshots' ? 'plain' : u
}

/** The labels a metric's series carry (catalog), or those seen on custom series. */
export function labelNames(metric: string, seen: Record<string, string>[]): string[] {
  const def = METRICS[metric as MetricKey]
  if (def) return [...def.labels]
  return [...new Set(seen.flatMap((l) => Object.keys(l)))].sort()
}

export interface HostHistory {
  host: string
  name: string
  history: History | null
}

export interface ExploreChart {
  ts: number[]
  values: (number | null)[][]
  labels: string[]
  /** Lines left out past MAX_LINES. */
  dropped: number
  stepMs: number
}

const natural = new Intl.Collator('en', { numeric: true })

function combineValues(how: Exclude<Combine, 'none'>, vs: number[]): number {
  if (how === 'sum') return vs.reduce((a, b) => a + b, 0)
  if (how === 'avg') return vs.reduce((a, b) => a + b, 0) / vs.length
  return how === 'max' ? Math.max(...vs) : Math.min(...vs)
}

/** One chart from the hosts' histories: a line per host (its series combined) or a line per
 * host and series, named by hostname and label values. */
export function exploreChart(list: HostHistory[], combine: Combine): ExploreChart {
  const cols: Series[] = []
  const labels: string[] = []
  let stepMs = 0
  let total = 0
  for (const { host, name, history } of list) {
    if (!history) continue
    stepMs = Math.max(stepMs, history.step_ms)
    const series = [...history.series].sort((a, b) => natural.compare(labelText(a.labels), labelText(b.labels)))
    if (combine !== 'none' && series.length > 1) {
      const at = new Map<number, number[]>()
      for (const s of series) for (const p of s.points) (at.get(p.ts_ms) ?? at.set(p.ts_ms, []).get(p.ts_ms)!).push(p.value)
      const ts = [...at.keys()].sort((a, b) => a - b)
      total++
      if (cols.length < MAX_LINES) {
        cols.push({ metric: history.metric, labels: { host }, ts, v: ts.map((x) => combineValues(combine, at.get(x)!)) })
        labels.push(`${name} (${combine})`)
      }
      continue
    }
    for (const s of series) {
      total++
      if (cols.length >= MAX_LINES) continue
      cols.push({ metric: history.metric, labels: { host, ...s.labels }, ts: s.points.map((p) => p.ts_ms), v: s.points.map((p) => p.value) })
      const lt = labelText(s.labels)
      labels.push(lt ? `${name} ${lt}` : name)
    }
  }
  const { ts, values } = align(cols)
  return { ts, values, labels, dropped: total - cols.length, stepMs }
}

export function labelText(l: Record<string, string>): string {
  return Object.keys(l)
    .sort()
    .map((k) => l[k])
    .join(' ')
}
