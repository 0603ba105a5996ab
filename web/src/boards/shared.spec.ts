import { beforeEach, describe, expect, it } from 'vitest'
import { ApiClient, ApiError, type FetchLike } from '../api/client'
import type { History } from '../api/types'
import { MAX_BATCH, MAX_HOSTS, batchedCurrent, batchedHistory, forgetShared, shared } from './shared'

describe('shared requests', () => {
  beforeEach(forgetShared)

  it('one request per key, whoever asks', async () => {
    let calls = 0
    const fetch = async () => ++calls
    const [a, b] = await Promise.all([shared('current 1 web-1', fetch), shared('current 1 web-1', fetch)])
    expect([a, b, calls]).toEqual([1, 1, 1])
    expect(await shared('current 2 web-1', fetch)).toBe(2) // a refresh (another range end) asks again
  })

  it('a failure is not kept', async () => {
    let calls = 0
    const failing = async () => {
      calls++
      throw new Error('503')
    }
    await expect(shared('k', failing)).rejects.toThrow('503')
    await expect(shared('k', failing)).rejects.toThrow('503')
    expect(calls).toBe(2)
  })
})

interface Seen {
  method: string
  url: URL
  body: { series?: { host_id: string; metric: string }[]; step?: string; start?: number; columns?: string[] } | null
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

function history(host: string, metric: string, cursor: string | null = null): History {
  return {
    host_id: host,
    metric,
    start_ms: 0,
    end_ms: 10,
    agg: 'avg',
    tier: '1m',
    step_ms: 60_000,
    next_cursor: cursor,
    series: [{ metric, labels: {}, points: [{ ts_ms: 1, value: host.length, min: 0, max: 9, count: 12 }] }],
  }
}

function server(batch: (s: { host_id: string; metric: string }) => unknown, routeMissing = false) {
  const seen: Seen[] = []
  const fetch: FetchLike = async (input, init) => {
    const url = new URL(input, 'http://hp.test')
    const body = init?.body ? JSON.parse(String(init.body)) : null
    seen.push({ method: init?.method ?? 'GET', url, body })
    if (url.pathname === '/api/v1/history') {
      if (routeMissing) return json({ detail: 'Not Found' }, 404)
      return json({ results: body.series.map(batch) })
    }
    const m = url.pathname.match(/hosts\/([^/]+)\/metrics\/([^/]+)\/history/)
    if (m) return json(history(decodeURIComponent(m[1]), decodeURIComponent(m[2])))
    return json({ detail: 'Not Found' }, 404)
  }
  return { api: new ApiClient({ fetch }), seen }
}

const Q = { start: 1000, end: 86_401_000, step: 60_000, agg: 'avg' as const }

describe('batched histories', () => {
  beforeEach(forgetShared)

  it('asks for the histories of one task in one request, each answer to its asker', async () => {
    const { api, seen } = server((s) => history(s.host_id, s.metric))
    const hosts = ['a', 'bb', 'ccc']
    const got = await Promise.all(
      hosts.flatMap((h) => [batchedHistory(api, h, 'cpu_busy_percent', Q), batchedHistory(api, h, 'memory_used_bytes', Q)]),
    )
    expect(seen.length).toBe(1)
    expect(seen[0].method).toBe('POST')
    expect(seen[0].body?.step).toBe('60s')
    expect(seen[0].body?.series?.length).toBe(6)
    expect(got.map((h) => [h.host_id, h.metric])).toEqual(
      hosts.flatMap((h) => [
        [h, 'cpu_busy_percent'],
        [h, 'memory_used_bytes'],
      ]),
    )
    // another range is another request
    await batchedHistory(api, 'a', 'cpu_busy_percent', { ...Q, end: Q.end + 60_000 })
    expect(seen.length).toBe(2)
  })

  it('asks for the columns a widget draws; reads points from a server without columns', async () => {
    const columns = (h: History) => ({
      ...h,
      series: h.series.map((s) => ({ metric: s.metric, labels: s.labels, ts_ms: s.points.map((p) => p.ts_ms), value: s.points.map((p) => p.value) })),
    })
    const { api, seen } = server((s) => (s.host_id === 'old' ? history(s.host_id, s.metric) : columns(history(s.host_id, s.metric))))
    const [chart, table, old] = await Promise.all([
      batchedHistory(api, 'ab', 'cpu_busy_percent', Q),
      batchedHistory(api, 'ab', 'cpu_busy_percent', Q, ['value', 'min', 'max', 'count']),
      batchedHistory(api, 'old', 'cpu_busy_percent', Q),
    ])
    expect(seen.map((s) => [s.body?.columns, s.body?.series?.map((x) => x.host_id)])).toEqual([
      [['value'], ['ab', 'old']],
      [['value', 'min', 'max', 'count'], ['ab']],
    ])
    expect(chart.series[0]).toEqual({ metric: 'cpu_busy_percent', labels: {}, ts_ms: [1], value: [2] })
    expect(table.series[0].ts_ms).toEqual([1])
    expect(old.series[0]).toMatchObject({ ts_ms: [1], value: [3], min: [0], max: [9], count: [12] })
  })

  it('splits past the server bound, rejects a refused series alone, pages a long one', async () => {
    const { api, seen } = server((s) =>
      s.host_id === 'gone'
        ? { host_id: s.host_id, metric: s.metric, status: 404, error: "unknown host 'gone'" }
        : history(s.host_id, s.metric, s.host_id === 'long' ? 't5' : null),
    )
    const many = Array.from({ length: MAX_BATCH + 3 }, (_, i) => batchedHistory(api, `h${i}`, 'cpu_busy_percent', Q))
    const gone = batchedHistory(api, 'gone', 'cpu_busy_percent', Q)
    const long = batchedHistory(api, 'long', 'cpu_busy_percent', Q)
    expect((await Promise.all(many)).length).toBe(MAX_BATCH + 3)
    const err = await gone.catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect((err as ApiError).status).toBe(404)
    expect((await long).host_id).toBe('long')
    const posts = seen.filter((s) => s.method === 'POST')
    expect(posts.map((p) => p.body?.series?.length)).toEqual([MAX_BATCH, 5])
    // the long one is read again from the paging one-series route
    expect(seen.filter((s) => s.method === 'GET').map((s) => s.url.pathname)).toEqual(['/api/v1/hosts/long/metrics/cpu_busy_percent/history'])
  })

  it('falls back to one request per series on a server without the batch route', async () => {
    const { api, seen } = server(() => null, true)
    const got = await Promise.all(['x', 'y'].map((h) => batchedHistory(api, h, 'cpu_busy_percent', Q)))
    expect(got.map((h) => h.host_id)).toEqual(['x', 'y'])
    expect(seen.map((s) => s.method)).toEqual(['POST', 'GET', 'GET'])
  })
})

describe('batched current values', () => {
  beforeEach(forgetShared)

  function current(routeMissing = false) {
    const seen: { path: string; body: { hosts: string[]; metrics?: string[] } | null }[] = []
    const value = (host: string, metric: string) => ({ metric, labels: {}, ts_ms: 1, value: host.length })
    const fetch: FetchLike = async (input, init) => {
      const url = new URL(input, 'http://hp.test')
      const body = init?.body ? JSON.parse(String(init.body)) : null
      seen.push({ path: url.pathname, body })
      if (url.pathname === '/api/v1/current' && !routeMissing) {
        return json({
          results: body.hosts.map((h: string) =>
            h === 'gone' ? { host_id: h, status: 404, error: "unknown host 'gone'" } : { host: { host_id: h }, values: body.metrics.map((m: string) => value(h, m)) },
          ),
        })
      }
      const m = url.pathname.match(/hosts\/([^/]+)\/current/)
      if (m) return json({ host: { host_id: m[1] }, values: [value(m[1], 'cpu_load1')] })
      return json({ detail: 'Not Found' }, 404)
    }
    return { api: new ApiClient({ fetch }), seen }
  }

  it('asks for the hosts and metrics of one task in one request', async () => {
    const { api, seen } = current()
    const [a, b, gone] = await Promise.all([
      batchedCurrent(api, 'a', 'cpu_load1'),
      batchedCurrent(api, 'bb', 'memory_usage_percent'),
      batchedCurrent(api, 'gone', 'cpu_load1').catch((e: unknown) => e),
      batchedCurrent(api, 'a', 'memory_usage_percent'),
    ])
    expect(seen).toEqual([{ path: '/api/v1/current', body: { hosts: ['a', 'bb', 'gone'], metrics: ['cpu_load1', 'memory_usage_percent'] } }])
    expect(a.map((v) => [v.metric, v.value])).toEqual([
      ['cpu_load1', 1],
      ['memory_usage_percent', 1],
    ])
    expect(b.map((v) => v.value)).toEqual([2, 2])
    expect(gone).toBeInstanceOf(ApiError)
    expect((gone as ApiError).status).toBe(404)
    // past the server's bound: more requests
    await Promise.all(Array.from({ length: MAX_HOSTS + 1 }, (_, i) => batchedCurrent(api, `h${i}`, 'cpu_load1')))
    expect(seen.slice(1).map((s) => s.body?.hosts.length)).toEqual([MAX_HOSTS, 1])
  })

  it('falls back to one request per host on a server without the batch route', async () => {
    const { api, seen } = current(true)
    const got = await Promise.all(['x', 'yy'].map((h) => batchedCurrent(api, h, 'cpu_load1')))
    expect(got.map((v) => v[0].value)).toEqual([1, 2])
    expect(seen.map((s) => s.path)).toEqual(['/api/v1/current', '/api/v1/hosts/x/current', '/api/v1/hosts/yy/current'])
  })
})
