import { createPinia, setActivePinia } from 'pinia'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { setApi } from '../api'
import { ApiClient } from '../api/client'
import { alert, fakeServer, type FakeServer } from '../test/fakeServer'
import { activeAlert, alertsFrame } from '../test/frames'
import { ScriptedSocket } from '../test/scriptedSocket'
import { useAlerts } from './alerts'
import { useLive } from './live'

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
  it('loads once, then follows pushed frames (no polling) while someone watches', async () => {
    vi.useFakeTimers()
    ScriptedSocket.all = []
    const live = useLive()
    live.connect({ url: 'ws://x/api/v1/ws', WebSocketImpl: ScriptedSocket as unknown as typeof WebSocket })
    const ws = ScriptedSocket.all[0]
    ws.open()
    const s = useAlerts()
    const stopA = s.watchActive()
    const stopB = s.watchActive()
    await vi.advanceTimersByTimeAsync(0)
    expect(polls()).toBe(1)
    expect(s.active.map((a) => a.id)).toEqual(['a1', 'a2', 'a3'])
    // the socket asked for alert events once
    expect(ws.sent.map((m) => JSON.parse(m)).filter((m) => m.alerts)).toHaveLength(1)
    ws.feed(alertsFrame([activeAlert('a1'), activeAlert('a2', { severity: 'warning', host: 'web-2' })], [], true))
    expect(s.active.map((a) => a.id)).toEqual(['a1', 'a2'])
    // fired: a new one; ended: one gone; changed: silenced
    ws.feed(alertsFrame([activeAlert('a9', { host: 'db-1', hostName: 'db-1.test', firedAtMs: 9000n }), activeAlert('a2', { severity: 'warning', host: 'web-2', silenced: true, silenceId: 's1', silencedUntilMs: 99_000n })], ['a1']))
    expect(s.active.map((a) => a.id)).toEqual(['a9', 'a2'])
    expect(s.active[0]).toMatchObject({ host: 'db-1', host_name: 'db-1.test', severity: 'critical', acked_by: null, fired_at_ms: 9000 })
    expect(s.active[1]).toMatchObject({ silenced: true, silence_id: 's1', silenced_until_ms: 99_000 })
    expect(s.changes).toBe(2)
    await vi.advanceTimersByTimeAsync(30_000)
    expect(polls()).toBe(1)
    stopA()
    stopA() // a second call changes nothing
    expect(ws.sent.map((m) => JSON.parse(m)).at(-1).alerts).toBe(true)
    stopB()
    expect(ws.sent.map((m) => JSON.parse(m)).at(-1).alerts).toBeUndefined()
    live.disconnect()
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
