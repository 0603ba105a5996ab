// Active alerts, polled every few seconds while a page shows them (the live WebSocket carries
// no alert frames). The server decides every state; this store only mirrors /alerts/active.
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import { useAlertsApi } from '../api'
import type { AlertOut, Severity } from '../api/alerts'
import { ApiError } from '../api/client'
import { useSession } from './session'

export const POLL_MS = 3000

export interface HostAlerts {
  firing: number
  pending: number
  worst: Severity | null
}

export const useAlerts = defineStore('alerts', () => {
  const active = shallowRef<AlertOut[]>([])
  const loaded = ref(false)
  const error = ref<string | null>(null)
  /** The server runs without the alert engine (503): nothing to show, no error either. */
  const unavailable = ref(false)
  let users = 0
  let timer: ReturnType<typeof setInterval> | null = null
  let inflight: Promise<void> | null = null

  function load(): Promise<void> {
    const session = useSession()
    // nobody logged in on a server that wants it: no point asking (the login page is shown)
    if (session.required && !session.loggedIn) return Promise.resolve()
    inflight ??= (async () => {
      try {
        active.value = await useAlertsApi().active()
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

  /** Poll while at least one caller needs it; returns the function that ends this caller's need. */
  function watchActive(everyMs = POLL_MS): () => void {
    users++
    if (!timer) {
      void load()
      timer = setInterval(() => void load(), everyMs)
    }
    let done = false
    return () => {
      if (done) return
      done = true
      if (--users === 0 && timer) {
        clearInterval(timer)
        timer = null
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

  return { active, loaded, error, unavailable, firing, byHost, load, watchActive, ack }
})
