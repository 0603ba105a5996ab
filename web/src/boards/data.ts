// What a metric widget shows, from the server's answers: history series and current values
// filtered by the widget's labels, one line per series (one host) or per host (several hosts),
// and the rows of a table or the bars of a bar widget. Pure functions; WidgetBody fetches.
import type { Value } from '../api/types'
import type { Unit } from '../gen/catalog'
import { align, isLoopback, type Series } from '../lib/series'
import { combine } from './board'
import type { ColumnHistory, ColumnSeries } from './shared'

export function matchesLabels(labels: Record<string, string>, filter: Record<string, string> = {}): boolean {
  if (isLoopback(labels) && filter.interface === undefined) return false
  return Object.entries(filter).every(([k, v]) => labels[k] === v)
}

/** A series' name in a legend, a bar or a row: its label values ("/", "eth0 ..."). */
export function seriesName(labels: Record<string, string>, fallback: string): string {
  const vals = Object.keys(labels)
    .sort()
    .map((k) => labels[k])
  return vals.length ? vals.join(' ') : fallback
}

export interface Lines {
  ts: number[]
  values: (number | null)[][]
  names: string[]
}

/** Chart lines: with one host, one per matching series; with several, one per host (its series
 *  combined per timestamp). Hosts sample at their own instants, so with several hosts the points
 *  are put on a common grid of `stepMs` (averaged within a step), else no two lines would share
 *  a timestamp and every line would be cut into dots. `hostName` names a host in the legend. */
export function lines(
  histories: readonly { host: string; history: ColumnHistory | null }[],
  filter: Record<string, string>,
  unit: Unit | 'plain',
  hostName: (id: string) => string,
  stepMs = 0,
): Lines {
  const cols: Series[] = []
  const names: string[] = []
  const single = histories.length === 1
  const snap = (t: number) => (stepMs > 0 ? Math.round(t / stepMs) * stepMs : t)
  for (const { host, history } of histories) {
    const list = (history?.series ?? []).filter((s) => matchesLabels(s.labels, filter))
    if (single) {
      for (const s of list) {
        names.push(seriesName(s.labels, hostName(host)))
        cols.push({ metric: s.metric, labels: s.labels, ts: s.ts_ms, v: s.value ?? [] })
      }
      continue
    }
    names.push(hostName(host))
    const only = list.length === 1 ? onGrid(list[0], snap) : null
    if (only) {
      // one series already one point a step (what a board reads): it is the line
      cols.push({ metric: history?.metric ?? '', labels: {}, ts: only, v: list[0].value ?? [] })
      continue
    }
    const at = new Map<number, number[]>()
    for (const s of list) {
      const own = new Map<number, number[]>()
      const ts = s.ts_ms
      const vs = s.value ?? []
      for (let i = 0; i < ts.length; i++) {
        const t = snap(ts[i])
        const bucket = own.get(t)
        if (bucket) bucket.push(vs[i])
        else own.set(t, [vs[i]])
      }
      for (const [t, vs] of own) {
        const mean = vs.reduce((a, b) => a + b, 0) / vs.length
        const bucket = at.get(t)
        if (bucket) bucket.push(mean)
        else at.set(t, [mean])
      }
    }
    const ts = [...at.keys()].sort((a, b) => a - b)
    cols.push({ metric: history?.metric ?? '', labels: {}, ts, v: ts.map((t) => combine(at.get(t) ?? [], unit) ?? 0) })
  }
  const { ts, values } = align(cols)
  return { ts, values, names }
}

/** The series' times on the grid, when each has a value and no two share a step (then the
 *  averaging within steps and across series changes nothing); else null. */
function onGrid(s: ColumnSeries, snap: (t: number) => number): number[] | null {
  const vs = s.value ?? []
  const out = new Array<number>(s.ts_ms.length)
  for (let i = 0; i < out.length; i++) {
    out[i] = snap(s.ts_ms[i])
    if (typeof vs[i] !== 'number' || (i > 0 && out[i] <= out[i - 1])) return null
  }
  return out
}

export interface Item {
  name: string
  value: number
}

/** Bars (or a stat's parts): the newest value of each matching series of one host, or one
 *  combined value per host. */
export function items(
  snapshots: readonly { host: string; values: readonly Value[] }[],
  metric: string,
  filter: Record<string, string>,
  unit: Unit | 'plain',
  hostName: (id: string) => string,
): Item[] {
  const single = snapshots.length === 1
  const out: Item[] = []
  for (const { host, values } of snapshots) {
    const mine = values.filter((v) => v.metric === metric && matchesLabels(v.labels, filter))
    if (single) for (const v of mine) out.push({ name: seriesName(v.labels, hostName(host)), value: v.value })
    else {
      const c = combine(
        mine.map((v) => v.value),
        unit,
      )
      if (c !== undefined) out.push({ name: hostName(host), value: c })
    }
  }
  return out
}

export interface Row {
  name: string
  last: number | null
  min: number | null
  avg: number | null
  max: number | null
}

/** A row of a series read with the columns value, min, max and count. */
function rowOf(name: string, s: ColumnSeries): Row {
  const n = s.ts_ms.length
  const { value = [], min = [], max = [], count = [] } = s
  if (!n) return { name, last: null, min: null, avg: null, max: null }
  let sum = 0
  let weight = 0
  let lo = Infinity
  let hi = -Infinity
  for (let i = 0; i < n; i++) {
    const c = Math.max(1, count[i] ?? 1)
    sum += value[i] * c
    weight += c
    lo = Math.min(lo, min[i] ?? value[i])
    hi = Math.max(hi, max[i] ?? value[i])
  }
  return { name, last: value[n - 1], min: lo, max: hi, avg: sum / weight }
}

/** Table rows over the range: every matching series (of every host read), by name. */
export function rows(
  histories: readonly { host: string; history: ColumnHistory | null }[],
  filter: Record<string, string>,
  hostName: (id: string) => string,
): Row[] {
  const single = histories.length === 1
  const out: Row[] = []
  for (const { host, history } of histories) {
    for (const s of history?.series ?? []) {
      if (!matchesLabels(s.labels, filter)) continue
      const label = seriesName(s.labels, '')
      const name = single ? label || hostName(host) : [hostName(host), label].filter(Boolean).join(' ')
      out.push(rowOf(name, s))
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
}

/** "key=value, key2=value2" as a filter (blank parts ignored); the inverse of `filterText`. */
export function parseFilter(text: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const part of text.split(',')) {
    const eq = part.indexOf('=')
    if (eq <= 0) continue
    const k = part.slice(0, eq).trim()
    if (k) out[k] = part.slice(eq + 1).trim()
  }
  return out
}

export function filterText(filter: Record<string, string> = {}): string {
  return Object.entries(filter)
    .map(([k, v]) => `${k}=${v}`)
    .join(', ')
}
