import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import { alert, fakeServer, type FakeServer } from '../test/fakeServer'
import { POLL_MS, useAlerts } from './alerts'

let srv: FakeServer
beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
  srv = fakeServer({ active: [alert('a1'), alert('a2', { host: 'web-2', severity: 'warning' }), alert('a3', { host: 'web-1', state: 'pending', severity: null })] })
  setApi(new ApiClient({ fetch: srv.fetch }))
})
afterEach(() => vi.useRealTimers())

const polls = () => srv.calls.filter((c) => c.path === '/alerts/active').length

describe('active alerts store', () => {
  it('polls while someone watches, shared by all watchers, and stops after the last', async () => {
    vi.useFakeTimers()
    const s = useAlerts()
    const stopA = s.watchActive()
    const stopB = s.watchActive()
    await vi.advanceTimersByTimeAsync(0)
    expect(polls()).toBe(1)
    expect(s.active.map((a) => a.id)).toEqual(['a1', 'a2', 'a3'])
    srv.active = [alert('a9', { host: 'db-1' })]
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(polls()).toBe(2)
    expect(s.active.map((a) => a.id)).toEqual(['a9'])
    stopA()
    stopA() // a second call changes nothing
    await vi.advanceTimersByTimeAsync(POLL_MS)
    expect(polls()).toBe(3)
    stopB()
    await vi.advanceTimersByTimeAsync(POLL_MS * 3)
    expect(polls()).toBe(3)
  })

  it('sums firing and pending per host with the worst severity', async () => {
    const s = useAlerts()
    await s.load()
    expect(s.byHost.get('web-1')).toEqual({ firing: 1, pending: 1, worst: 'critical' })
    expect(s.byHost.get('web-2')).toEqual({ firing: 1, pending: 0, worst: 'warning' })
    expect(s.firing.length).toBe(2)
  })

  it('acknowledges and shows who did it at once', async () => {
    const s = useAlerts()
    await s.load()
    await s.ack('a1', 'ada')
    expect(s.active.find((a) => a.id === 'a1')).toMatchObject({ acked_by: 'ada', acked_at_ms: 5000 })
    await expect(s.ack('a3', 'ada')).rejects.toMatchObject({ status: 409 })
  })

  it('treats a server without the alert engine as "not running", other failures as errors', async () => {
    const s = useAlerts()
    srv.alertsDown = 503
    await s.load()
    expect(s.unavailable).toBe(true)
    expect(s.error).toBeNull()
    srv.alertsDown = 500
    await s.load()
    expect(s.unavailable).toBe(false)
    expect(s.error).toBe('alerts are not running')
  })
})
