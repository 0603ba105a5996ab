// An in-memory server for the specs that follows the alerts API (server/api/alerts.py) and the
// security contract (AUTH_CONTRACT.md: users, agent keys, enrollment tokens) closely enough to
// drive the stores and pages: it keeps state, enforces roles and answers refusals the way the
// real routes do (422 `detail` lists with `loc`, 409/403 with a reason).
import type { AlertOut, RuleOut } from '../api/alerts'
import type { AgentKey, EnrollmentToken, UserRow } from '../api/admin'
import type { FetchLike } from '../api/client'

type Role = 'viewer' | 'editor' | 'admin'
const ORDER: Record<Role, number> = { viewer: 0, editor: 1, admin: 2 }
const json = (body: unknown, status = 200) => new Response(status === 204 ? null : JSON.stringify(body), { status })
const problem = (loc: (string | number)[], msg: string) => json({ detail: [{ type: 'value_error', loc, msg: `Value error, ${msg}` }] }, 422)

export interface FakeServer {
  fetch: FetchLike
  calls: { method: string; path: string; body: unknown }[]
  role: Role
  username: string
  active: AlertOut[]
  rules: RuleOut[]
  users: UserRow[]
  keys: AgentKey[]
  tokens: EnrollmentToken[]
  /** answer this status for every /alerts call (e.g. 503) */
  alertsDown: number | null
  /** the signed-in user's password (PATCH /users/{self} checks `current_password` against it) */
  password: string
}

export function alert(id: string, over: Partial<AlertOut> = {}): AlertOut {
  return {
    id, rule_id: 'cpu_high', rule_title: 'CPU usage high', host: 'web-1', labels: {}, state: 'firing', severity: 'critical',
    value: 97.5, pending_since_ms: 1000, fired_at_ms: 2000, acked_by: null, acked_at_ms: null, ...over,
  }
}

export function fakeServer(init: Partial<Pick<FakeServer, 'role' | 'username' | 'active'>> = {}): FakeServer {
  const s: FakeServer = {
    fetch: null as unknown as FetchLike,
    calls: [],
    role: init.role ?? 'admin',
    username: init.username ?? 'ada',
    active: init.active ?? [],
    rules: [{ source: 'default', created_ms: 1, updated_ms: 1, rule: { id: 'cpu_high', metric: 'cpu_busy_percent', op: '>', warning: 80, critical: 90, for: 120 } }],
    users: [{ username: 'ada', role: 'admin', created_at: 1_700_000_000_000 }],
    keys: [{ id: 'k1', host_id: 'web-1', prefix: 'hpk_abcd', created_at: 1_700_000_000_000, last_used_at: null, revoked_at: null }],
    tokens: [],
    alertsDown: null,
    password: 'the-old-password',
  }
  let n = 0
  const can = (r: Role) => ORDER[s.role] >= ORDER[r]
  s.fetch = async (input, init) => {
    const url = new URL(input, 'http://hp.test')
    const method = init?.method ?? 'GET'
    const path = url.pathname.replace('/api/v1', '')
    const body = init?.body ? JSON.parse(String(init.body)) : undefined
    s.calls.push({ method, path: path + url.search, body })
    const write = method !== 'GET'
    if (path === '/auth/me') return json({ username: s.username, role: s.role })
    if (path === '/catalog')
      return json([
        { key: 'cpu_busy_percent', prom_name: 'node_cpu_busy_percent', subsystem: 'cpu', unit: 'percent', kind: 'gauge', help: 'Busy CPU.', labels: [], rate_of: null },
        { key: 'filesystem_usage_percent', prom_name: 'x', subsystem: 'disk', unit: 'percent', kind: 'gauge', help: 'Used space.', labels: ['device', 'mountpoint'], rate_of: null },
        { key: 'host_info', prom_name: 'x', subsystem: 'system', unit: '', kind: 'info', help: '', labels: ['os'], rate_of: null },
      ])
    if (path.startsWith('/alerts')) {
      if (s.alertsDown) return json({ detail: 'alerts are not running' }, s.alertsDown)
      if (write && !can('editor')) return json({ detail: 'this needs the editor role' }, 403)
      const ack = /^\/alerts\/active\/([^/]+)\/ack$/.exec(path)
      if (ack) {
        const a = s.active.find((x) => x.id === decodeURIComponent(ack[1]))
        if (!a) return json({ detail: 'no such alert' }, 404)
        if (a.state !== 'firing') return json({ detail: 'only a firing alert can be acknowledged' }, 409)
        Object.assign(a, { acked_by: body.by, acked_at_ms: 5000 })
        return json(a)
      }
      if (path === '/alerts/active') return json(s.active)
      if (path === '/alerts/history') return json([])
      if (path === '/alerts/rules' && method === 'GET') return json(s.rules)
      if (path.startsWith('/alerts/rules') && (method === 'POST' || method === 'PUT')) {
        if (body.metric === 'nope') return problem(['body', 'threshold', 'metric'], "unknown metric 'nope' (see hostpulse.catalog)")
        if (method === 'POST' && s.rules.some((r) => r.rule.id === body.id)) return json({ detail: `a rule with id '${body.id}' already exists` }, 409)
        const out = { source: 'api' as const, created_ms: 9, updated_ms: 9, rule: body }
        s.rules = [...s.rules.filter((r) => r.rule.id !== body.id), out]
        return json(out, method === 'POST' ? 201 : 200)
      }
      const del = /^\/alerts\/(rules|channels|silences)\/([^/]+)$/.exec(path)
      if (del && method === 'DELETE') {
        if (del[1] === 'rules') s.rules = s.rules.filter((r) => r.rule.id !== decodeURIComponent(del[2]))
        return json(null, 204)
      }
      if (path.startsWith('/alerts/silences') && write) {
        const id = path.split('/')[3] ?? `s${++n}`
        return json({ source: 'api', created_ms: 9, updated_ms: 9, id, active: true, silence: body }, method === 'POST' ? 201 : 200)
      }
      if (/^\/alerts\/channels\/[^/]+\/test$/.test(path)) return json({ ok: false, status: 500, error: 'HTTP 500: down', duration_ms: 12 })
      if (path === '/alerts/channels' || path === '/alerts/silences') return json([])
      return json({ detail: 'not found' }, 404)
    }
    // every user may change their own password, given the current one
    if (method === 'PATCH' && path === `/users/${encodeURIComponent(s.username)}` && body.password !== undefined && body.role === undefined) {
      if (body.current_password !== s.password) return json({ detail: 'the current password is wrong' }, 401)
      if (String(body.password).length < 12) return problem(['body', 'password'], 'at least 12 characters')
      s.password = body.password
      return json({ username: s.username, role: s.role, created_at: 1_700_000_000_000 })
    }
    // the security contract: admin only
    if (!can('admin')) return json({ detail: 'this needs the admin role' }, 403)
    if (path === '/users' && method === 'GET') return json(s.users)
    if (path === '/users' && method === 'POST') {
      if (String(body.password).length < 12) return problem(['body', 'password'], 'at least 12 characters')
      if (s.users.some((u) => u.username === body.username)) return json({ detail: 'that user name is taken' }, 409)
      const u = { username: body.username, role: body.role, created_at: 1_700_000_001_000 }
      s.users.push(u)
      return json(u, 201)
    }
    const user = /^\/users\/([^/]+)$/.exec(path)
    if (user) {
      const name = decodeURIComponent(user[1])
      const u = s.users.find((x) => x.username === name)
      if (!u) return json({ detail: 'no such user' }, 404)
      if (method === 'DELETE') {
        if (u.role === 'admin' && s.users.filter((x) => x.role === 'admin').length === 1) return json({ detail: 'cannot remove the last admin' }, 409)
        s.users = s.users.filter((x) => x !== u)
        return json(null, 204)
      }
      if (body.role) u.role = body.role
      return json(u)
    }
    if (path === '/agent-keys') return json(s.keys)
    const key = /^\/agent-keys\/([^/]+)\/(revoke|rotate)$/.exec(path)
    if (key) {
      const k = s.keys.find((x) => x.id === key[1])
      if (!k) return json({ detail: 'no such key' }, 404)
      k.revoked_at = 1_700_000_002_000
      if (key[2] === 'revoke') return json(null, 204)
      const id = `k${++n + 1}`
      s.keys.push({ id, host_id: k.host_id, prefix: 'hpk_new1', created_at: 1_700_000_002_000, last_used_at: null, revoked_at: null })
      return json({ id, host_id: k.host_id, key: 'hpk_new1_secretsecret' })
    }
    if (path === '/enrollment-tokens' && method === 'GET') return json(s.tokens)
    if (path === '/enrollment-tokens' && method === 'POST') {
      const id = `t${++n}`
      const tok = { id, host_id: body.host_id ?? null, expires_at: 1_700_000_000_000 + (body.ttl_seconds ?? 3600) * 1000, single_use: body.single_use ?? true, uses: 0, created_at: 1_700_000_000_000 }
      s.tokens.push(tok)
      return json({ ...tok, token: `hpe_${id}`, command: `hostpulse agent --server http://hp.test --enroll hpe_${id}`, install_command: `curl -fsSL http://hp.test/install/agent.sh | sudo sh -s -- --token hpe_${id}` }, 201)
    }
    const tok = /^\/enrollment-tokens\/([^/]+)$/.exec(path)
    if (tok && method === 'DELETE') {
      s.tokens = s.tokens.filter((x) => x.id !== tok[1])
      return json(null, 204)
    }
    return json({ detail: 'not found' }, 404)
  }
  return s
}
