import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import { batch } from '../test/frames'
import { useHost } from './host'

const HOST = { host_id: 'h', hostname: 'h.test', status: 'online', last_seen_ms: 10_000, interval_seconds: 1 }
let histCalls: URL[] = []
let stored: Record<string, [number, number][]> = {}

beforeEach(() => {
  setActivePinia(createPinia())
  histCalls = []
  stored = { cpu_busy_percent: [[8_000, 8], [9_000, 9], [10_000, 10]] }
  setApi(
    new ApiClient({
      fetch: async (input) => {
        const url = new URL(input, 'http://t')
        const body = (x: unknown) => new Response(JSON.stringify(x))
        if (url.pathname.endsWith('/current'))
          return body({ host: HOST, values: [{ metric: 'cpu_busy_percent', labels: {}, ts_ms: 10_000, value: 10 }] })
        if (url.pathname.endsWith('/processes')) return new Response('{"detail":"none"}', { status: 404 })
        const metric = url.pathname.split('/')[6]
        histCalls.push(url)
        const start = Number(url.searchParams.get('start'))
        const end = Number(url.searchParams.get('end'))
        const points = (stored[metric] ?? []).filter(([t]) => t >= start && t <= end).map(([t, v]) => ({ ts_ms: t, value: v, min: v, max: v, count: 1 }))
        return body({ series: points.length ? [{ metric, labels: {}, points }] : [], next_cursor: null })
      },
    }),
  )
})

describe('host store', () => {
  it('opens with system info, current values and the last 15 minutes from the raw tier', async () => {
    const h = useHost()
    await h.open('h', 10_500)
    expect(h.info?.hostname).toBe('h.test')
    expect(h.buffer.get('cpu_busy_percent')?.v).toEqual([8, 9, 10])
    const cpuCall = histCalls.find((u) => u.pathname.includes('cpu_busy_percent'))
    expect(cpuCall?.searchParams.get('tier')).toBe('raw')
    expect(Number(cpuCall?.searchParams.get('start'))).toBe(10_500 - 15 * 60_000)
  })

  it('adds live samples and back-fills the gap after a reconnect', async () => {
    const h = useHost()
    await h.open('h', 10_500)
    h.onSamples(batch('h', [[11_000, { cpu_busy_percent: 11 }]]))
    h.onSamples(batch('other', [[11_000, { cpu_busy_percent: 99 }]])) // not this host
    // the link broke; meanwhile the server stored 12 s and 13 s
    stored.cpu_busy_percent.push([12_000, 12], [13_000, 13])
    h.onResumed()
    await new Promise((r) => setTimeout(r, 10))
    h.onSamples(batch('h', [[14_000, { cpu_busy_percent: 14 }]]))
    expect(h.buffer.get('cpu_busy_percent')?.v).toEqual([8, 9, 10, 11, 12, 13, 14])
    const last = histCalls.filter((u) => u.pathname.includes('cpu_busy_percent')).at(-1)
    expect(Number(last?.searchParams.get('start'))).toBe(11_000)
  })

  it('says so when the host does not exist', async () => {
    setApi(new ApiClient({ fetch: async () => new Response('{"detail":"unknown host"}', { status: 404 }) }))
    const h = useHost()
    await h.open('nope')
    expect(h.notFound).toBe(true)
    expect(h.info).toBeNull()
  })
})
