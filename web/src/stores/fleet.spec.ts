import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import type { HostOut } from '../api/types'
import { summary } from '../test/frames'
import { SPARK_POINTS, useFleet } from './fleet'

function host(id: string, name: string, last: number, labels: Record<string, string> = {}): HostOut {
  return {
    host_id: id, hostname: name, status: 'online', last_seen_ms: last, first_seen_ms: 0, interval_seconds: 1,
    os: 'Linux', kernel: '6', arch: 'x86_64', cpu_model: 'cpu', boot_time: 0, logical_cores: 4, memory_bytes: 1, labels,
    agent_version: '1', unsupported: [], online_within_seconds: 2, stale_within_seconds: 10,
  }
}

let served: HostOut[] = []
beforeEach(() => {
  setActivePinia(createPinia())
  served = [
    host('b', 'beta', 100_000, { role: 'db', env: 'prod' }),
    host('a', 'alpha', 100_000, { role: 'web', env: 'prod' }),
    host('c', 'gamma', 1_000, { role: 'db', env: 'staging' }),
  ]
  setApi(new ApiClient({ fetch: async () => new Response(JSON.stringify(served)) }))
})

describe('fleet store', () => {
  it('loads hosts sorted by name and counts them by status', async () => {
    const f = useFleet()
    await f.load()
    f.tick(100_500)
    expect(f.visible.map((h) => h.host_id)).toEqual(['a', 'b', 'c'])
    expect(f.counts).toEqual({ online: 2, stale: 0, offline: 1 })
  })

  it('keeps sparklines from live summaries and ignores older ones', async () => {
    const f = useFleet()
    await f.load()
    for (let i = 1; i <= SPARK_POINTS + 5; i++) f.applySummaries([summary('a', 100_000 + i * 1000, i, { memoryPercent: 50 })])
    f.applySummaries([summary('a', 100_000, 999)]) // late duplicate
    const card = f.cards.get('a')
    expect(card?.cpu).toBe(SPARK_POINTS + 5)
    expect(card?.cpuHist.length).toBe(SPARK_POINTS)
    expect(card?.cpuHist.at(-1)).toBe(SPARK_POINTS + 5)
    expect(card?.memHist.at(-1)).toBe(50)
    expect(card?.diskHist).toEqual([]) // not sent: no made-up zero
  })

  it('searches by name, id or label, filters by status, sorts by a live value', async () => {
    const f = useFleet()
    await f.load()
    f.applySummaries([summary('a', 100_000, 10), summary('b', 100_000, 80), summary('c', 1_000, 50)])
    f.tick(100_500)
    f.query = 'role=db'
    expect(f.visible.map((h) => h.host_id)).toEqual(['b', 'c'])
    // several terms: every one must hold
    f.query = 'env=prod role=db'
    expect(f.visible.map((h) => h.host_id)).toEqual(['b'])
    f.query = 'env=prod  ALPHA'
    expect(f.visible.map((h) => h.host_id)).toEqual(['a'])
    f.query = 'role= env=staging'
    expect(f.visible.map((h) => h.host_id)).toEqual(['c'])
    f.query = 'role=d' // a label value matches whole, not as a prefix
    expect(f.visible.map((h) => h.host_id)).toEqual([])
    f.query = 'GAM'
    expect(f.visible.map((h) => h.host_id)).toEqual(['c'])
    f.query = ''
    f.statusFilter = 'online'
    expect(f.visible.map((h) => h.host_id)).toEqual(['a', 'b'])
    f.statusFilter = 'all'
    f.sortKey = 'cpu'
    expect(f.visible.map((h) => h.host_id)).toEqual(['b', 'c', 'a'])
  })

  it('fills sparklines a few hosts at a time, and not for cards gone from view by their turn', async () => {
    const asked: string[] = []
    const release: (() => void)[] = []
    setApi(new ApiClient({
      fetch: async (input: RequestInfo | URL) => {
        const m = /hosts\/([^/]+)\/metrics\/([^/]+)\/history/.exec(String(input))
        if (!m) return new Response(JSON.stringify(served))
        asked.push(m[1])
        await new Promise<void>((go) => release.push(go))
        const series = m[2] === 'cpu_busy_percent' ? [{ metric: m[2], labels: {}, points: [{ ts_ms: 1, value: 7 }] }] : []
        return new Response(JSON.stringify({ host_id: m[1], metric: m[2], tier: 'raw', series }))
      },
    }))
    const f = useFleet()
    const ids = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6']
    const shown = new Set(ids)
    const fills = ids.map((id) => f.fillSparklines(host(id, id, 0), () => shown.has(id)))
    await new Promise((r) => setTimeout(r, 0))
    expect(new Set(asked)).toEqual(new Set(['h1', 'h2', 'h3', 'h4'])) // 4 hosts at a time
    shown.delete('h5') // scrolled away while waiting
    while (release.length) {
      release.splice(0).forEach((go) => go())
      await new Promise((r) => setTimeout(r, 0))
    }
    await Promise.all(fills)
    expect(new Set(asked)).toEqual(new Set(['h1', 'h2', 'h3', 'h4', 'h6']))
    expect(f.cards.get('h6')?.cpuHist).toEqual([7])
    expect(f.cards.get('h5')).toBeUndefined()
    // shown again later: it fills then
    const again = f.fillSparklines(host('h5', 'h5', 0), () => true)
    await new Promise((r) => setTimeout(r, 0))
    release.splice(0).forEach((go) => go())
    await again
    expect(f.cards.get('h5')?.cpuHist).toEqual([7])
  })

  it('fetches the list again when an unknown host reports', async () => {
    const f = useFleet()
    await f.load()
    served = [...served, host('d', 'delta', 100_000)]
    f.applySummaries([summary('d', 100_000, 1)])
    await new Promise((r) => setTimeout(r, 0))
    await new Promise((r) => setTimeout(r, 0))
    expect(f.hosts.map((h) => h.host_id)).toContain('d')
  })

  it('shows a load failure as an error', async () => {
    setApi(new ApiClient({ fetch: async () => new Response('{"detail":"boom"}', { status: 500 }) }))
    const f = useFleet()
    await f.load()
    expect(f.error).toContain('boom')
    expect(f.loading).toBe(false)
  })
})

describe('prefetched host list', () => {
  it('uses the list index.html asked for, once, then asks the API', async () => {
    const early = [host('p', 'prefetched', 1)]
    window.__hpHosts = Promise.resolve(new Response(JSON.stringify(early)))
    const f = useFleet()
    await f.load()
    expect(f.hosts.map((h) => h.host_id)).toEqual(['p'])
    await f.load()
    expect(f.hosts.map((h) => h.host_id)).toEqual(['a', 'b', 'c'])
  })

  it('falls back to the API when the early request was refused', async () => {
    window.__hpHosts = Promise.resolve(new Response('{"detail":"authentication required"}', { status: 401 }))
    const f = useFleet()
    await f.load()
    expect(f.hosts.length).toBe(3)
  })
})
