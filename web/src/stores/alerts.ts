// Active alerts, pushed by the server over the live WebSocket (subscribed with `alerts`): a
// snapshot on every (re)subscription, then each alert that fires, changes or ends. One GET of
// /alerts/active when the first page needs them tells whether the server runs the alert engine
// at all (503) and shows the alerts before the socket is up. The server decides every state;
// this store only mirrors it.
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import { useAlertsApi } from '../api'
import type { AlertOut, AlertState, Severity } from '../api/alerts'
import { ApiError } from '../api/client'
import type { ActiveAlert, AlertEvents } from '../gen/hostpulse/v1/live_pb'
import { useLive } from './live'
import { useSession } from './session'

export interface HostAlerts {
  firing: number
  pending: number
  worst: Severity | null
}

/** An alert of a live frame in the shape of GET /alerts/active. */
export function fromFrame(a: ActiveAlert): AlertOut {
  const opt = (v: bigint | undefined) => (v === undefined ? null : Number(v))
  return {
    id: a.id,
    rule_id: a.ruleId,
    rule_title: a.ruleTitle,
    host: a.host,
    host_name: a.hostName || a.host,
    labels: { ...a.labels },
    state: a.state as AlertState,
    severity: a.severity === 'warning' || a.severity === 'critical' ? a.severity : null,
    value: a.value ?? null,
    pending_since_ms: opt(a.pendingSinceMs),
    fired_at_ms: opt(a.firedAtMs),
    acked_by: a.ackedBy || null,
    acked_at_ms: opt(a.ackedAtMs),
    silenced: a.silenced,
    silence_id: a.silenceId || null,
    silenced_until_ms: opt(a.silencedUntilMs),
  }
}

const rank = (a: AlertOut) => (a.severity === 'critical' ? 2 : a.severity === 'warning' ? 1 : 0)
/** The server's order: worst first, then oldest first. */
function ordered(list: AlertOut[]): AlertOut[] {
  return [...list].sort((x, y) => rank(y) - rank(x) || (x.fired_at_ms ?? x.pending_since_ms ?? 0) - (y.fired_at_ms ?? y.pending_since_ms ?? 0))
}

/** `list` after the events of one frame (a snapshot replaces it). */
export function applyEvents(list: AlertOut[], e: AlertEvents): AlertOut[] {
  const incoming = e.alerts.map(fromFrame)
  if (e.snapshot) return ordered(incoming)
  const byId = new Map(list.map((a) => [a.id, a]))
  for (const id of e.ended) byId.delete(id)
  for (const a of incoming) byId.set(a.id, a)
  return ordered([...byId.values()])
}

export const useAlerts = defineStore('alerts', () => {
  const active = shallowRef<AlertOut[]>([])
  const loaded = ref(false)
  const error = ref<string | null>(null)
  /** The server runs without the alert engine (503): nothing to show, no error either. */
  const unavailable = ref(false)
  /** Bumped on every pushed change: pages that show alert history reload it then. */
  const changes = ref(0)
  let users = 0
  let stopLive: (() => void) | null = null
  let inflight: Promise<void> | null = null
  let pushed = false

  function load(): Promise<void> {
    const session = useSession()
    // nobody logged in on a server that wants it: no point asking (the login page is shown)
    if (session.required && !session.loggedIn) return Promise.resolve()
    inflight ??= (async () => {
      try {
        const got = await useAlertsApi().active()
        // a frame that came while the request ran is newer than its answer
        if (!pushed) active.value = got
        error.value = null
        unavailable.value = false
      } catch (e) {
        unavailable.value = e instanceof ApiError && e.status === 503
        error.value = unavailable.value ? null : e instanceof ApiError ? e.detail : (e as Error).message
      } finally {
        loaded.value = true
        inflight = null
      }
    })()
    return inflight
  }

  function onEvents(e: AlertEvents) {
    pushed = true
    active.value = applyEvents(active.value, e)
    loaded.value = true
    error.value = null
    if (!e.snapshot || e.alerts.length) changes.value++
  }

  /** Follow the active alerts while at least one caller needs them; returns the function that
   * ends this caller's need. */
  function watchActive(): () => void {
    users++
    if (!stopLive) {
      pushed = false
      void load()
      stopLive = useLive().onAlerts(onEvents)
    }
    let done = false
    return () => {
      if (done) return
      done = true
      if (--users === 0 && stopLive) {
        stopLive()
        stopLive = null
      }
    }
  }

  async function ack(id: string, by: string): Promise<AlertOut> {
    const updated = await useAlertsApi().ack(id, by)
    active.value = active.value.map((a) => (a.id === id ? updated : a))
    return updated
  }

  const firing = computed(() => active.value.filter((a) => a.state === 'firing'))
  /** Per host: counts and the worst severity of its firing alerts (fleet cards, nav badge). */
  const byHost = computed(() => {
    const m = new Map<string, HostAlerts>()
    for (const a of active.value) {
      const h = m.get(a.host) ?? { firing: 0, pending: 0, worst: null }
      if (a.state === 'firing') {
        h.firing++
        if (a.severity === 'critical' || !h.worst) h.worst = a.severity
      } else h.pending++
      m.set(a.host, h)
    }
    return m
  })

  return { active, loaded, error, unavailable, changes, firing, byHost, load, watchActive, ack }
})
