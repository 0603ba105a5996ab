// Every host with its newest summary and a short history for the card sparklines.
import { defineStore } from 'pinia'
import { computed, markRaw, ref, shallowReactive, shallowRef, toRaw } from 'vue'
import { useApi } from '../api'
import { takePrefetchedHosts } from '../api/prefetch'
import type { History, HostOut } from '../api/types'
import type { MetricKey } from '../gen/catalog'
import { isLoopback } from '../lib/series'
import type { HostSummary } from '../gen/hostpulse/v1/live_pb'
import { statusOf, type Status } from '../lib/status'

export const SPARK_POINTS = 60

export interface CardData {
  ts: number
  interval: number
  cpu?: number
  mem?: number
  disk?: number
  rx?: number
  tx?: number
  load1?: number
  cpuHist: number[]
  memHist: number[]
  netHist: number[]
  diskHist: number[]
  /** Time of the first live summary: history fills the sparklines before it. */
  firstTs: number
}

/** Requests for sparkline history at a time (a card asks when it first shows). */
const FILL_CONCURRENCY = 4

export type SortKey = 'name' | 'cpu' | 'memory' | 'disk' | 'status'
const STATUS_ORDER: Record<Status, number> = { offline: 0, stale: 1, online: 2 }

function push(arr: number[], v: number | undefined) {
  if (v === undefined) return
  arr.push(v)
  if (arr.length > SPARK_POINTS) arr.splice(0, arr.length - SPARK_POINTS)
}

export function matches(h: HostOut, terms: string[]): boolean {
  const labels = Object.entries(h.labels).map(([k, v]) => [k.toLowerCase(), v.toLowerCase()] as const)
  return terms.every((term) => {
    const eq = term.indexOf('=')
    if (eq > 0) {
      const key = term.slice(0, eq)
      const value = term.slice(eq + 1)
      return labels.some(([k, v]) => k === key && (value === '' || v === value))
    }
    return (
      h.hostname.toLowerCase().includes(term) ||
      h.host_id.toLowerCase().includes(term) ||
      labels.some(([k, v]) => k.includes(term) || v.includes(term))
    )
  })
}

export const useFleet = defineStore('fleet', () => {
  const hosts = shallowRef<HostOut[]>([])
  const cards = shallowReactive(new Map<string, CardData>())
  // lists and counts read the map untracked and refresh on `tick` (once a second), so 1,000
  // hosts reporting do not re-sort the fleet on every frame
  const quiet = toRaw(cards)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const now = ref(Date.now())
  const query = ref('')
  const statusFilter = ref<Status | 'all'>('all')
  const sortKey = ref<SortKey>('name')
  /** Bumped at most every `SORT_EVERY_MS` so live values do not reshuffle cards constantly. */
  const sortTick = ref(0)

  let inflight: Promise<void> | null = null

  /** Read the host list (one request at a time: callers share the one in flight). */
  function load(): Promise<void> {
    inflight ??= fetchHosts().finally(() => (inflight = null))
    return inflight
  }

  let loadedOnce = false
  /** Load unless a load already happened or is under way (the first page view). */
  function ensureLoaded(): Promise<void> {
    return loadedOnce && !error.value ? Promise.resolve() : load()
  }

  async function fetchHosts() {
    loadedOnce = true
    loading.value = true
    error.value = null
    try {
      const list = (await takePrefetchedHosts()) ?? (await useApi().hosts())
      hosts.value = list.sort((a, b) => a.hostname.localeCompare(b.hostname))
    } catch (e) {
      error.value = (e as Error).message
    } finally {
      loading.value = false
    }
  }

  let idsFor: HostOut[] | null = null
  let ids = new Set<string>()
  function knownIds(): Set<string> {
    if (idsFor !== hosts.value) {
      idsFor = hosts.value
      ids = new Set(idsFor.map((h) => h.host_id))
    }
    return ids
  }

  function applySummaries(list: HostSummary[]) {
    let added = false
    for (const s of list) {
      const prev = cards.get(s.hostId)
      const ts = Number(s.timestampMs)
      if (prev && ts <= prev.ts) continue
      const base = prev ?? markRaw({ ts: 0, interval: 5, cpuHist: [], memHist: [], netHist: [], diskHist: [], firstTs: ts })
      push(base.cpuHist, s.cpuPercent)
      push(base.memHist, s.memoryPercent)
      push(base.diskHist, s.diskPercent)
      const net = s.netRxBytesPerSecond === undefined && s.netTxBytesPerSecond === undefined
        ? undefined
        : (s.netRxBytesPerSecond ?? 0) + (s.netTxBytesPerSecond ?? 0)
      push(base.netHist, net)
      // a new object per update: only the card that reads this key re-renders
      cards.set(
        s.hostId,
        markRaw({
          ...base,
          ts,
          interval: s.intervalSeconds || base.interval,
          cpu: s.cpuPercent,
          mem: s.memoryPercent,
          disk: s.diskPercent,
          rx: s.netRxBytesPerSecond,
          tx: s.netTxBytesPerSecond,
          load1: s.load1,
        }),
      )
      if (!prev && !knownIds().has(s.hostId)) added = true
    }
    if (added) void load() // a host we did not know: fetch its system info
  }

  function lastSeen(h: HostOut): number {
    return Math.max(h.last_seen_ms, quiet.get(h.host_id)?.ts ?? 0)
  }

  function statusOfHost(h: HostOut): Status {
    return statusOf(h, lastSeen(h), now.value)
  }

  /** Search terms: every one must match. `key=value` matches a label, `key=` any value of it;
   * a bare word matches the hostname, id or any label (`env=prod role=db web`). */
  const terms = computed(() => query.value.trim().toLowerCase().split(/\s+/).filter(Boolean))

  const visible = computed(() => {
    void sortTick.value
    const q = terms.value
    const filt = statusFilter.value
    let list = hosts.value.filter((h) => (!q.length || matches(h, q)) && (filt === 'all' || statusOfHost(h) === filt))
    const key = sortKey.value
    if (key !== 'name') {
      const val = (h: HostOut): number => {
        const c = quiet.get(h.host_id)
        if (key === 'status') return STATUS_ORDER[statusOfHost(h)]
        const v = key === 'cpu' ? c?.cpu : key === 'memory' ? c?.mem : c?.disk
        return v ?? -1
      }
      list = [...list].sort((a, b) => val(b) - val(a) || a.hostname.localeCompare(b.hostname))
    }
    return list
  })

  const counts = computed(() => {
    void sortTick.value
    const out: Record<Status, number> = { online: 0, stale: 0, offline: 0 }
    for (const h of hosts.value) out[statusOfHost(h)]++
    return out
  })

  /** The name a host goes by everywhere (its hostname; the id while it is not known). */
  function nameOf(id: string): string {
    return byId.value.get(id)?.hostname || id
  }
  const byId = computed(() => new Map(hosts.value.map((h) => [h.host_id, h])))

  const filled = new Set<string>()
  let running = 0
  const waiting: (() => void)[] = []

  /** Fill a card's sparklines from the last minutes of history, so they do not start empty
   * and grow for a minute after the page opens. Once per host; a few hosts at a time. A card
   * no longer `wanted` (scrolled out of view) by its turn asks nothing, and fills when shown
   * again: scrolling through the grid queued 5 requests for every card that stayed in view
   * 250 ms, and they went on for long after the scrolling stopped. */
  async function fillSparklines(h: HostOut, wanted: () => boolean = () => true): Promise<void> {
    if (filled.has(h.host_id)) return
    filled.add(h.host_id)
    if (running >= FILL_CONCURRENCY) await new Promise<void>((go) => waiting.push(go))
    if (!wanted()) {
      filled.delete(h.host_id)
      waiting.shift()?.() // its turn goes to the next in line
      return
    }
    running++
    try {
      const nowMs = Date.now()
      const iv = (h.interval_seconds || 5) * 1000
      const q = { start: nowMs - SPARK_POINTS * iv, end: nowMs, tier: 'raw' as const, agg: 'last' as const }
      const api = useApi()
      const get = (m: MetricKey) => api.history(h.host_id, m, q).catch(() => null)
      const [cpu, mem, fs, rx, tx] = await Promise.all([
        get('cpu_busy_percent'), get('memory_usage_percent'), get('filesystem_usage_percent'),
        get('network_receive_bytes_per_second'), get('network_transmit_bytes_per_second'),
      ])
      const fold = (list: (History | null)[], f: (a: number, b: number) => number, skip = (_: Record<string, string>) => false) => {
        const acc = new Map<number, number>()
        for (const hist of list) for (const s of hist?.series ?? []) {
          if (skip(s.labels)) continue
          for (const p of s.points) acc.set(p.ts_ms, acc.has(p.ts_ms) ? f(acc.get(p.ts_ms) as number, p.value) : p.value)
        }
        return [...acc.entries()].sort((a, b) => a[0] - b[0])
      }
      const prev = cards.get(h.host_id)
      const before = prev?.firstTs ?? Number.POSITIVE_INFINITY
      const older = (pts: [number, number][]) => pts.filter(([t]) => t < before).map(([, v]) => v)
      const join = (hist: [number, number][], live: number[] | undefined) => [...older(hist), ...(live ?? [])].slice(-SPARK_POINTS)
      const cpuPts = fold([cpu], Math.max)
      if (!cpuPts.length && !prev) return
      const base = prev ?? { ts: 0, interval: h.interval_seconds, cpuHist: [], memHist: [], netHist: [], diskHist: [], firstTs: Number.POSITIVE_INFINITY }
      cards.set(
        h.host_id,
        markRaw({
          ...base,
          cpuHist: join(cpuPts, prev?.cpuHist),
          memHist: join(fold([mem], Math.max), prev?.memHist),
          diskHist: join(fold([fs], Math.max), prev?.diskHist),
          netHist: join(fold([rx, tx], (a, b) => a + b, isLoopback), prev?.netHist),
        }),
      )
    } finally {
      running--
      waiting.shift()?.()
    }
  }

  function tick(ms = Date.now()) {
    now.value = ms
    sortTick.value++
  }

  return {
    hosts, cards, loading, error, now, query, statusFilter, sortKey, visible, counts,
    load, ensureLoaded, applySummaries, statusOfHost, tick, nameOf, byId, fillSparklines,
  }
})
