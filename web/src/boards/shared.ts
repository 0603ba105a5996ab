// Widgets of one board often read the same thing (a stat, a gauge and bars: the same hosts'
// current values; two widgets of one metric: the same history): one request per key, shared by
// every widget that asks while it is kept. Keys carry the range, so a refresh asks again.
import { ApiError, type ApiClient } from '../api/client'
import type { CurrentSnapshot, History, HistoryQuery, Value } from '../api/types'
import type { MetricKey } from '../gen/catalog'

const MAX_ENTRIES = 500
const cache = new Map<string, Promise<unknown>>()

export function shared<T>(key: string, fetch: () => Promise<T>): Promise<T> {
  const hit = cache.get(key) as Promise<T> | undefined
  if (hit) return hit
  const p = fetch()
  cache.set(key, p)
  p.catch(() => cache.delete(key)) // a failure is not kept: the next refresh tries again
  while (cache.size > MAX_ENTRIES) cache.delete(cache.keys().next().value as string)
  return p
}

/** Forget everything (tests). */
export function forgetShared(): void {
  cache.clear()
  groups.clear()
  currentGroups.clear()
}

// A board asks for all its histories at once (every widget loads when it mounts): the ones asked
// within one task with the same range, step and aggregation go out as `POST /history` requests
// of up to MAX_BATCH series (the server's bound, docs/api.md) instead of one GET per host and
// metric: a 12-widget board of 10 hosts made ~70 history requests.
export const MAX_BATCH = 64

type Metric = MetricKey | `custom:${string}`

/** What a widget reads of each point besides its time: a chart only `value`, a table all. */
export type HistoryColumn = 'value' | 'min' | 'max' | 'count'

/** One series of a history as columns (the server's `columns` answer): `ts_ms[i]` is the time
 *  of `value[i]`, `min[i]`, ...; only the columns asked for are there. A 24 h board's answer is
 *  a third of the size of `points` objects and parses several times faster. */
export interface ColumnSeries {
  metric: string
  labels: Record<string, string>
  ts_ms: number[]
  value?: number[]
  min?: number[]
  max?: number[]
  count?: number[]
}

export interface ColumnHistory extends Omit<History, 'series'> {
  series: ColumnSeries[]
}

/** A history of `points` as columns (the one-series route's answer, an older server's). */
export function toColumns(h: History): ColumnHistory {
  return {
    ...h,
    series: h.series.map((s) => ({
      metric: s.metric,
      labels: s.labels,
      ts_ms: s.points.map((p) => p.ts_ms),
      value: s.points.map((p) => p.value),
      min: s.points.map((p) => p.min),
      max: s.points.map((p) => p.max),
      count: s.points.map((p) => p.count),
    })),
  }
}

interface Wanted {
  host: string
  metric: Metric
  resolve: (h: ColumnHistory) => void
  reject: (e: unknown) => void
}

interface Group {
  api: ApiClient
  q: HistoryQuery
  columns: readonly HistoryColumn[]
  items: Wanted[]
}

interface ItemError {
  host_id: string
  metric: string
  status: number
  error: string
}

const groups = new Map<string, Group>()
const groupIds = new WeakMap<ApiClient, number>()
let nextApi = 0

/** A history of `metric` of `host` as `columns`, read with the other histories asked in this
 *  task. */
export function batchedHistory(
  api: ApiClient,
  host: string,
  metric: Metric,
  q: HistoryQuery,
  columns: readonly HistoryColumn[] = ['value'],
): Promise<ColumnHistory> {
  if (!groupIds.has(api)) groupIds.set(api, nextApi++)
  const key = JSON.stringify([groupIds.get(api), q.start, q.end, q.step ?? null, q.agg ?? null, q.tier ?? null, columns])
  return new Promise<ColumnHistory>((resolve, reject) => {
    let group = groups.get(key)
    if (!group) {
      const g: Group = (group = { api, q, columns, items: [] })
      groups.set(key, g)
      setTimeout(() => {
        if (groups.get(key) === g) groups.delete(key)
        for (let i = 0; i < g.items.length; i += MAX_BATCH) void send(g, g.items.slice(i, i + MAX_BATCH))
      }, 0)
    }
    group.items.push({ host, metric, resolve, reject })
  })
}

async function send({ api, q, columns }: Group, items: Wanted[]): Promise<void> {
  const body = {
    start: Math.round(q.start),
    end: Math.round(q.end),
    step: q.step ? `${Math.max(1, Math.round(q.step / 1000))}s` : undefined,
    agg: q.agg,
    tier: q.tier,
    columns,
    series: items.map((w) => ({ host_id: w.host, metric: w.metric })),
  }
  const one = (w: Wanted) => api.history(w.host, w.metric, q).then((h) => w.resolve(toColumns(h)), w.reject)
  let results: (ColumnHistory | History | ItemError)[]
  try {
    results = (await api.post<{ results: (ColumnHistory | History | ItemError)[] }>('/history', body)).results
  } catch (e) {
    // a server without the batch route (older than this dashboard): one request per series
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) items.forEach(one)
    else for (const w of items) w.reject(e)
    return
  }
  items.forEach((w, i) => {
    const r = results[i]
    if (!r) w.reject(new ApiError(0, 'no result for this series', '/history'))
    else if ('error' in r) w.reject(new ApiError(r.status, r.error, '/history'))
    else if (r.next_cursor) one(w) // longer than a page
    else if (r.series.some((s) => 'points' in s)) w.resolve(toColumns(r as History)) // a server without `columns`
    else w.resolve(r as ColumnHistory)
  })
}

// The newest values work the same way: the hosts and metrics asked within one task go out as
// `POST /current` requests of up to MAX_HOSTS hosts, instead of one GET per host (ten of them
// took Chromium's six connections and held the board's history request back).
export const MAX_HOSTS = 64
const MAX_METRICS = 64

interface CurrentWanted {
  host: string
  resolve: (v: Value[]) => void
  reject: (e: unknown) => void
}

interface CurrentGroup {
  api: ApiClient
  metrics: Set<string>
  items: CurrentWanted[]
}

interface CurrentError {
  host_id: string
  status: number
  error: string
}

const currentGroups = new Map<ApiClient, CurrentGroup>()

/** The newest values of `host` (at least those of `metric`), read with the other hosts asked in
 *  this task. */
export function batchedCurrent(api: ApiClient, host: string, metric: Metric): Promise<Value[]> {
  return new Promise<Value[]>((resolve, reject) => {
    let group = currentGroups.get(api)
    if (!group) {
      const g: CurrentGroup = (group = { api, metrics: new Set(), items: [] })
      currentGroups.set(api, g)
      setTimeout(() => {
        if (currentGroups.get(api) === g) currentGroups.delete(api)
        const hosts = [...new Set(g.items.map((w) => w.host))]
        for (let i = 0; i < hosts.length; i += MAX_HOSTS) {
          const part = new Set(hosts.slice(i, i + MAX_HOSTS))
          void sendCurrent(g, [...part], g.items.filter((w) => part.has(w.host)))
        }
      }, 0)
    }
    group.metrics.add(metric)
    group.items.push({ host, resolve, reject })
  })
}

async function sendCurrent({ api, metrics }: CurrentGroup, hosts: string[], items: CurrentWanted[]): Promise<void> {
  // past the server's bound on metrics: all of them
  const body = { hosts, metrics: metrics.size <= MAX_METRICS ? [...metrics] : undefined }
  let results: (CurrentSnapshot | CurrentError)[]
  try {
    results = (await api.post<{ results: (CurrentSnapshot | CurrentError)[] }>('/current', body)).results
  } catch (e) {
    // a server without the batch route (older than this dashboard): one request per host
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
      for (const w of items) api.current(w.host).then((c) => w.resolve(c.values), w.reject)
    } else for (const w of items) w.reject(e)
    return
  }
  const byHost = new Map(hosts.map((h, i) => [h, results[i]]))
  for (const w of items) {
    const r = byHost.get(w.host)
    if (!r) w.reject(new ApiError(0, 'no result for this host', '/current'))
    else if ('error' in r) w.reject(new ApiError(r.status, r.error, '/current'))
    else w.resolve(r.values)
  }
}
