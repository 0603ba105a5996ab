import { createPinia, setActivePinia } from 'pinia'
import { beforeEach, describe, expect, it } from 'vitest'
import { createMemoryHistory } from 'vue-router'
import { setApi, useApi } from '../api'
import { ApiClient } from '../api/client'
import { guard, makeRouter } from '../router'
import { useSession } from './session'

// A server with the security API's contract (/auth/login, /auth/refresh, /auth/logout) whose
// access tokens can be expired at will.
function authServer() {
  const state = { valid: new Set<string>(), refresh: new Set<string>(), n: 0, loggedOut: [] as string[], calls: [] as string[] }
  const issue = () => {
    const n = ++state.n
    state.valid.add(`a${n}`)
    state.refresh.add(`r${n}`)
    return { access_token: `a${n}`, refresh_token: `r${n}`, token_type: 'bearer', expires_in: 60, user: { username: 'ada', role: 'viewer' } }
  }
  const fetch = async (input: string, init?: RequestInit) => {
    const url = new URL(input, 'http://t')
    state.calls.push(`${init?.method ?? 'GET'} ${url.pathname}`)
    const body = init?.body ? JSON.parse(String(init.body)) : {}
    const json = (x: unknown, status = 200) => new Response(JSON.stringify(x), { status })
    if (url.pathname === '/api/v1/auth/login')
      return body.password === 'right' ? json(issue()) : json({ detail: 'wrong username or password' }, 401)
    if (url.pathname === '/api/v1/auth/refresh') {
      if (!state.refresh.delete(body.refresh_token)) return json({ detail: 'spent' }, 401)
      return json(issue())
    }
    if (url.pathname === '/api/v1/auth/logout') {
      state.loggedOut.push(body.refresh_token)
      return new Response(null, { status: 204 })
    }
    const token = (init?.headers as Record<string, string>)?.authorization?.replace('Bearer ', '')
    if (!token || !state.valid.has(token)) return json({ detail: 'authentication required' }, 401)
    return json([])
  }
  return { state, fetch }
}

let server: ReturnType<typeof authServer>
beforeEach(() => {
  localStorage.clear()
  setActivePinia(createPinia())
  server = authServer()
  const session = useSession()
  setApi(new ApiClient({ fetch: server.fetch, token: () => session.access, unauthorized: () => session.renew() }))
})

describe('session', () => {
  it('logs in, sends the token, and survives a reload', async () => {
    const s = useSession()
    await expect(s.login('ada', 'wrong')).rejects.toMatchObject({ status: 401 })
    expect(s.loggedIn).toBe(false)
    await s.login('ada', 'right')
    expect(s.user).toEqual({ username: 'ada', role: 'viewer' })
    expect(await useApi().hosts()).toEqual([])
    setActivePinia(createPinia())
    expect(useSession().access).toBe('a1')
  })

  it('renews an expired access token once and retries the request', async () => {
    const s = useSession()
    await s.login('ada', 'right')
    server.state.valid.clear() // the access token expired
    await Promise.all([useApi().hosts(), useApi().hosts()])
    expect(s.access).toBe('a2')
    expect(server.state.calls.filter((c) => c.endsWith('/auth/refresh')).length).toBe(1)
  })

  it('asks for a login when renewal fails', async () => {
    const s = useSession()
    await s.login('ada', 'right')
    server.state.valid.clear()
    server.state.refresh.clear() // session revoked
    await expect(useApi().hosts()).rejects.toMatchObject({ status: 401 })
    expect(s.required).toBe(true)
    expect(s.loggedIn).toBe(false)
  })

  it('logs out on the server and forgets the tokens', async () => {
    const s = useSession()
    await s.login('ada', 'right')
    await s.logout()
    expect(server.state.loggedOut).toEqual(['r1'])
    expect(localStorage.getItem('hostpulse.session')).toBeNull()
    expect(s.required).toBe(true)
  })

  it('knows roles', async () => {
    const s = useSession()
    await s.login('ada', 'right')
    expect(s.can('viewer')).toBe(true)
    expect(s.can('editor')).toBe(false)
  })
})

describe('a server without authentication', () => {
  it('answers the login with 404: the app goes on without a session', async () => {
    setApi(new ApiClient({ fetch: async () => new Response('{"detail":"Not Found"}', { status: 404 }) }))
    const s = useSession()
    s.required = true // a fresh browser starts at the login page (main.ts)
    await s.login('ada', 'whatever')
    expect(s.authless).toBe(true)
    expect(s.required).toBe(false)
    expect(s.loggedIn).toBe(false)
  })

  it('but a wrong password on a real one is still an error', async () => {
    const s = useSession()
    await expect(s.login('ada', 'wrong')).rejects.toMatchObject({ status: 401 })
    expect(s.authless).toBe(false)
  })
})

describe('router guard', () => {
  it('sends to the login page only when the server asked for a login', async () => {
    const s = useSession()
    const router = makeRouter(createMemoryHistory())
    guard(router, () => s.required && !s.loggedIn)
    await router.push('/hosts/a')
    expect(router.currentRoute.value.name).toBe('host')
    s.required = true
    await router.push('/')
    expect(router.currentRoute.value.name).toBe('login')
    expect(router.currentRoute.value.query.next).toBe('/')
  })
})
