// The one live connection of the app and its state; pages register what they want to hear.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import type { HostSummary } from '../gen/hostpulse/v1/live_pb'
import type { HostBatch } from '../gen/hostpulse/v1/metrics_pb'
import { LiveSocket, liveProtocols, liveUrl, type ConnState, type LiveOptions } from '../live/socket'

type SamplesFn = (b: HostBatch) => void
type FleetFn = (h: HostSummary[]) => void
type ResumeFn = (sinceMs: number) => void

export const useLive = defineStore('live', () => {
  const state = ref<ConnState>('stopped')
  const lastError = ref<string | null>(null)
  const socket = shallowRef<LiveSocket | null>(null)
  const hostSubs = new Map<string, Set<SamplesFn>>()
  const fleetSubs = new Set<FleetFn>()
  const resumeSubs = new Set<ResumeFn>()

  function connect(opts: Partial<LiveOptions> & { token?: () => string | null } = {}) {
    if (socket.value) return
    const token = opts.token ?? (() => null)
    socket.value = new LiveSocket({
      url: opts.url ?? (() => liveUrl(window.location)),
      protocols: opts.protocols ?? (() => liveProtocols(token())),
      ...opts,
      handlers: {
        state: (s) => (state.value = s),
        samples: (b) => hostSubs.get(b.host?.hostId ?? '')?.forEach((fn) => fn(b)),
        fleet: (h) => fleetSubs.forEach((fn) => fn(h)),
        resumed: (since) => resumeSubs.forEach((fn) => fn(since)),
        error: (m) => (lastError.value = m),
      },
    })
    socket.value.start()
    resubscribe()
  }

  function disconnect() {
    socket.value?.stop()
    socket.value = null
  }

  function resubscribe() {
    socket.value?.subscribe([...hostSubs.keys()], fleetSubs.size > 0)
  }

  /** Hear `host`'s samples; returns the function that stops it. */
  function onHost(host: string, fn: SamplesFn, resumed?: ResumeFn): () => void {
    let set = hostSubs.get(host)
    if (!set) hostSubs.set(host, (set = new Set()))
    set.add(fn)
    if (resumed) resumeSubs.add(resumed)
    resubscribe()
    return () => {
      set.delete(fn)
      if (!set.size) hostSubs.delete(host)
      if (resumed) resumeSubs.delete(resumed)
      resubscribe()
    }
  }

  function onFleet(fn: FleetFn, resumed?: ResumeFn): () => void {
    fleetSubs.add(fn)
    if (resumed) resumeSubs.add(resumed)
    resubscribe()
    return () => {
      fleetSubs.delete(fn)
      if (resumed) resumeSubs.delete(resumed)
      resubscribe()
    }
  }

  return { state, lastError, connect, disconnect, onHost, onFleet }
})
