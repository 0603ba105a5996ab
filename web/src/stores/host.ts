// One host's page: system info, live series (WebSocket + back-fill), live top processes.
import { defineStore } from 'pinia'
import { markRaw, ref, shallowRef } from 'vue'
import { useApi } from '../api'
import type { HostOut, ProcessOut, ProcessesOut } from '../api/types'
import type { HostBatch, Process } from '../gen/hostpulse/v1/metrics_pb'
import type { MetricKey } from '../gen/catalog'
import { SeriesBuffer } from '../lib/series'

/** The metrics the live charts draw; back-filled after a reconnect. */
export const LIVE_METRICS = [
  'cpu_busy_percent',
  'memory_usage_percent',
  'cpu_load1',
  'network_receive_bytes_per_second',
  'network_transmit_bytes_per_second',
  'disk_read_bytes_per_second',
  'disk_write_bytes_per_second',
  'cpu_core_busy_percent',
] as const satisfies readonly MetricKey[]

export const LIVE_WINDOW_MS = 15 * 60_000

function proc(p: Process): ProcessOut {
  return {
    pid: p.pid,
    name: p.name,
    user: p.user,
    cpu_percent: p.cpuPercent,
    mem_percent: p.memPercent,
    rss_bytes: Number(p.rssBytes),
    threads: p.threads,
    status: p.status,
    cmdline: p.cmdline,
  }
}

export const useHost = defineStore('host', () => {
  const id = ref<string | null>(null)
  const info = shallowRef<HostOut | null>(null)
  const buffer = shallowRef(markRaw(new SeriesBuffer()))
  const rev = ref(0)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const notFound = ref(false)
  const liveProcesses = shallowRef<ProcessesOut | null>(null)
  let generation = 0

  async function open(hostId: string, now = Date.now()) {
    const gen = ++generation
    id.value = hostId
    info.value = null
    buffer.value = markRaw(new SeriesBuffer())
    liveProcesses.value = null
    loading.value = true
    error.value = null
    notFound.value = false
    const api = useApi()
    try {
      // one request first: a host that does not exist answers one 404, not one per panel
      const current = await api.current(hostId)
      if (gen !== generation) return
      const procs = await api.processes(hostId).catch(() => null)
      if (gen !== generation) return
      info.value = current.host
      for (const v of current.values) buffer.value.add(v.metric, v.labels, v.ts_ms, v.value)
      liveProcesses.value = procs
      await backfill(now - LIVE_WINDOW_MS, now, gen)
    } catch (e) {
      if (gen !== generation) return
      const status = (e as { status?: number }).status
      notFound.value = status === 404
      error.value = (e as Error).message
    } finally {
      if (gen === generation) loading.value = false
    }
  }

  /** Fill [fromMs, toMs] of the live metrics from the raw history (after open or a reconnect). */
  async function backfill(fromMs: number, toMs: number, gen = generation) {
    const hostId = id.value
    if (!hostId) return
    const api = useApi()
    const results = await Promise.all(
      LIVE_METRICS.map((m) =>
        api.history(hostId, m, { start: fromMs, end: toMs, tier: 'raw', agg: 'last' }).catch(() => null),
      ),
    )
    if (gen !== generation) return
    const buf = buffer.value
    for (const h of results) {
      if (!h) continue
      for (const s of h.series) for (const p of s.points) buf.add(s.metric, s.labels, p.ts_ms, p.value)
    }
    rev.value++
  }

  function onSamples(batch: HostBatch) {
    if (batch.host?.hostId !== id.value) return
    buffer.value.addBatch(batch)
    for (const snap of batch.snapshots) {
      if (snap.topCpu.length || snap.topMemory.length) {
        liveProcesses.value = {
          host_id: id.value ?? '',
          ts_ms: Number(snap.timestampMs),
          top_cpu: snap.topCpu.map(proc),
          top_memory: snap.topMemory.map(proc),
        }
      }
    }
    if (info.value && batch.host) {
      const last = Number(batch.snapshots.at(-1)?.timestampMs ?? 0)
      if (last > info.value.last_seen_ms) info.value = { ...info.value, last_seen_ms: last, status: 'online' }
    }
    rev.value++
  }

  /** After a reconnect: re-read what may have been missed since the newest sample we have. */
  function onResumed() {
    const from = buffer.value.lastTs || Date.now() - LIVE_WINDOW_MS
    void backfill(from, Date.now())
  }

  function close() {
    generation++
    id.value = null
  }

  return { id, info, buffer, rev, loading, error, notFound, liveProcesses, open, backfill, onSamples, onResumed, close }
})
