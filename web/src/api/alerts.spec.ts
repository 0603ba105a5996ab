import { describe, expect, it } from 'vitest'
import { fakeServer } from '../test/fakeServer'
import { AdminApi } from './admin'
import { AlertsApi } from './alerts'
import { ApiClient, ApiError } from './client'

describe('AlertsApi', () => {
  it('calls the alerts routes with the right methods, paths and bodies', async () => {
    const srv = fakeServer()
    const api = new AlertsApi(new ApiClient({ fetch: srv.fetch }))
    await api.rules()
    await api.saveRule({ id: 'r 1', metric: 'cpu_busy_percent', warning: 1 }, true)
    await api.saveRule({ id: 'r 1', metric: 'cpu_busy_percent', warning: 2 }, false)
    await api.deleteRule('r 1')
    await api.saveSilence({ hosts: ['a'], rules: [], labels: {}, comment: '', created_by: '', starts_at: null, ends_at: '2026-12-01T00:00:00Z', recurring: null })
    await api.saveSilence({ hosts: ['a'], rules: [], labels: {}, comment: '', created_by: '', starts_at: null, ends_at: '2026-12-01T00:00:00Z', recurring: null }, 's1')
    expect(await api.testChannel('ops')).toEqual({ ok: false, status: 500, error: 'HTTP 500: down', duration_ms: 12 })
    expect(srv.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'GET /alerts/rules',
      'POST /alerts/rules',
      'PUT /alerts/rules/r%201',
      'DELETE /alerts/rules/r%201',
      'POST /alerts/silences',
      'PUT /alerts/silences/s1',
      'POST /alerts/channels/ops/test',
    ])
    expect(srv.calls[2].body).toMatchObject({ id: 'r 1', warning: 2 })
  })

  it('sends history filters as query parameters with ISO times', async () => {
    const srv = fakeServer()
    await new AlertsApi(new ApiClient({ fetch: srv.fetch })).history({ host: 'db-1', rule: 'cpu_high', state: 'firing', since: Date.UTC(2026, 10, 22), limit: 50 })
    const q = new URL(srv.calls[0].path, 'http://x').searchParams
    expect(Object.fromEntries(q)).toEqual({ host: 'db-1', rule: 'cpu_high', state: 'firing', since: '2026-11-22T00:00:00.000Z', limit: '50' })
  })

  it('keeps the per-field problems of a 422', async () => {
    const srv = fakeServer()
    const err = await new AlertsApi(new ApiClient({ fetch: srv.fetch })).saveRule({ id: 'x', metric: 'nope', warning: 1 }, true).catch((e) => e)
    expect(err).toBeInstanceOf(ApiError)
    expect(err.status).toBe(422)
    expect(err.problems).toEqual([{ loc: ['body', 'threshold', 'metric'], msg: "unknown metric 'nope' (see hostpulse.catalog)" }])
    expect(err.detail).toBe("threshold.metric: unknown metric 'nope' (see hostpulse.catalog)")
  })

  it('acknowledges with the name of who did it', async () => {
    const srv = fakeServer({ active: [] })
    srv.active.push({ id: 'a1', rule_id: 'r', rule_title: 'r', host: 'h', labels: {}, state: 'firing', severity: 'warning', value: 1, pending_since_ms: 1, fired_at_ms: 1, acked_by: null, acked_at_ms: null })
    const out = await new AlertsApi(new ApiClient({ fetch: srv.fetch })).ack('a1', 'ada')
    expect(srv.calls[0]).toEqual({ method: 'POST', path: '/alerts/active/a1/ack', body: { by: 'ada' } })
    expect(out.acked_by).toBe('ada')
  })
})

describe('AdminApi (the security contract)', () => {
  it('manages users, keys and enrollment tokens', async () => {
    const srv = fakeServer()
    const api = new AdminApi(new ApiClient({ fetch: srv.fetch }))
    await api.addUser('bob', 'twelve-chars!', 'editor')
    await api.updateUser('bob', { role: 'viewer' })
    await api.updateUser('bob', { password: 'another-12-chars' })
    await api.removeUser('bob')
    const rotated = await api.rotateKey('k1')
    await api.revokeKey(rotated.id)
    const created = await api.createEnrollment({ host_id: null, ttl_seconds: 900, single_use: true })
    await api.deleteEnrollment(created.id)
    expect(srv.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
      'POST /users', 'PATCH /users/bob', 'PATCH /users/bob', 'DELETE /users/bob',
      'POST /agent-keys/k1/rotate', 'POST /agent-keys/k2/revoke',
      'POST /enrollment-tokens', `DELETE /enrollment-tokens/${created.id}`,
    ])
    expect(srv.calls[0].body).toEqual({ username: 'bob', password: 'twelve-chars!', role: 'editor' })
    expect(srv.calls[2].body).toEqual({ password: 'another-12-chars' })
    expect(srv.calls[6].body).toEqual({ host_id: null, ttl_seconds: 900, single_use: true })
    expect(rotated.key).toBe('hpk_new1_secretsecret')
    expect(created.command).toBe(`hostpulse agent --server http://hp.test --enroll ${created.token}`)
  })
})
