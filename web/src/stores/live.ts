// The one live connection of the app and its state; pages register what they want to hear.
import { defineStore } from 'pinia'
import { ref, shallowRef } from 'vue'
import type { AlertEvents, HostSummary } from '../gen/hostpulse/v1/live_pb'
import type { HostBatch } from '../gen/hostpulse/v1/metrics_pb'
import { LiveSocket, liveProtocols, liveUrl, type ConnState, type LiveOptions } from '../live/socket'

type SamplesFn = (b: HostBatch) => void
type FleetFn = (h: HostSummary[]) => void
type ResumeFn = (sinceMs: number) => void
type AlertsFn = (e: AlertEvents) => void

export const useLive = defineStore('live', () => {
  const state = ref<ConnState>('stopped')
  const lastError = ref<string | null>(null)
  const socket = shallowRef<LiveSocket | null>(null)
  const hostSubs = new Map<string, Set<SamplesFn>>()
  const fleetSubs = new Set<FleetFn>()
  const resumeSubs = new Set<ResumeFn>()
  const alertSubs = new Set<AlertsFn>()

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
        alerts: (e) => alertSubs.forEach((fn) => fn(e)),
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
    socket.value?.subscribe([...hostSubs.keys()], fleetSubs.size > 0, alertSubs.size > 0)
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

  /** Hear alert events: a snapshot of the active alerts on every (re)subscription, then each
   * alert that fires, changes or ends. Returns the function that stops it. */
  function onAlerts(fn: AlertsFn): () => void {
    alertSubs.add(fn)
    resubscribe()
    return () => {
      alertSubs.delete(fn)
      resubscribe()
    }
  }

  return { state, lastError, connect, disconnect, onHost, onFleet, onAlerts }
})
