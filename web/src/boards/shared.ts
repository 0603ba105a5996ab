// Widgets of one board often read the same thing (a stat, a gauge and bars: the same hosts'
// current values; two widgets of one metric: the same history): one request per key, shared by
// every widget that asks while it is kept. Keys carry the range, so a refresh asks again.
import { ApiError, type ApiClient } from '../api/client'
import type { History, HistoryQuery } from '../api/types'
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
}

// A board asks for all its histories at once (every widget loads when it mounts): the ones asked
// within one task with the same range, step and aggregation go out as `POST /history` requests
// of up to MAX_BATCH series (the server's bound, docs/api.md) instead of one GET per host and
// metric: a 12-widget board of 10 hosts made ~70 history requests.
export const MAX_BATCH = 64

type Metric = MetricKey | `custom:${string}`

interface Wanted {
  host: string
  metric: Metric
  resolve: (h: History) => void
  reject: (e: unknown) => void
}

interface Group {
  api: ApiClient
  q: HistoryQuery
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

/** A history of `metric` of `host`, read with the other histories asked in this task. */
export function batchedHistory(api: ApiClient, host: string, metric: Metric, q: HistoryQuery): Promise<History> {
  if (!groupIds.has(api)) groupIds.set(api, nextApi++)
  const key = JSON.stringify([groupIds.get(api), q.start, q.end, q.step ?? null, q.agg ?? null, q.tier ?? null])
  return new Promise<History>((resolve, reject) => {
    let group = groups.get(key)
    if (!group) {
      const g: Group = (group = { api, q, items: [] })
      groups.set(key, g)
      setTimeout(() => {
        if (groups.get(key) === g) groups.delete(key)
        for (let i = 0; i < g.items.length; i += MAX_BATCH) void send(g.api, g.q, g.items.slice(i, i + MAX_BATCH))
      }, 0)
    }
    group.items.push({ host, metric, resolve, reject })
  })
}

async function send(api: ApiClient, q: HistoryQuery, items: Wanted[]): Promise<void> {
  const body = {
    start: Math.round(q.start),
    end: Math.round(q.end),
    step: q.step ? `${Math.max(1, Math.round(q.step / 1000))}s` : undefined,
    agg: q.agg,
    tier: q.tier,
    series: items.map((w) => ({ host_id: w.host, metric: w.metric })),
  }
  let results: (History | ItemError)[]
  try {
    results = (await api.post<{ results: (History | ItemError)[] }>('/history', body)).results
  } catch (e) {
    // a server without the batch route (older than this dashboard): one request per series
    if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
      for (const w of items) api.history(w.host, w.metric, q).then(w.resolve, w.reject)
    } else for (const w of items) w.reject(e)
    return
  }
  items.forEach((w, i) => {
    const r = results[i]
    if (!r) w.reject(new ApiError(0, 'no result for this series', '/history'))
    else if ('error' in r) w.reject(new ApiError(r.status, r.error, '/history'))
    else if (r.next_cursor) api.history(w.host, w.metric, q).then(w.resolve, w.reject) // longer than a page
    else w.resolve(r)
  })
}
