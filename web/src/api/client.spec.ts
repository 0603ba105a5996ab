import { describe, expect, it } from 'vitest'
import { ApiClient, ApiError, type FetchLike } from './client'

type Handler = (url: URL, init?: RequestInit) => Response

function transport(handler: Handler): { fetch: FetchLike; urls: URL[]; inits: (RequestInit | undefined)[] } {
  const urls: URL[] = []
  const inits: (RequestInit | undefined)[] = []
  const fetch: FetchLike = async (input, init) => {
    const url = new URL(input, 'http://hp.test')
    urls.push(url)
    inits.push(init)
    return handler(url, init)
  }
  return { fetch, urls, inits }
}

const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })

describe('ApiClient', () => {
  it('builds history queries and joins every page per series', async () => {
    const t = transport((url) => {
      const page = url.searchParams.get('cursor')
      const points = (ts: number) => [{ ts_ms: ts, value: ts, min: ts, max: ts, count: 1 }]
      if (!page)
        return json({ host_id: 'h 1', metric: 'm', start_ms: 0, end_ms: 10, agg: 'avg', tier: '1m', step_ms: 60000, next_cursor: 'p2',
          series: [{ metric: 'm', labels: { device: 'sda' }, points: points(1) }] })
      return json({ host_id: 'h 1', metric: 'm', start_ms: 0, end_ms: 10, agg: 'avg', tier: '1m', step_ms: 60000, next_cursor: null,
        series: [{ metric: 'm', labels: { device: 'sda' }, points: points(2) }, { metric: 'm', labels: { device: 'sdb' }, points: points(3) }] })
    })
    const api = new ApiClient({ fetch: t.fetch, token: () => 'tok' })
    const h = await api.history('h 1', 'cpu_load1', { start: 1000, end: 7_200_000, step: 60_000, labels: { device: 'sda' } })
    expect(t.urls[0].pathname).toBe('/api/v1/hosts/h%201/metrics/cpu_load1/history')
    expect(Object.fromEntries(t.urls[0].searchParams)).toEqual({ start: '1000', end: '7200000', step: '60s', 'label.device': 'sda' })
    expect(t.urls[1].searchParams.get('cursor')).toBe('p2')
    expect(h.series.map((s) => s.points.map((p) => p.ts_ms))).toEqual([[1, 2], [3]])
    expect(h.next_cursor).toBeNull()
    expect((t.inits[0]?.headers as Record<string, string>).authorization).toBe('Bearer tok')
  })

  it('turns refusals into ApiError with the server reason', async () => {
    const t = transport(() => json({ detail: "unknown host 'x'" }, 404))
    const err = await new ApiClient({ fetch: t.fetch }).host('x').catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(404)
    expect(err.detail).toBe("unknown host 'x'")
  })

  it('reports a network failure as status 0', async () => {
    const api = new ApiClient({ fetch: async () => { throw new TypeError('Failed to fetch') } })
    const err = await api.hosts().catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(0)
    expect(err.message).toContain('Failed to fetch')
  })

  it('passes the processes time as ms', async () => {
    const t = transport(() => json({ host_id: 'h', ts_ms: 1, top_cpu: [], top_memory: [] }))
    await new ApiClient({ fetch: t.fetch }).processes('h', 1234.6)
    expect(t.urls[0].search).toBe('?at=1235')
  })
})
